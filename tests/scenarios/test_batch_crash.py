"""SIGKILL inside and between group-commit batches (SQLite, gateway/storage/committer.py), with many requests
in flight: a request's unit done in an open batch (request_before_commit), a batch complete but not committed
(batch_before_commit), committed with none of its answers released (batch_after_commit), and a request's
answer about to leave (request_after_commit).

Whatever batch the kill caught is kept whole or lost whole, consistently: a stored answer exactly when its
payment exists and its request is audited. Every client then sends its same bytes again to the restarted
gateway: each order is executed exactly once, and an answer stored before the kill is the one given."""
from __future__ import annotations

import contextlib
import threading

import httpx
import pytest
from conftest import OPERATING, SUPPLIER
from processes import Servers
from sqlalchemy import func, select
from test_crash import KILLED, check_books, message_id, operator, post_raw, verified

from gateway import crash
from gateway.protocol import client as dl
from gateway.storage.engine import make_engine
from gateway.storage.tables import audit_log, messages, payments

pytestmark = pytest.mark.slow
ORDERS = 12


@pytest.fixture
def db_url(tmp_path):
    """SQLite: group commit is SQLite's (PostgreSQL commits a transaction a request: test_crash.py)."""
    return f"sqlite:///{tmp_path / 'gateway.db'}"


@pytest.fixture
def servers(home, tmp_path):
    s = Servers(home.home, tmp_path)
    try:
        yield s
    finally:
        s.stop_all()


def order(maker, i: int, point: str) -> bytes:
    return maker.request(dl.payment_order(dl.payment(f"BC-{point[:9]}-{i}", OPERATING, f"{i + 1}.00", "ACME",
                                                     SUPPLIER)))


def post_all(base: str, bodies: list[bytes]) -> list[httpx.Response | None]:
    """Every body at once, one thread each: None where the server died before answering."""
    out: list[httpx.Response | None] = [None] * len(bodies)
    start = threading.Barrier(len(bodies))

    def send(i: int) -> None:
        start.wait(10)
        with contextlib.suppress(httpx.TransportError):
            out[i] = post_raw(base, bodies[i])
    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def kept(engine) -> tuple[dict[str, bytes], dict[str, int], dict[str, int]]:
    """What the database holds: stored answers by MessageId, payments by ClientRef, request records by MessageId."""
    with engine.connect() as conn:
        answers = {m: bytes(r) for m, r in conn.execute(select(messages.c.message_id, messages.c.response))}
        refs = dict(conn.execute(select(payments.c.client_ref, func.count()).group_by(payments.c.client_ref)).all())
        audited = dict(conn.execute(select(audit_log.c.message_id, func.count()).where(audit_log.c.kind == "request")
                                    .group_by(audit_log.c.message_id)).all())
    return answers, refs, audited


@pytest.mark.parametrize("point", [crash.REQUEST_BEFORE_COMMIT, crash.BATCH_BEFORE_COMMIT,
                                   crash.BATCH_AFTER_COMMIT, crash.REQUEST_AFTER_COMMIT])
def test_killed_in_a_batch_loses_and_doubles_nothing(home, servers, point):
    engine = make_engine(home.db_url)
    try:
        maker = operator(home)
        bodies = [order(maker, i, point) for i in range(ORDERS)]
        refs = {message_id(b): f"BC-{point[:9]}-{i}" for i, b in enumerate(bodies)}

        proc, base = servers.start(DIRECTLINK_CRASH_AT=point)
        first = post_all(base, bodies)
        assert proc.wait(timeout=15) == KILLED, f"the server was not SIGKILLed at {point}"
        assert first == [None] * ORDERS, "an answer left before the batch it belongs to was durable"

        answers, paid, audited = kept(engine)
        if point in (crash.REQUEST_BEFORE_COMMIT, crash.BATCH_BEFORE_COMMIT):
            assert (answers, paid, audited) == ({}, {}, {}), "a batch killed before its commit left something"
        else:
            assert answers, "the batch committed before the kill is gone"
        # Kept or lost whole: a stored answer exactly when its payment exists and its request is audited once.
        assert set(paid) == {refs[m] for m in answers} and all(n == 1 for n in paid.values())
        assert audited == dict.fromkeys(answers, 1)
        check_books(engine, f"after the kill at {point}")

        proc, base = servers.start()
        again = post_all(base, bodies)
        assert all(r is not None for r in again)
        for body, resp in zip(bodies, again):
            got = verified(maker, body, resp)
            assert (got.status, got.code) == (200, "OK"), got.detail
            if message_id(body) in answers:
                assert resp.content == answers[message_id(body)], "not the answer stored before the kill"
        servers.stop(proc)

        answers, paid, audited = kept(engine)
        assert paid == dict.fromkeys(refs.values(), 1), "an order lost or doubled"
        assert audited == dict.fromkeys(refs, 1)
        check_books(engine, f"after recovery from {point}")
    finally:
        engine.dispose()
