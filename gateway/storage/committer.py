"""How a request's unit of work reaches the disk: group commit on SQLite, a transaction each on PostgreSQL.

SQLite has one writer at a time, and a commit waits for its fsync (synchronous=FULL). A transaction of its own
for every request, a balance query too, made each of them wait for the writer and then for its own fsync:
most of a request's time. GroupCommit runs the requests' units of work one after the other, each in a
SAVEPOINT of one shared transaction, and commits that transaction, with one fsync, for all of them:

- A request takes its turn (the writer lock), runs its unit of work inside its own savepoint and releases it;
  a unit that fails (a unique-key twin, funds gone, a defect) rolls back to its savepoint and leaves its
  neighbours' work alone.
- The turn that ends with nobody queued for the next one, or with the batch at its size or age bound,
  commits the batch. Nobody's answer leaves before then: every request of the batch waits in `durable()`,
  and if the commit fails none of them is answered OK (the client sends the same MessageId again; the
  answer is stored with the claim, so a retry executes at most once).
- The audit chains are extended by the units in the order the turns ran, which is the commit order.

PerRequest gives PostgreSQL the same interface with a transaction for each unit: its replicas share the
database, their rows are locked by whoever writes them until that transaction commits, and the server
already shares one WAL flush among the commits that arrive together.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from sqlalchemy import Connection, Engine

from gateway.storage.unit_of_work import UnitOfWork, transaction

# A batch commits at the latest after this many turns or this long after its first: a steady stream of
# requests would otherwise keep it open, and its first answers waiting, for ever.
MAX_BATCH = 64
MAX_DELAY = 0.004   # seconds


class CommitFailed(RuntimeError):
    """The batch a request's writes went into did not commit: nothing of it was kept, and the request is
    answered as a defect (nothing accepted, send it again)."""


class _Batch:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.turns = 0
        self.done = threading.Event()
        self.error: BaseException | None = None


class Turn:
    """One request's turn at the writer: its units of work, and the wait for them to be durable."""

    def __init__(self, committer: GroupCommit | PerRequest):
        self._committer = committer
        self.batch: _Batch | None = None

    @contextlib.contextmanager
    def unit(self) -> Iterator[UnitOfWork]:
        """A unit of work; its writes are kept if the block ends cleanly and are gone if it raises."""
        with self._committer._unit(self) as uow:
            yield uow

    @property
    def settled(self) -> bool:
        """Whether durable() would return at once: the batch committed, or failed, or there was none."""
        return self.batch is None or self.batch.done.is_set()

    def durable(self) -> None:
        """Wait until what this turn's units wrote is committed; CommitFailed if it never will be."""
        if self.batch is None:
            return
        self.batch.done.wait()
        if self.batch.error is not None:
            raise CommitFailed("the batch this request's writes were in did not commit") from self.batch.error


class PerRequest:
    """A transaction of its own for each unit of work (PostgreSQL)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @contextlib.contextmanager
    def turn(self) -> Iterator[Turn]:
        yield Turn(self)

    @contextlib.contextmanager
    def _unit(self, _turn: Turn) -> Iterator[UnitOfWork]:
        with transaction(self.engine) as uow:
            yield uow

    def release_writer(self) -> None:
        """Nothing is kept open between a request's transactions."""


