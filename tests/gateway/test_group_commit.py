"""Group commit on SQLite (gateway/storage/committer.py): the requests' units of work as savepoints of one
shared transaction. Several turns share one commit; a failing unit leaves its neighbours' work alone; nobody
is told their writes are kept before the batch commits, and nobody at all if it does not.

The turns are ordered with events (a turn holds the writer until its block ends), and the batches' age bound
is lifted where a test holds one open: no timing guesses."""
from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from conftest import OPERATING, SUPPLIER
from sqlalchemy import event, func, insert, select
from sqlalchemy.exc import IntegrityError

from gateway.app import build_gateway
from gateway.protocol import client as dl
from gateway.storage.committer import CommitFailed, GroupCommit
from gateway.storage.engine import make_engine, read_only
from gateway.storage.tables import messages, payments
from gateway.storage.unit_of_work import transaction


@pytest.fixture
def db_url(tmp_path):
    """SQLite only: PostgreSQL commits each request's own transaction (PerRequest)."""
    return f"sqlite:///{tmp_path / 'gateway.db'}"


@pytest.fixture
def engine(home):
    engine = make_engine(home.db_url)
    yield engine
    engine.dispose()


def claim(message_id: str) -> dict:
    now = dt.datetime.now(dt.UTC)
    return dict(client_id="DEMO", message_id=message_id, request_digest="d", received_at=now, http_status=200,
                response=b"<r/>")


def stored(engine) -> set[str]:
    with read_only(engine) as conn:   # a reader: it does not wait for the writer (engine.py)
        return set(conn.execute(select(messages.c.message_id)).scalars())


class Commits:
    def __init__(self, engine):
        self.count = 0
        event.listen(engine, "commit", self._seen)

    def _seen(self, _conn) -> None:
        self.count += 1


def run_turn(committer: GroupCommit, write, outcome: dict, name: str, hold: threading.Event | None = None,
             entered: threading.Event | None = None) -> threading.Thread:
    """A request's turn in a thread of its own: `write(conn)` in its unit; outcome[name] is then 'durable',
    the error its unit raised, or CommitFailed."""
    def body():
        try:
            with committer.turn() as turn:
                if entered:
                    entered.set()
                if hold:
                    hold.wait(10)
                with turn.unit() as uow:
                    write(uow.conn)
            turn.durable()
            outcome[name] = "durable"
        except Exception as err:  # noqa: BLE001 - what the turn was told is what the test checks
            outcome[name] = err
    t = threading.Thread(target=body)
    t.start()
    return t


def queued(committer: GroupCommit, n: int) -> None:
    deadline = time.monotonic() + 10
    while committer._queued < n:   # the other turns are waiting for the writer
        assert time.monotonic() < deadline, "the turns did not queue"
        time.sleep(0.001)


def test_turns_queued_behind_each_other_share_one_commit_and_are_told_only_after_it(engine):
    committer, commits, outcome = GroupCommit(engine, max_delay=60), Commits(engine), {}
    hold, entered = threading.Event(), threading.Event()
    first = run_turn(committer, lambda c: c.execute(insert(messages), claim("M1")), outcome, "M1", hold, entered)
    entered.wait(10)
    others = [run_turn(committer, lambda c, m=m: c.execute(insert(messages), claim(m)), outcome, m)
              for m in ("M2", "M3")]
    queued(committer, 2)
    hold.set()
    for t in [first, *others]:
        t.join(10)
    assert outcome == {"M1": "durable", "M2": "durable", "M3": "durable"}
    assert commits.count == 1, "three turns queued behind each other commit together"
    assert stored(engine) == {"M1", "M2", "M3"}


