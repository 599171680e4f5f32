"""Certificate lifecycle: operator rotation with overlap, revocation, expiry warnings, and the gateway's
own key rotation with the previous certificate still published; passphrase-protected keys."""
from __future__ import annotations

import datetime as dt
import stat

import pytest
from conftest import OPERATING, SUPPLIER
from cryptography import x509
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select

from gateway import directory, jobs
from gateway.app import build_gateway, create_app
from gateway.keys import cert_pem, key_pem, new_key, self_signed
from gateway.protocol import client as dl
from gateway.protocol.signing import fingerprint
from gateway.rotation import rotate_gateway_key
from gateway.storage.tables import audit_log, messages, payments


def second_maker_key(gateway, clock, days=730):
    key = new_key("p256")
    cert = cert_pem(self_signed(key, "DEMO/maker", "Demo Trading Co., Ltd.", days=days))
    with gateway.engine.begin() as conn:
        fp = directory.register_certificate(conn, "DEMO", "maker", cert, clock())
    return key_pem(key), cert, fp


def test_rotation_overlap_then_revocation_of_the_old_certificate(maker, gateway, clock, http, home):
    key, cert, _ = second_maker_key(gateway, clock)
    new = dl.Client("http://testserver", "DEMO", "maker", key, cert, home.path(home.gateway_cert).read_bytes(),
                    http=http)
    assert maker.call(dl.balance_query()).code == "OK" and new.call(dl.balance_query()).code == "OK"
    with gateway.engine.begin() as conn:
        assert directory.revoke_certificate(conn, fingerprint(maker.signer.certificate), clock())
    assert maker.call(dl.balance_query()).code == "CERT_REVOKED"
    assert new.call(dl.balance_query()).code == "OK"


def test_a_revocation_by_another_process_stops_the_next_request_though_this_one_knew_the_certificate(
        maker, gateway, clock, home):
    """Each process keeps the certificates it last read; the transaction checks the verifying one again,
    so a revocation written by another replica (here: straight into the database) holds at once, and the
    refused payment leaves nothing behind."""
    assert maker.call(dl.balance_query()).code == "OK"          # this process now knows the certificate
    other = build_gateway(home)                                   # another replica on the same database
    with other.engine.begin() as conn:
        assert directory.revoke_certificate(conn, fingerprint(maker.signer.certificate), clock())
    other.engine.dispose()
    answer = maker.call(dl.payment_order(dl.payment("REVOKED-1", OPERATING, "1.00", "ACME", SUPPLIER)))
    assert answer.code == "CERT_REVOKED"
    with gateway.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(payments)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(messages)).scalar() == 1   # the first query's only


def test_expiry_warning_names_the_certificate_and_is_audited(gateway, clock):
    _, _, fp = second_maker_key(gateway, clock, days=10)
    warnings = jobs.warn_expiring(gateway)
    assert len(warnings) == 1 and fp[:16] in warnings[0] and "DEMO/maker" in warnings[0]
    clock.offset = dt.timedelta(days=701)          # now the demo certificates (730 days) are close too
    assert len(jobs.warn_expiring(gateway)) == 4   # maker, checker, viewer and the gateway's own; not the expired one
    with gateway.engine.connect() as conn:
        audited = conn.execute(select(func.count()).select_from(audit_log)
                               .where(audit_log.c.code == "CERT_EXPIRING")).scalar()
    assert audited == 5


def test_gateway_key_rotation_publishes_both_certificates(home, maker):
    old = home.path(home.gateway_cert).read_bytes()
    rotate_gateway_key(home)
    new = home.path(home.gateway_cert).read_bytes()
    assert new != old and home.path(home.gateway_previous_cert).read_bytes() == old
    rotated = build_gateway(home)
    with TestClient(create_app(rotated)) as tc:
        bundle = tc.get("/v1/certificates").content
        assert x509.load_pem_x509_certificates(bundle) == [x509.load_pem_x509_certificate(new),
                                                          x509.load_pem_x509_certificate(old)]
        c = dl.Client("http://testserver", "DEMO", "maker", (home.home / "demo/maker.key.pem").read_bytes(),
                      (home.home / "demo/maker.cert.pem").read_bytes(), new, http=tc)
        assert c.call(dl.balance_query()).code == "OK"        # answers verify with the new certificate
    rotated.engine.dispose()


def test_passphrase_protected_gateway_key(home):
    secret = "correct horse battery staple"
    protected = home.model_copy(update={"gateway_key_passphrase": SecretStr(secret)})
    rotate_gateway_key(protected)
    key_file = home.path(home.gateway_key)
    assert b"ENCRYPTED" in key_file.read_bytes() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    gw = build_gateway(protected)
    gw.engine.dispose()
    with pytest.raises(SystemExit) as refused:
        build_gateway(home)                       # no passphrase given
    assert "PASSPHRASE" in str(refused.value) and secret not in str(refused.value)
    assert secret not in repr(protected)


def test_a_key_file_that_is_not_the_certificates_stops_the_start(home):
    """A mix-up of key and certificate files would sign every answer with a signature no client verifies:
    the start refuses it instead."""
    home.path(home.gateway_key).write_bytes(key_pem(new_key("p256")))
    with pytest.raises(SystemExit) as refused:
        build_gateway(home)
    assert "does not belong to the certificate" in str(refused.value)


def test_a_certificate_expired_by_the_real_clock_is_cert_expired(gateway, http, home, clock):
    """signxml checks validity against the wall clock; the gateway must still answer CERT_EXPIRED."""
    key = new_key("p256")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    cert = cert_pem(self_signed(key, "DEMO/old", "Demo", days=5, not_before=past))
    with gateway.engine.begin() as conn:
        directory.upsert_operator(conn, "DEMO", "old", "Old key", clock())
        # The directory refuses an expired certificate; registered anyway, the request must still be refused.
        directory.register_certificate(conn, "DEMO", "old", cert, clock(), check_validity=False)
    old = dl.Client("http://testserver", "DEMO", "old", key_pem(key), cert,
                    home.path(home.gateway_cert).read_bytes(), http=http)
    answer = old.call(dl.balance_query())
    assert (answer.status, answer.code) == (401, "CERT_EXPIRED")
