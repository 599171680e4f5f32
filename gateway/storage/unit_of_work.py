"""The unit of work: what one transaction writes through it, sent to the database together at its end.

A request holds its locks (the accounts', the client's) from its first write to its commit, so what it
writes goes out as late and in as few statements as it can: its audit records, one insert and one move of
each chain's head at the end instead of one of each per append; on PostgreSQL, the writes nothing in the
request reads back (its answer, payments, holds, entries, events, totals) in that very statement, as
data-modifying CTEs (gateway/storage/chain_rows.py). A UnitOfWork is made for ONE transaction, carried in
the request's context (gateway/operations.py, gateway/payments.py); code outside requests makes one per
transaction too (transaction() below, or `with UnitOfWork(conn)` on a connection it was handed).

The rule: nothing written through a unit of work may be read back before it flushes. Its audit records
(everywhere) and the writes given to along() and along_rows() (on PostgreSQL) are still in memory until
then. Checked where it is cheap: one unit of work is open on a connection at a time (a second would read
a chain's head before the first has moved it, and fork the chain); no flush inside one of its savepoints;
nothing is taken after it has ended; and a block that ends with writes still pending after its transaction
committed by hand raises, rather than lose them silently.

It also holds the client lock (lock_client): see there.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from sqlalchemy import Connection, Engine, Table, insert, select

from gateway.storage import chain_rows, json_rows, totals
from gateway.storage.hot import HotWrite

# The open unit of work of a connection, kept in its info only to refuse a second one (see the rule above).
_OPEN = "directlink_unit_of_work"


class UnitOfWork:
    """One transaction's writes, sent together as it ends (flush). Use it as a context manager inside the
    transaction: a clean exit flushes, an exception drops what is pending, and either way it ends."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._postgresql = conn.dialect.name == "postgresql"
        # The heads of the chains this unit has locked, as its own records leave them: a request appends
        # several records to one chain (its payments' changes, then the request itself), and the head need
        # not be read again for each.
        self._heads: dict[str, tuple[int, str]] = {}
        self._records: list[dict] = []   # audit records, built on those heads (gateway/audit.py)
        self._along: list[tuple] = []    # (statement, parameters or rows, table or None): on PostgreSQL
        self._marks: list[tuple[int, int]] = []   # how many of each there were as each open savepoint began
        self._transaction = None
        self._ended = False

    def __enter__(self) -> UnitOfWork:
        if self.conn.info.get(_OPEN) is not None:
            raise RuntimeError("a unit of work is open on this connection already: use that one")
        self._transaction = self.conn.get_transaction() or self.conn.begin()
        self.conn.info[_OPEN] = self   # only once the transaction is there: a failed begin leaves nothing
        return self

    def __exit__(self, kind, _error, _trace) -> None:
        try:
            if kind is None:
                self.flush()
        finally:
            self._ended = True
            # A connection lost in the middle of the transaction took its info with it (reading it would
            # raise instead of the error that lost it).
            if not self.conn.invalidated:
                self.conn.info.pop(_OPEN, None)

    # ---- the chains' heads, and the client lock -------------------------------------------------------

    def head(self, chain: str) -> tuple[int, str]:
        """Lock a chain's head until the transaction ends and return it, (seq, hash), as this unit's
        records have left it (a chain with no head yet gets one, at the start)."""
        self._open()
        if chain not in self._heads:
            self._heads[chain] = chain_rows.lock_head(self.conn, chain)
        return self._heads[chain]

    def lock_client(self, client: str) -> None:
        """The client lock: every transaction that writes a client's payments holds it from before its first
        write to its commit (gateway/payments.py), so whoever holds it sees all of them committed, none in
        flight. It is the head row of the client's audit chain, which each of them locks anyway to append
        its records: no lock of its own to take."""
        self.head(client)

    def lock_client_reading(self, client: str, read, params: dict):
        """lock_client(), and a scalar `read` (with its `params`) in the same statement: a round trip less,
        for a read that must follow a lock the caller holds already and that nobody can change while the
        caller holds it (the maker's use of an account's daily limit, under the account's lock:
        gateway/payments.py). The read sees what was committed when the statement began, which waiting for
        the head does not change. Locked already, the read runs alone."""
        self._open()
        if client in self._heads:
            return self.conn.execute(select(read), params).scalar()
        head, value = chain_rows.lock_head_reading(self.conn, client, read, params)
        self._heads[client] = head
        return value

    # ---- what is written at the flush ---------------------------------------------------------------------

    def add_records(self, chain: str, rows: list[dict]) -> None:
        """Audit records of one chain, each with every column of audit_log, chained on its head as this
        unit holds it (gateway/audit.py builds them): written at the flush, the head moved to the last."""
        self._open()
        if rows[0]["prev_hash"] != self._heads[chain][1]:
            raise RuntimeError(f"records for chain {chain} do not follow its head as this unit holds it")
        self._records.extend(rows)
        self._heads[chain] = (rows[-1]["seq"], rows[-1]["hash"])

    def along(self, statement, params: dict) -> None:
        """Run a write (an INSERT or UPDATE, no RETURNING, its parameters named as no other's) with the
        unit's last statement: on PostgreSQL in that very statement, a round trip less (a request's stored
        answer goes so); elsewhere at once."""
        self._open()
        if not self._postgresql:
            _hot(statement).run(self.conn, params)
            return
        given = {name for _, earlier, table in self._along if table is None for name in earlier}
        if given & params.keys():
            raise RuntimeError(f"along(): parameters {sorted(given & params.keys())} were given in this unit")
        self._along.append((statement, params, None))

    def along_rows(self, table: Table, rows: list[dict], adding: tuple[str, ...] = ()) -> None:
        """Insert rows of a table (every column but an autoincrementing key named in each) as along() runs a
        write; with `adding`, a row already there under the same key gets these columns added instead (a key
        may come once a unit: one statement cannot change a row twice). Rows given for one table go in one
        statement, in the order given."""
        self._open()
        if not rows:
            return
        if not self._postgresql:
            statement = totals.adding(table, self.conn.dialect.name, *adding) if adding else _inserting(table)
            _hot(statement).run(self.conn, list(rows))
            return
        self._along.append((json_rows.inserting(table, adding), rows, table))

    def flush(self) -> None:
        """Write everything pending (a request's last statement: pipeline.py calls it before it commits)."""
        if self._ended:
            raise RuntimeError("this unit of work has ended")
        if not (self._records or self._along):
            return
        if not self._transaction.is_active:
            raise RuntimeError("writes given to a unit of work (audit records among them) were not written "
                               "before the commit of its transaction")
        if self._marks:
            raise RuntimeError("a unit of work flushes at its end, not inside one of its savepoints")
        rows, writes = self._records, _gathered(self._along, self.conn.dialect)
        self._records, self._along = [], []
        chain_rows.write(self.conn, rows, writes)

    def _open(self) -> None:
        if self._ended or self._transaction is None:
            raise RuntimeError("a unit of work is used between its `with` block's start and end only")

    # ---- savepoints ---------------------------------------------------------------------------------------

    def savepoint(self) -> Savepoint:
        """A savepoint of the transaction (conn.begin_nested()) that, rolled back, also takes along what was
        given to this unit within it. Use it as a context manager, or call its rollback()/release()."""
        self._open()
        return Savepoint(self)

    def _undo(self, records: int, writes: int) -> None:
        del self._records[records:]
        del self._along[writes:]
        # The rolled-back savepoint took along the head rows it moved or made and, on PostgreSQL, the locks
        # it took. A chain with records still pending was locked before it (its lock stays): its head is
        # where they leave it. Any other is read and locked again at its next append.
        self._heads = {row["chain"]: (row["seq"], row["hash"]) for row in self._records}