def test_a_batch_commits_at_its_size_bound_with_turns_still_queued(engine):
    """A steady stream must not keep a batch, and its first answers, open for ever."""
    committer, commits, outcome = GroupCommit(engine, max_batch=2, max_delay=60), Commits(engine), {}
    hold, entered = threading.Event(), threading.Event()
    first = run_turn(committer, lambda c: c.execute(insert(messages), claim("S1")), outcome, "S1", hold, entered)
    entered.wait(10)
    others = [run_turn(committer, lambda c, m=m: c.execute(insert(messages), claim(m)), outcome, m)
              for m in ("S2", "S3", "S4")]
    queued(committer, 3)
    hold.set()
    for t in [first, *others]:
        t.join(10)
    assert outcome == dict.fromkeys(("S1", "S2", "S3", "S4"), "durable")
    assert commits.count == 2, "four turns, two to a batch"


def test_a_turn_is_not_told_durable_while_its_batch_is_open(engine):
    committer, outcome = GroupCommit(engine, max_delay=60), {}
    hold_second, entered = threading.Event(), threading.Event()
    hold_first, first_in = threading.Event(), threading.Event()
    first = run_turn(committer, lambda c: c.execute(insert(messages), claim("A")), outcome, "A", hold_first,
                     first_in)
    first_in.wait(10)
    second = run_turn(committer, lambda c: c.execute(insert(messages), claim("B")), outcome, "B", hold_second,
                      entered)
    queued(committer, 1)
    hold_first.set()            # the first turn ends with the second queued: the batch stays open
    entered.wait(10)
    time.sleep(0.05)
    assert "A" not in outcome, "told durable before its batch committed"
    assert stored(engine) == set(), "another connection sees nothing of an open batch"
    hold_second.set()
    first.join(10)
    second.join(10)
    assert outcome == {"A": "durable", "B": "durable"} and stored(engine) == {"A", "B"}


def test_a_failing_unit_leaves_its_neighbours_in_the_batch_alone(engine):
    committer, commits, outcome = GroupCommit(engine, max_delay=60), Commits(engine), {}
    hold, entered = threading.Event(), threading.Event()

    def twin(conn):   # a unique-key twin of the first turn's claim, after a write of its own
        conn.execute(insert(messages), claim("TWIN-OWN"))
        conn.execute(insert(messages), claim("FIRST"))

    first = run_turn(committer, lambda c: c.execute(insert(messages), claim("FIRST")), outcome, "FIRST", hold,
                     entered)
    entered.wait(10)
    rest = [run_turn(committer, twin, outcome, "TWIN"),
            run_turn(committer, lambda c: c.execute(insert(messages), claim("LAST")), outcome, "LAST")]
    queued(committer, 2)
    hold.set()
    for t in [first, *rest]:
        t.join(10)
    assert isinstance(outcome.pop("TWIN"), IntegrityError)
    assert outcome == {"FIRST": "durable", "LAST": "durable"}
    assert commits.count == 1
    assert stored(engine) == {"FIRST", "LAST"}, "the twin's own write went with its savepoint, nothing else did"


def test_a_batch_that_does_not_commit_is_answered_ok_to_none_of_its_turns(engine):
    def failing_commit(name: str) -> None:
        if name == GroupCommit.BEFORE_COMMIT:
            raise OSError("disk full")

    committer, outcome = GroupCommit(engine, failing_commit, max_delay=60), {}
    hold, entered = threading.Event(), threading.Event()
    first = run_turn(committer, lambda c: c.execute(insert(messages), claim("X1")), outcome, "X1", hold, entered)
    entered.wait(10)
    second = run_turn(committer, lambda c: c.execute(insert(messages), claim("X2")), outcome, "X2")
    queued(committer, 1)
    hold.set()
    first.join(10)
    second.join(10)
    assert all(isinstance(v, CommitFailed) for v in outcome.values()) and len(outcome) == 2
    assert stored(engine) == set()
    # The committer goes on with a fresh connection; other writers were never shut out.
    with transaction(engine) as uow:
        uow.conn.execute(insert(messages), claim("OTHER"))
    committer._crash_point = lambda _name: None
    again = run_turn(committer, lambda c: c.execute(insert(messages), claim("X3")), outcome, "X3")
    again.join(10)
    assert outcome["X3"] == "durable" and stored(engine) == {"OTHER", "X3"}


