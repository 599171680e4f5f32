"""The configuration kept per version (gateway/config_cache.py): every change to what it keeps moves the
version on, by database triggers, whichever path makes it; a request then sees the change at once."""
from __future__ import annotations

import datetime as dt

import pytest
from conftest import OPERATING, PAYROLL, SUPPLIER, operator_client
from sqlalchemy import select, text

from gateway import directory
from gateway.app import build_gateway
from gateway.config_cache import ConfigCache
from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q
from gateway.protocol.xmlsafe import text as text_of
from gateway.storage.engine import make_engine
from gateway.storage.tables import config_version

NOW = "2026-11-26 08:00:00+00"


def version(conn) -> int:
    return conn.execute(select(config_version.c.version)).scalar_one()


# Each change a configuration table can undergo, as hand-run SQL (no gateway code on the path), and the
# statement that undoes nothing but must move the version on all the same.
CHANGES = {
    "grant revoked": "UPDATE grants SET can_pay = false WHERE operator_id = 'maker'",
    "grant removed": "DELETE FROM grants WHERE operator_id = 'viewer'",
    "grant added": "INSERT INTO grants (client_id, operator_id, account, can_query, can_pay, can_approve) "
                   f"VALUES ('DEMO', 'viewer', '{SUPPLIER}', true, false, false)",
    "approval policy": "INSERT INTO approval_policies (client_id, account, currency, threshold, approvals) "
                       "VALUES ('DEMO', '', 'CNY', 100, 1)",
    "fund rule": "INSERT INTO fund_rules (client_id, account, rule, params, updated_at) "
                 f"VALUES ('DEMO', '', 'velocity', '{{}}', '{NOW}')",
    "block list": f"INSERT INTO block_lists (client_id, list_name, entries, loaded_at, version) "
                  f"VALUES ('DEMO', 'x', 0, '{NOW}', 'v1')",
    "subscription": "INSERT INTO notify_subscriptions (client_id, url, kinds, active, created_at, updated_at) "
                    f"VALUES ('DEMO', 'https://erp.example/hook', 'payment', true, '{NOW}', '{NOW}')",
    "account renamed": f"UPDATE accounts SET name = 'renamed' WHERE number = '{OPERATING}'",
    "account's currency": f"UPDATE accounts SET currency = 'USD' WHERE number = '{PAYROLL}'",
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_change_to_the_kept_configuration_moves_the_version_on(home, change):
    engine = make_engine(home.db_url)
    with engine.begin() as conn:
        before = version(conn)
        conn.execute(text(CHANGES[change]))
        assert version(conn) > before   # in the changing transaction: it commits or vanishes with it
    engine.dispose()


def test_balances_moving_leave_the_version_alone(home):
    engine = make_engine(home.db_url)
    with engine.begin() as conn:
        before = version(conn)
        conn.execute(text(f"UPDATE accounts SET held = held + 1, booked = booked + 1, entry_seq = entry_seq "
                          f"WHERE number = '{OPERATING}'"))
        assert version(conn) == before
    engine.dispose()


def states(answer) -> list[tuple[str | None, str | None]]:
    return [(text_of(s.find(q("State"))), s.find(q("Reason")).get("code") if s.find(q("Reason")) is not None
             else None) for s in answer.body.iterfind(q("PaymentStatus"))]


def test_a_grant_revoked_by_hand_refuses_the_next_payment(maker, gateway):
    def pay(ref):
        return maker.call(dl.payment_order(dl.payment(ref, OPERATING, "1.00", "ACME", SUPPLIER)))
    assert states(pay("CC-1")) == [("SETTLED", None)]   # the grants are kept now
    with gateway.engine.begin() as conn:
        conn.execute(text("UPDATE grants SET can_pay = false WHERE operator_id = 'maker'"))
    assert states(pay("CC-2")) == [("REJECTED", "PERMISSION_DENIED")]


def test_a_changed_limit_applies_to_the_next_payment_on_another_gateway(home, maker, gateway, clock):
    """Two gateways on one database, as two replicas: a change through one is seen by the other at once."""
    other = build_gateway(home)
    other.clock = clock
    try:
        def body(ref):
            return maker.request(dl.payment_order(dl.payment(ref, PAYROLL, "10.00", "ACME", SUPPLIER)))
        first = other.handle(body("CC-3"))
        assert first.status == 200 and b"SETTLED" in first.body
        with gateway.engine.begin() as conn:
            directory.set_grant(conn, "DEMO", "maker", PAYROLL, {"query", "pay"}, "5.00", None,
                                dt.datetime.now(dt.UTC))
        second = other.handle(body("CC-4"))
        assert b"LIMIT_SINGLE" in second.body
    finally:
        other.engine.dispose()


def test_an_approval_threshold_set_by_hand_holds_the_next_payment(home, http, gateway):
    maker = operator_client(home, http, "maker")
    assert states(maker.call(dl.payment_order(dl.payment("CC-5", OPERATING, "2.00", "ACME", SUPPLIER)))) == \
        [("SETTLED", None)]
    with gateway.engine.begin() as conn:
        conn.execute(text("INSERT INTO approval_policies (client_id, account, currency, threshold, approvals) "
                          "VALUES ('DEMO', '', 'CNY', 100, 1)"))
    assert states(maker.call(dl.payment_order(dl.payment("CC-6", OPERATING, "2.00", "ACME", SUPPLIER))))[0][0] == \
        "PENDING_APPROVAL"


def test_the_cache_keeps_values_for_the_newest_version_only():
    cache, loads = ConfigCache(), []

    def load(value):
        return lambda: loads.append(value) or value

    assert cache.get(5, ("k",), load("a")) == "a"
    assert cache.get(5, ("k",), load("b")) == "a"            # kept
    assert cache.get(6, ("k",), load("c")) == "c"            # a newer version: read afresh
    assert cache.get(5, ("k",), load("d")) == "d"            # an older one (a request that began before it)...
    assert cache.get(6, ("k",), load("e")) == "c"            # ... keeps nothing and displaces nothing
    assert loads == ["a", "c", "d"]


def test_every_table_the_kept_configuration_reads_moves_the_version_on():
    """A loader that came to read another table would keep it stale: each reads only tables with triggers."""
    import importlib

    from sqlalchemy import Table
    from sqlalchemy.sql.visitors import iterate

    from gateway import rule_facts
    from gateway.notify import outbox, subscriptions
    watched = importlib.import_module("gateway.storage.migrations.versions.0010_config_version").WATCHED
    loaders = [directory._GRANTS, directory._TIERS, subscriptions._ACTIVE, rule_facts._CONFIGURATION, outbox._OWNERS]
    read = {el.name for statement in loaders for el in iterate(statement) if isinstance(el, Table)}
    assert read == {"grants", "accounts", "approval_policies", "notify_subscriptions", "fund_rules", "block_lists"}
    assert read <= set(watched)
