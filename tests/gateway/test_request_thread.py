"""SQLite's request thread (gateway/request_thread.py): every request on one thread, the batch kept open while
more wait in its queue, each answer released only when its batch is committed, and none answered OK when
its batch is not. Driven on a real event loop, with the gateway's real group commit; no HTTP needed."""
from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest
from conftest import OPERATING, SUPPLIER
from sqlalchemy import event, func, select

from gateway.app import build_gateway
from gateway.protocol import client as dl
from gateway.request_thread import RequestThread
from gateway.storage.committer import CommitFailed, GroupCommit
from gateway.storage.tables import audit_log, messages, payments


@pytest.fixture
def db_url(tmp_path):
    """SQLite only: PostgreSQL runs requests on worker threads, a transaction each."""
    return f"sqlite:///{tmp_path / 'gateway.db'}"


@pytest.fixture
def gw(home):
    gw = build_gateway(home)
    yield gw
    gw.committer.close()
    gw.engine.dispose()


def maker_of(home) -> dl.Client:
    demo = home.home / "demo"
    return dl.Client("http://unused", "DEMO", "maker", (demo / "maker.key.pem").read_bytes(),
                     (demo / "maker.cert.pem").read_bytes(), home.path(home.gateway_cert).read_bytes())


def commits(engine) -> list[int]:
    seen = [0]
    event.listen(engine, "commit", lambda _conn: seen.__setitem__(0, seen[0] + 1))
    return seen


def on_a_loop(coroutine_function, *args):
    """Run a coroutine on an event loop of its own, in a thread of its own (a browser test of the suite may
    have left a loop running on this one)."""
    result: list = []

    def run() -> None:
        try:
            result.append(asyncio.run(coroutine_function(*args)))
        except BaseException as err:  # noqa: BLE001 - raised again in the test's thread
            result.append(err)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if not result:
        raise TimeoutError("the scenario did not finish")
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


async def all_answers(runner: RequestThread, bodies: list[bytes]) -> list:
    """Every body submitted at once; each one's answer or exception. Ten seconds at most: a batch left open
    with nobody to commit it would hang here."""
    return await asyncio.wait_for(asyncio.gather(*(runner.handle(b) for b in bodies), return_exceptions=True), 10)


def test_requests_share_batches_and_each_is_executed_once(home, gw):
    """32 payment orders, 8 sends of one more order's very bytes and 8 bodies with a broken signature, all at
    once: every order executed once, the twins given its one answer, the forgeries refused and audited
    (their records go through the batch too), and fewer commits than requests."""
    maker = maker_of(home)
    orders = [maker.request(dl.payment_order(dl.payment(f"RT-{i}", OPERATING, "1.00", "ACME", SUPPLIER)))
              for i in range(32)]
    twin = maker.request(dl.payment_order(dl.payment("RT-TWIN", OPERATING, "2.00", "ACME", SUPPLIER)))
    forged = [o.replace(b"1.00", b"9.00") for o in orders[:8]]
    seen = commits(gw.engine)
    runner = RequestThread(gw)
    try:
        answers = on_a_loop(all_answers, runner, orders + [twin] * 8 + forged)
    finally:
        runner.close()
    assert all(a.status == 200 for a in answers[:40]), answers[:40]
    assert len({a.body for a in answers[32:40]}) == 1, "every twin gets the one stored answer"
    assert {a.code.value for a in answers[40:]} == {"SIG_INVALID"}
    with gw.engine.connect() as conn:
        refs = dict(conn.execute(select(payments.c.client_ref, func.count()).group_by(payments.c.client_ref)).all())
        refused = conn.execute(select(func.count()).select_from(audit_log)
                               .where(audit_log.c.chain == "unverified")).scalar()
    assert refs == {**{f"RT-{i}": 1 for i in range(32)}, "RT-TWIN": 1}
    assert refused == 8
    assert seen[0] < len(answers), f"{seen[0]} commits for {len(answers)} requests: no batching"