def test_concurrent_requests_through_the_gateway_commit_in_fewer_batches_each_answered_once(home):
    """The pipeline on group commit: 32 payment orders and 8 sends of one more order's very bytes, from
    16 threads at once. Every distinct order is executed once, the twins get its one answer, and the batches
    are fewer than the requests."""
    gw = build_gateway(home)
    try:
        demo = home.home / "demo"
        maker = dl.Client("http://unused", "DEMO", "maker", (demo / "maker.key.pem").read_bytes(),
                          (demo / "maker.cert.pem").read_bytes(), home.path(home.gateway_cert).read_bytes())
        bodies = [maker.request(dl.payment_order(dl.payment(f"GC-{i}", OPERATING, "1.00", "ACME", SUPPLIER)))
                  for i in range(32)]
        twin = maker.request(dl.payment_order(dl.payment("GC-TWIN", OPERATING, "2.00", "ACME", SUPPLIER)))
        work = bodies + [twin] * 8
        commits = Commits(gw.engine)
        start, answers, lock = threading.Barrier(16), {}, threading.Lock()

        def client(k: int) -> None:
            start.wait(10)
            for i in range(k, len(work), 16):
                reply = gw.handle(work[i])
                with lock:
                    answers[i] = reply
        threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(answers) == len(work) and all(a.status == 200 for a in answers.values())
        assert len({answers[i].body for i in range(32, 40)}) == 1, "every twin gets the one stored answer"
        batches = commits.count
        with gw.engine.connect() as conn:
            refs = conn.execute(select(payments.c.client_ref, func.count()).group_by(payments.c.client_ref)).all()
        assert dict(refs) == {**{f"GC-{i}": 1 for i in range(32)}, "GC-TWIN": 1}
        assert batches < len(work), f"{batches} commits for {len(work)} requests: no batching"
    finally:
        gw.committer.close()
        gw.engine.dispose()


def test_the_writes_run_past_sqlalchemy_fail_as_sqlalchemy_would_and_take_every_value(engine):
    """storage/hot.py: a unique-key twin raises SQLAlchemy's IntegrityError (the pipeline's retry waits for
    that), and a statement that would need a default computed in Python is refused, not run without it."""
    from gateway.storage.hot import HotWrite
    from gateway.storage.tables import accounts
    write = HotWrite(insert(messages))
    with transaction(engine) as uow:
        write.run(uow.conn, claim("H1"))
        with pytest.raises(IntegrityError), uow.savepoint():
            write.run(uow.conn, [claim("H2"), claim("H1")])
    assert stored(engine) == {"H1"}
    with transaction(engine) as uow, pytest.raises(ValueError, match="every value is given"):
        HotWrite(insert(accounts)).run(uow.conn, {"number": "X", "client_id": None, "name": "n", "currency": "CNY"})


def test_the_hot_writes_convert_every_row_s_own_values(engine):
    """storage/hot.py keeps a converter's last result for the same object: rows with instants alternating,
    shared and equal-but-distinct are each stored with their own, as SQLAlchemy itself stores them."""
    from gateway.storage.hot import HotWrite
    t1 = dt.datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=dt.UTC)
    t2 = dt.datetime(2026, 12, 9, 4, 5, 6, tzinfo=dt.UTC)
    t3 = dt.datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=dt.UTC)   # equal to t1, another object
    instants = [t1, t1, t2, t1, t3, t2, t2]
    rows = [{**claim(f"T{i}"), "received_at": at} for i, at in enumerate(instants)]
    with transaction(engine) as uow:
        HotWrite(insert(messages)).run(uow.conn, rows[:4])
        uow.conn.execute(insert(messages), rows[4:5])   # SQLAlchemy's own, as the judge
        HotWrite(insert(messages)).run(uow.conn, rows[5:])
    with read_only(engine) as conn:
        got = dict(conn.execute(select(messages.c.message_id, messages.c.received_at)).all())
    assert [got[f"T{i}"].replace(tzinfo=dt.UTC) for i in range(len(instants))] == instants
