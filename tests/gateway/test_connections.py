"""The gateway outlives its PostgreSQL connections. One that the server closed while it sat in the pool (a
restart, an administrator's pg_terminate_backend) is replaced before use, without a round trip to find out
(gateway/storage/engine.py); one lost in use runs its request again (pipeline._transient). No request fails
for it, and none acts twice."""
from __future__ import annotations

import os

import pytest
from conftest import OPERATING, PG_ENV, SUPPLIER, booked_total, operator_client
from iso20022_helpers import outcomes
from sqlalchemy import create_engine, event, func, select, text

from gateway import audit
from gateway.protocol import client as dl
from gateway.protocol import signing
from gateway.storage.tables import payments

NAME = "directlink_connection_test"


@pytest.fixture
def admin():
    engine = create_engine(os.environ[PG_ENV])
    yield engine
    engine.dispose()


@pytest.fixture
def db_url(pg_url):
    """PostgreSQL only, under a name of its own, so that the test ends the gateway's connections and no other."""
    return f"{pg_url}&application_name={NAME}"


def terminate(admin, pid: int | None = None) -> int:
    """End the gateway's server processes (or one of them), waiting until each is gone."""
    with admin.connect() as conn:
        where = "pid = :pid" if pid else "application_name = :name AND pid <> pg_backend_pid()"
        return conn.execute(text(f"SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
                                 f"FROM pg_stat_activity WHERE {where}"), {"pid": pid, "name": NAME}).scalar()


def test_connections_closed_by_the_server_while_idle_are_replaced_before_use(maker, http, admin):
    assert http.get("/healthz").status_code == 200
    assert maker.call(dl.balance_query(OPERATING)).code == "OK"
    assert terminate(admin) >= 1
    # The health check runs one statement on a pooled connection, and nothing runs it again.
    assert http.get("/healthz").status_code == 200
    assert maker.call(dl.balance_query(OPERATING)).code == "OK"


def test_a_connection_lost_in_use_runs_its_request_again_and_the_payment_is_made_once(gateway, admin):
    maker = operator_client(gateway.settings, None, "maker")

    def send(operation) -> dl.Answer:   # straight to the pipeline: no scheduled job takes a connection meanwhile
        body = maker.request(operation)
        reply = gateway.handle(body)
        return dl.verify_answer(reply.status, reply.body, maker.gateway_cert, signing.digest_b64(body))

    assert send(dl.balance_query(OPERATING)).code == "OK"     # the operator's certificate is now known
    lost = []

    def lose_it(dbapi_conn, _record, _proxy):   # after the gateway's own check: it finds the connection alive
        lost.append(terminate(admin, dbapi_conn.info.backend_pid))

    event.listen(gateway.engine, "checkout", lose_it, once=True)
    answer = send(dl.payment_order(dl.payment("LOST-1", OPERATING, "7.00", "ACME", SUPPLIER)))
    assert lost == [1]
    assert [o[1] for o in outcomes(answer)] == ["SETTLED"]
    with gateway.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(payments)
                            .where(payments.c.client_ref == "LOST-1")).scalar() == 1
        assert audit.verify(conn)[1] == []
    assert booked_total(gateway.engine) == 0