def test_a_request_that_writes_nothing_after_an_open_batch_still_gets_it_committed(home, gw):
    """A request answered without a turn at the writer (over the rate limit) comes last, after a request whose
    batch was kept open because it was queued: the thread commits the batch when its queue is empty, and
    both are answered (without that, the first would wait for ever)."""
    gw.settings = gw.settings.model_copy(update={"rate_limit_burst": 1, "rate_limit_per_second": 0.001})
    gw.limiter = type(gw.limiter)(rate=0.001, burst=1, max_concurrent=10, operator_rate=1000, operator_burst=1000)
    maker = maker_of(home)
    bodies = [maker.request(dl.balance_query(OPERATING)) for _ in range(2)]
    runner, gate, handle = RequestThread(gw), threading.Event(), gw.handle_deferred

    def gated(body, fresh=False):
        gate.wait(10)   # the first request starts only once both are queued
        return handle(body, fresh)

    gw.handle_deferred = gated

    async def scenario():
        task = asyncio.gather(*(runner.handle(b) for b in bodies))
        while runner._queue.qsize() < 1:   # the thread took the first; the second waits in the queue
            await asyncio.sleep(0.001)
        gate.set()
        return await asyncio.wait_for(task, 10)

    try:
        first, second = on_a_loop(scenario)
    finally:
        runner.close()
    assert (first.code.value, second.code.value) == ("OK", "RATE_LIMITED")
    with gw.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar() == 1


def test_a_batch_that_does_not_commit_is_answered_ok_to_nobody(home, gw):
    """Its commit fails: every request of it gets CommitFailed (the server answers INTERNAL, nothing
    accepted), nothing of it is kept, and the next batch commits."""
    def failing(name: str) -> None:
        if name == GroupCommit.BEFORE_COMMIT:
            raise OSError("disk full")

    maker = maker_of(home)
    orders = [maker.request(dl.payment_order(dl.payment(f"NC-{i}", OPERATING, "1.00", "ACME", SUPPLIER)))
              for i in range(6)]
    gw.committer._crash_point = failing
    runner = RequestThread(gw)
    try:
        answers = on_a_loop(all_answers, runner, orders)
        assert all(isinstance(a, CommitFailed) for a in answers), answers
        gw.committer._crash_point = lambda _name: None
        again = on_a_loop(all_answers, runner, orders[:1])
    finally:
        runner.close()
    assert again[0].status == 200 and again[0].code.value == "OK"
    with gw.engine.connect() as conn:
        assert conn.execute(select(payments.c.client_ref)).scalars().all() == ["NC-0"]


def test_requests_that_take_no_turn_do_not_keep_a_batch_open_past_its_bounds(home, gw):
    """A stream of requests refused by the rate limit (they write nothing, so they end no turn) keeps the
    thread's queue full for seconds: a request answered meanwhile is released within the batch's bounds, not
    when the stream stops, and another writer gets the database meanwhile."""
    class MakerFlooding:   # the maker is over its limit, the viewer is not
        def acquire(self, _client, operator=None):
            return None if operator == "viewer" else 5

        def release(self, _client):
            pass

    gw.limiter = MakerFlooding()
    demo = home.home / "demo"
    viewer = dl.Client("http://unused", "DEMO", "viewer", (demo / "viewer.key.pem").read_bytes(),
                       (demo / "viewer.cert.pem").read_bytes(), home.path(home.gateway_cert).read_bytes())
    asked, flood = viewer.request(dl.balance_query(OPERATING)), maker_of(home).request(dl.balance_query(OPERATING))
    runner, seen = RequestThread(gw), {}

    async def scenario():
        stop = time.monotonic() + 2.5

        async def flooding() -> None:
            while time.monotonic() < stop:
                assert (await runner.handle(flood)).code.value == "RATE_LIMITED"
        floods = [asyncio.ensure_future(flooding()) for _ in range(32)]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        answer = await runner.handle(asked)
        seen["answered after"] = time.monotonic() - started
        await asyncio.sleep(0.2)
        other = await asyncio.to_thread(writes_at_once, home.db_url)
        await asyncio.gather(*floods)
        return answer, other

    try:
        answer, other = on_a_loop(scenario)
    finally:
        runner.close()
    assert answer.code.value == "OK"
    assert seen["answered after"] < 1.0, seen   # the flood lasts 2.5 s
    assert other, "another writer could not get the database while the flood went on"


def writes_at_once(db_url: str) -> bool:
    """Whether another connection gets SQLite's write lock within 0.5 s."""
    conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=0.5, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()