class GroupCommit:
    """Units of work as savepoints of one shared transaction, committed together (SQLite). Thread-safe.

    `crash_point(name)` is called at BEFORE_COMMIT and AFTER_COMMIT (gateway/crash.py arms them)."""

    BEFORE_COMMIT = "batch_before_commit"   # the batch's turns are done, its COMMIT not yet sent
    AFTER_COMMIT = "batch_after_commit"     # committed, no answer of the batch released yet

    def __init__(self, engine: Engine, crash_point: Callable[[str], None] = lambda _name: None,
                 max_batch: int = MAX_BATCH, max_delay: float = MAX_DELAY):
        self.engine = engine
        self._crash_point = crash_point
        self._max_batch, self._max_delay = max_batch, max_delay
        self._writer = threading.Lock()    # whose turn it is: held from a turn's start to its end
        self._counting = threading.Lock()
        self._queued = 0                   # requests waiting for their turn
        self._conn: Connection | None = None
        self._batch: _Batch | None = None  # the open batch: its transaction is open on _conn
        # Whether more turns are on their way besides those queued at the writer: the request thread
        # (gateway/request_thread.py) says so while its queue holds requests, and commits with commit_open()
        # when it is empty.
        self.more: Callable[[], bool] = lambda: False

    @contextlib.contextmanager
    def turn(self) -> Iterator[Turn]:
        with self._counting:
            self._queued += 1
        self._writer.acquire()
        with self._counting:
            self._queued -= 1
        turn = Turn(self)
        try:
            yield turn
        finally:
            try:
                self._end_turn(turn)
            finally:
                self._writer.release()

    @contextlib.contextmanager
    def _unit(self, turn: Turn) -> Iterator[UnitOfWork]:
        conn = self._open(turn)
        turn.batch = self._batch
        # The turn's savepoint on the driver's connection: SQLAlchemy's begin_nested() costs some 0.1 ms a
        # statement more, twice a request. The unit's own savepoints (UnitOfWork.savepoint) nest inside it.
        driver = conn.connection.dbapi_connection
        driver.execute("SAVEPOINT directlink_turn")
        try:
            with UnitOfWork(conn) as uow:
                yield uow
        except BaseException:
            try:
                driver.execute("ROLLBACK TO SAVEPOINT directlink_turn")
                driver.execute("RELEASE SAVEPOINT directlink_turn")
            except Exception:  # noqa: BLE001 - whatever it was, the batch cannot go on
                # The savepoint could not be rolled back (the connection is gone): the batch is lost whole.
                self._fail_batch()
            raise
        try:
            driver.execute("RELEASE SAVEPOINT directlink_turn")
        except Exception:
            self._fail_batch()
            raise

    def _open(self, turn: Turn) -> Connection:
        """The shared connection with the batch's transaction open (BEGIN IMMEDIATE: engine.py)."""
        if self._conn is None or self._conn.invalidated or self._conn.closed:
            self._conn = self.engine.connect()
        if self._batch is not None and turn.batch is not self._batch and self._due(self._batch):
            # Kept open past its bounds by requests that took no turn: committed rather than joined (a turn
            # in it already stays, so that everything it wrote is in the one batch it waits for).
            self._commit(self._batch)
        if self._batch is None:
            if self._conn is None:      # the commit failed and dropped the connection
                self._conn = self.engine.connect()
            try:
                self._conn.begin()
            except Exception:
                # Say, another process held the database longer than the busy timeout: nothing is open, and
                # the request may run again (pipeline._transient) on a fresh connection.
                self._discard()
                raise
            self._batch = _Batch()
        return self._conn

    def _end_turn(self, turn: Turn) -> None:
        """Under the writer lock: count the turn in its batch, and commit the batch if it is complete."""
        batch = self._batch
        if batch is None:
            return
        if turn.batch is batch:
            batch.turns += 1
        with self._counting:
            queued = self._queued
        if (queued or self.more()) and not self._due(batch):
            return   # the next turn joins this batch
        self._commit(batch)

    def commit_open(self, *, due_only: bool = False) -> None:
        """Commit the open batch, if there is one, whoever's turns are in it (see `more`); with `due_only`,
        only if it is at its size or age bound. (The bounds are checked as turns end, too, but requests that
        take no turn, say refused by the rate limit, must not keep a batch open past them.)"""
        with self._writer:
            if self._batch is not None and (not due_only or self._due(self._batch)):
                self._commit(self._batch)

    def release_writer(self) -> None:
        """Before this thread waits on something other threads may hold while they wait for SQLite's lock (a
        pooled connection): a batch it left open would hold that lock meanwhile."""
        self.commit_open()

    def _due(self, batch: _Batch) -> bool:
        return batch.turns >= self._max_batch or time.monotonic() - batch.started >= self._max_delay

    def _commit(self, batch: _Batch) -> None:
        """Under the writer lock: commit the open batch and tell its turns how it went."""
        self._batch = None
        try:
            self._crash_point(self.BEFORE_COMMIT)
            assert self._conn is not None
            self._conn.commit()
            self._crash_point(self.AFTER_COMMIT)
        except Exception as err:  # noqa: BLE001 - the batch is lost; its turns are told so in durable()
            batch.error = err
            self._discard()
        finally:
            batch.done.set()

    def _fail_batch(self) -> None:
        batch, self._batch = self._batch, None
        if batch is not None:
            batch.error = CommitFailed("a savepoint of the batch could not be ended")
            batch.done.set()
        self._discard()

    def _discard(self) -> None:
        """Roll back what is open and drop the connection: the next turn starts on a fresh one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.rollback()
            with contextlib.suppress(Exception):
                conn.invalidate() if conn.invalidated else conn.close()

    def close(self) -> None:
        """Drop the shared connection (no batch is open between turns that ended with nobody queued)."""
        with self._writer:
            self._discard()
