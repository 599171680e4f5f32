"""The agent's durable memory, one SQLite file: files seen, their exact signed requests and outcomes,
payments still to be asked about, statement cursors, and inbox files not yet written.

The rule that makes restarts safe: every decision is committed here BEFORE the world outside is
touched (the request before it is sent, the inbox file before it is written, the cursor together with
the statement page it moves past), so a restart can always finish what was started, and never
starts it twice."""
from __future__ import annotations

import fcntl
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

SUBMITTING, DONE, FAILED = "submitting", "done", "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    sha256      TEXT PRIMARY KEY,          -- the content: the same bytes are never sent as a new file
    name        TEXT NOT NULL,             -- the name it had in the outbox
    format      TEXT NOT NULL,
    state       TEXT NOT NULL,             -- submitting | done | failed
    message_id  TEXT NOT NULL,
    request     BLOB NOT NULL,             -- the exact signed bytes sent (or about to be)
    signed_at   REAL NOT NULL,             -- the request's Created, unix time
    batch_id    TEXT,
    reason      TEXT,                      -- why it failed, as written beside it in failed/
    seen_at     REAL NOT NULL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS payments (
    payment_id  TEXT PRIMARY KEY,
    client_ref  TEXT NOT NULL,
    batch_id    TEXT,
    file_sha256 TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,  -- polls since the state last changed (the back-off exponent)
    next_poll   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS payment_blocks (  -- a pain.001's PmtInfId of each ClientRef, for the pain.002s
    file_sha256 TEXT NOT NULL,
    client_ref  TEXT NOT NULL,
    pmt_inf_id  TEXT NOT NULL,
    PRIMARY KEY (file_sha256, client_ref)
);
CREATE TABLE IF NOT EXISTS cursors (
    account     TEXT PRIMARY KEY,
    after       TEXT NOT NULL,             -- the NextCursor of the last statement page written
    updated_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,   -- the order the ERP should read them in
    name        TEXT NOT NULL UNIQUE,      -- the inbox file name
    data        BLOB,                      -- the bytes, kept until written
    written     INTEGER NOT NULL DEFAULT 0
);
"""


class StateBusy(RuntimeError):
    """Another agent process holds this state file."""


def _exclusive(lock_file: Path, what: str):
    """An exclusive lock for the life of this process (it dies with it: a killed agent never blocks its
    restart), or StateBusy naming what another agent holds."""
    handle = open(lock_file, "a")  # noqa: SIM115 - the open file is the lock, held until the process ends
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StateBusy(f"another agent is running with {what}") from None
    return handle


class State:
    def __init__(self, path: Path, outbox: Path | None = None):
        path.parent.mkdir(parents=True, exist_ok=True)
        # Two agents on one state file, or on one outbox with two state files, would each send the same new
        # file (the gateway would still pay it once, by ClientRef): the second one refuses to start.
        self._locks = [_exclusive(path.with_name(path.name + ".lock"), f"the state file {path}")]
        if outbox is not None:
            try:
                self._locks.append(_exclusive(outbox / ".directlink-agent.lock", f"the outbox {outbox}"))
            except StateBusy:
                self._locks[0].close()
                raise
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30,
                                  check_same_thread=False)   # the scheduler's one worker thread uses it
        self.db.row_factory = sqlite3.Row
        # WAL with synchronous=FULL: every commit is on disk before the call returns.
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()
        for lock in self._locks:
            lock.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ---- files ------------------------------------------------------------------------------------------

    def file(self, sha256: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM files WHERE sha256 = ?", (sha256,)).fetchone()

    def record_intent(self, sha256: str, name: str, fmt: str, message_id: str, request: bytes,
                      signed_at: float, blocks: Mapping[str, str] | None = None) -> None:
        """A new file and the request about to carry it (and, for a pain.001, the PmtInfId of each ClientRef);
        committed before the request is sent."""
        with self.transaction() as db:
            db.execute("INSERT INTO files (sha256, name, format, state, message_id, request, signed_at,"
                       " seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (sha256, name, fmt, SUBMITTING, message_id, request, signed_at, time.time()))
            db.executemany("INSERT INTO payment_blocks (file_sha256, client_ref, pmt_inf_id) VALUES (?, ?, ?)"
                           " ON CONFLICT DO NOTHING", [(sha256, ref, block) for ref, block in (blocks or {}).items()])

    @staticmethod
    def payment_blocks(db: sqlite3.Connection, sha256: str) -> dict[str, str]:
        """ClientRef -> PmtInfId of a file's payments ({} for a file that is no pain.001)."""
        return {r["client_ref"]: r["pmt_inf_id"] for r in db.execute(
            "SELECT client_ref, pmt_inf_id FROM payment_blocks WHERE file_sha256 = ?", (sha256,))}

    def renew_request(self, sha256: str, message_id: str, request: bytes, signed_at: float) -> None:
        """The stored request is too old for the gateway: a new message (same payments, same ClientRefs)."""
        with self.transaction() as db:
            db.execute("UPDATE files SET message_id = ?, request = ?, signed_at = ?"
                       " WHERE sha256 = ? AND state = ?",
                       (message_id, request, signed_at, sha256, SUBMITTING))

    @staticmethod
    def finish_file(db: sqlite3.Connection, sha256: str, state: str, batch_id: str | None,
                    reason: str | None) -> None:
        db.execute("UPDATE files SET state = ?, batch_id = ?, reason = ?, finished_at = ? WHERE sha256 = ?",
                   (state, batch_id, reason, time.time(), sha256))

    # ---- payments ---------------------------------------------------------------------------------------

    @staticmethod
    def add_payment(db: sqlite3.Connection, payment_id: str, client_ref: str, batch_id: str | None,
                    sha256: str, state: str, next_poll: float) -> None:
        # The same payment can come back for a second file (same ClientRef, same content): keep the first.
        db.execute("INSERT INTO payments (payment_id, client_ref, batch_id, file_sha256, state, next_poll)"
                   " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (payment_id) DO NOTHING",
                   (payment_id, client_ref, batch_id, sha256, state, next_poll))

    def payments_to_poll(self, states: tuple[str, ...], due_by: float | None) -> list[sqlite3.Row]:
        """Payments in one of `states`, those whose next poll has come (all of them if due_by is None)."""
        marks = ", ".join("?" * len(states))
        sql = f"SELECT * FROM payments WHERE state IN ({marks})"
        args: list = list(states)
        if due_by is not None:
            sql += " AND next_poll <= ?"
            args.append(due_by)
        return self.db.execute(sql + " ORDER BY next_poll, payment_id", args).fetchall()

    @staticmethod
    def update_payment(db: sqlite3.Connection, payment_id: str, state: str, attempts: int,
                       next_poll: float) -> None:
        db.execute("UPDATE payments SET state = ?, attempts = ?, next_poll = ? WHERE payment_id = ?",
                   (state, attempts, next_poll, payment_id))

    # ---- statement cursors ------------------------------------------------------------------------------

    def cursor(self, account: str) -> str:
        row = self.db.execute("SELECT after FROM cursors WHERE account = ?", (account,)).fetchone()
        return row["after"] if row else ""

    @staticmethod
    def set_cursor(db: sqlite3.Connection, account: str, after: str) -> None:
        db.execute("INSERT INTO cursors (account, after, updated_at) VALUES (?, ?, ?) ON CONFLICT (account)"
                   " DO UPDATE SET after = excluded.after, updated_at = excluded.updated_at",
                   (account, after, time.time()))

    # ---- inbox files ------------------------------------------------------------------------------------

    @staticmethod
    def add_delivery(db: sqlite3.Connection, name: str, data: bytes) -> str:
        """An inbox file to write; `{seq}` in the name becomes its place in the delivery order."""
        seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM deliveries").fetchone()[0]
        name = name.replace("{seq}", f"{seq:06d}")
        db.execute("INSERT INTO deliveries (seq, name, data) VALUES (?, ?, ?)", (seq, name, data))
        return name

    def pending_deliveries(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT seq, name, data FROM deliveries WHERE written = 0 ORDER BY seq"
                               ).fetchall()

    def delivered(self, seq: int) -> None:
        # The bytes are in the inbox now; keeping them here too would only grow the file.
        with self.transaction() as db:
            db.execute("UPDATE deliveries SET written = 1, data = NULL WHERE seq = ?", (seq,))