class Savepoint:
    """A savepoint of a unit of work's transaction (UnitOfWork.savepoint)."""

    def __init__(self, uow: UnitOfWork):
        self._uow = uow
        self._nested = uow.conn.begin_nested()
        self._depth: int | None = len(uow._marks)
        uow._marks.append((len(uow._records), len(uow._along)))

    def __enter__(self) -> Savepoint:
        return self

    def __exit__(self, kind, _error, _trace) -> None:
        if self._depth is None:   # released or rolled back by hand already
            return
        if kind is None:
            self.release()
        else:
            self.rollback()

    def release(self) -> None:
        self._end()
        self._nested.commit()

    def rollback(self) -> None:
        records, writes = self._end()
        self._nested.rollback()
        self._uow._undo(records, writes)

    def _end(self) -> tuple[int, int]:
        if self._depth is None or len(self._uow._marks) != self._depth + 1:
            raise RuntimeError("savepoints end in the order they began, once each")
        self._depth = None
        return self._uow._marks.pop()


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[UnitOfWork]:
    """A transaction of its own with its unit of work: written as the block ends, then committed (or, on an
    exception, rolled back with nothing written). How code outside requests (jobs, clearing) writes."""
    with engine.begin() as conn, UnitOfWork(conn) as uow:
        yield uow


_inserting = functools.cache(insert)   # one statement a table: its cache key is worked out once
# The writes a unit runs at once (SQLite), each compiled once (storage/hot.py): they are the same few dozen
# statements, built once each, over and over.
_hot = functools.cache(HotWrite)


def _gathered(writes: list[tuple], dialect) -> list[tuple]:
    """The writes given to along() and along_rows() as (statement, parameters), the rows of one statement
    together, in the order each statement was first given."""
    rows_of: dict = {}
    gathered = []
    for statement, payload, table in writes:
        if table is None:
            gathered.append((statement, payload))
        elif statement in rows_of:
            rows_of[statement][1].extend(payload)
        else:
            rows_of[statement] = (table, list(payload))
            gathered.append((statement, None))
    return [(s, p if p is not None else {json_rows.param_name(rows_of[s][0]):
                                         json_rows.encode(rows_of[s][0], rows_of[s][1], dialect)})
            for s, p in gathered]
