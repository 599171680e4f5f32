"""The audit chains' rows: locking a chain's head, and writing records with the head's move (and, on
PostgreSQL, the other writes a unit of work sends along) in as few statements as it can.

The hash chain itself (what a record holds, how it is hashed and verified) is gateway/audit.py; the unit
of work (gateway/storage/unit_of_work.py) decides when these run.
"""
from __future__ import annotations

import functools

from sqlalchemy import Connection, LargeBinary, bindparam, cast, insert, select, union_all, update

from gateway.storage import json_rows
from gateway.storage.hot import HotRead, HotWrite
from gateway.storage.tables import audit_head, audit_log

GENESIS = "0" * 64   # the hash an empty chain starts from

# Built once: every request appends at least one record, and building a statement costs more than running
# it on SQLite (the parameters are bound at execution).
_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.chain == bindparam("head_chain")) \
    .with_for_update()
_RECORD = insert(audit_log)
_ADVANCE = update(audit_head).where(audit_head.c.chain == bindparam("head_chain")) \
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
# Run past SQLAlchemy's per-run work (storage/hot.py): every request runs them.
_HEAD_READ, _RECORD_WRITE, _ADVANCE_WRITE = HotRead(_HEAD), HotWrite(_RECORD), HotWrite(_ADVANCE)
_COLUMNS = json_rows.columns(audit_log)   # every field of a record, its prev_hash and hash
AT_ONCE = 20   # records a request commonly appends (its own and its payments'); a large batch takes two statements
# Up to two records go one field a parameter, more as one JSON parameter. psycopg converts a statement of more
# than 50 parameters anew every time it runs: 0.27 ms for a payment's three records with the request's answer,
# 0.02 ms once cached. Two records and the answer stay under 50, and there the parameters are the cheaper
# (a request's one record with its bodies: 0.06 ms less of the gateway's CPU, 0.2 ms less of the server's).
_TYPED = 2


def lock_head(conn: Connection, chain: str) -> tuple[int, str]:
    """Lock a chain's head row until the transaction ends and return it, (seq, hash); made if missing."""
    head = _HEAD_READ.first(conn, {"head_chain": chain})
    if head is None:
        conn.execute(insert(audit_head).values(chain=chain, seq=0, hash=GENESIS, base_seq=0, base_hash=GENESIS))
        head = _HEAD_READ.one(conn, {"head_chain": chain})
    return head.seq, head.hash


def lock_head_reading(conn: Connection, chain: str, read, params: dict) -> tuple[tuple[int, str], object]:
    """lock_head(), and a scalar `read` with its `params` in the same statement: (head, value read)."""
    head = conn.execute(_head_reading(read), {**params, "head_chain": chain}).first()
    if head is None:
        return lock_head(conn, chain), conn.execute(select(read), params).scalar()
    return (head.seq, head.hash), head.read


@functools.lru_cache(maxsize=8)
def _head_reading(read):
    return select(audit_head.c.seq, audit_head.c.hash, read.label("read")) \
        .where(audit_head.c.chain == bindparam("head_chain")).with_for_update(of=audit_head)


def write(conn: Connection, rows: list[dict], writes: list[tuple] = ()) -> None:
    """Insert records (of any chains, each chain's in order) and move each chain's head to its last, with
    `writes`, (statement, parameters) each, run before them or, on PostgreSQL, in their very statement."""
    last = {row["chain"]: row for row in rows}
    if len(last) == 1 and len(rows) <= AT_ONCE and conn.dialect.name == "postgresql":
        # One round trip on PostgreSQL (a request's records all go to its client's chain): the head moves in
        # the statement that inserts the records, and every request ends with this while it holds its locks.
        (chain, end), = last.items()
        params = {"head_chain": chain, "new_seq": end["seq"], "new_hash": end["hash"]}
        for _, their in writes:
            if their.keys() & params.keys():
                raise RuntimeError(f"writes sent along share parameters: {sorted(their.keys() & params.keys())}")
            params.update(their)
        statements = tuple(s for s, _ in writes)
        if len(rows) <= _TYPED:
            params.update({f"{name}_{i}": row[name] for i, row in enumerate(rows) for name in _COLUMNS})
            conn.execute(_typed_records_moving_head(len(rows), statements), params)
        else:
            params[json_rows.param_name(audit_log)] = json_rows.encode(audit_log, rows, conn.dialect)
            conn.execute(_json_records_moving_head(statements), params)
        return
    for statement, params in writes:
        conn.execute(statement, params)
    if not rows:
        return
    moves = [{"head_chain": c, "new_seq": r["seq"], "new_hash": r["hash"]} for c, r in last.items()]
    if conn.dialect.name == "sqlite":   # PostgreSQL comes here rarely (several chains at once, or many records)
        _RECORD_WRITE.run(conn, rows)
        _ADVANCE_WRITE.run(conn, moves)
    else:
        conn.execute(_RECORD, rows)
        conn.execute(_ADVANCE, moves)


def _with(statement, writes: tuple):
    """The head's move, and the writes sent along, as data-modifying CTEs of the records' insert
    (PostgreSQL runs each exactly once, whether or not the statement reads it)."""
    statement = statement.add_cte(_ADVANCE.cte("moved"))
    for i, sent in enumerate(writes):
        statement = statement.add_cte(sent.cte(f"along_{i}"))
    return statement


# Cached by the writes sent along too: a request's kind and outcome make a few dozen shapes at most.
@functools.lru_cache(maxsize=64)
def _typed_records_moving_head(n: int, writes: tuple = ()):
    """n records as a SELECT of parameters (SQLAlchemy caches the compiled form of this shape, not of a
    multi-row VALUES). Every parameter is typed in the SQL (the driver's casts, and an explicit one for the
    bytes, whose NULL would otherwise be text in a UNION); none to a length, which would cut a value short
    silently where an insert refuses it."""
    def param(name: str, i: int):
        typed = bindparam(f"{name}_{i}", type_=audit_log.c[name].type)
        return cast(typed, LargeBinary) if isinstance(typed.type, LargeBinary) else typed
    rows = [select(*[param(name, i) for name in _COLUMNS]) for i in range(n)]
    return _with(insert(audit_log).from_select(_COLUMNS, rows[0] if n == 1 else union_all(*rows)), writes)


@functools.lru_cache(maxsize=64)
def _json_records_moving_head(writes: tuple = ()):
    """Any number of records as one JSON parameter (gateway/storage/json_rows.py): one statement text."""
    return _with(json_rows.inserting(audit_log), writes)
