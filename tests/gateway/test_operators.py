"""Disabling an operator at once (issue 29, hole 6): `directory.set_operator_enabled`, behind `directlink
operators disable|enable`. Two gateways on one database stand for two replicas; both have verified the
operator's requests before (their certificate snapshots and configuration caches are warm), and the
next request after the change is refused on both, with PERMISSION_DENIED, audited. Before the fix there
was no way to do this short of withdrawing every grant or revoking every certificate."""
from __future__ import annotations

import datetime as dt

import pytest
from conftest import OPERATING, SUPPLIER
from sqlalchemy import select

from gateway import directory
from gateway.app import build_gateway
from gateway.protocol import client as dl
from gateway.storage.tables import audit_log, operators, payments


@pytest.fixture
def replica(home, clock):
    other = build_gateway(home)
    other.clock = clock
    yield other
    other.engine.dispose()


def answer(gateway, body: bytes) -> dl.Answer:
    reply = gateway.handle(body)
    return dl.verify_answer(reply.status, reply.body, gateway.signer.certificate, dl.signing.digest_b64(body))


def set_enabled(gateway, enabled: bool, operator: str = "maker") -> bool:
    with gateway.engine.begin() as conn:
        return directory.set_operator_enabled(conn, "DEMO", operator, enabled, dt.datetime.now(dt.UTC))


def test_a_disabled_operator_is_refused_on_the_next_request_on_every_replica(gateway, replica, maker):
    def pay(ref: str) -> bytes:
        return maker.request(dl.payment_order(dl.payment(ref, OPERATING, "1.00", "ACME", SUPPLIER)))
    for gw, ref in ((gateway, "OPD-1"), (replica, "OPD-2")):        # both warm
        assert answer(gw, pay(ref)).code == "OK"
    assert set_enabled(gateway, False) is True
    for gw, ref in ((gateway, "OPD-3"), (replica, "OPD-4")):
        refused = answer(gw, pay(ref))
        assert (refused.code, refused.status) == ("PERMISSION_DENIED", 403) and "DEMO/maker is disabled" in \
            refused.detail
        assert answer(gw, maker.request(dl.balance_query(OPERATING))).code == "PERMISSION_DENIED"
    with gateway.engine.connect() as conn:
        paid = set(conn.execute(select(payments.c.client_ref).where(payments.c.client_ref.like("OPD-%"))).scalars())
        codes = list(conn.execute(select(audit_log.c.code).where(audit_log.c.operator_id == "maker",
                                                                 audit_log.c.code == "PERMISSION_DENIED")).scalars())
        config = list(conn.execute(select(audit_log.c.code, audit_log.c.detail).where(
            audit_log.c.kind == "config", audit_log.c.code.like("OPERATOR_%ABLED"))))
    assert paid == {"OPD-1", "OPD-2"} and len(codes) == 4
    assert [tuple(r) for r in config] == [("OPERATOR_DISABLED", "DEMO/maker")]
    assert set_enabled(replica, True) is True
    assert answer(gateway, pay("OPD-5")).code == "OK" and answer(replica, pay("OPD-6")).code == "OK"


def test_other_operators_of_the_client_go_on(gateway, checker, maker):
    set_enabled(gateway, False, "checker")
    assert answer(gateway, checker.request(dl.balance_query(OPERATING))).code == "PERMISSION_DENIED"
    assert answer(gateway, maker.request(dl.balance_query(OPERATING))).code == "OK"


def test_disabling_twice_or_an_unknown_operator_changes_nothing(gateway):
    assert set_enabled(gateway, False) is True and set_enabled(gateway, False) is False
    with pytest.raises(ValueError, match="no operator nobody of client DEMO"):
        set_enabled(gateway, False, "nobody")
    with gateway.engine.connect() as conn:
        assert conn.execute(select(operators.c.id).where(operators.c.disabled_at.is_not(None))).scalars().all() == \
            ["maker"]
        assert conn.execute(select(audit_log.c.code).where(audit_log.c.code == "OPERATOR_DISABLED")).scalars().all() \
            == ["OPERATOR_DISABLED"]
