"""The audit trail: append-only, hash-chained records of every request (with its exact bytes and the
verifying certificate), every payment state change and every configuration change.

Each record's hash covers the previous record's hash and all of its own fields, so editing, removing or
reordering any record breaks the chain, and the head row catches a cut tail. There is one chain per
client (plus `system` and `unverified`), each head row locked by its appends: records chain in commit order
without making different clients wait for each other.
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import hashlib
import json
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from sqlalchemy import (Connection, Engine, LargeBinary, Table, bindparam, cast, delete, event, func, insert,
                        select, union_all, update)

from gateway.storage import json_rows, totals
from gateway.storage.tables import audit_head, audit_log

GENESIS = "0" * 64
SYSTEM, UNVERIFIED = "system", "unverified"
_FIELDS = ("chain", "seq", "at", "kind", "client_id", "operator_id", "message_id", "code", "detail",
           "request_digest", "payment_id", "from_state", "to_state", "cert_fingerprint", "request", "response")


def record_hash(prev_hash: str, record: dict) -> str:
    """SHA-256 over the previous hash and a canonical form of every field (bytes by their SHA-256)."""
    canon = {}
    for name in _FIELDS:
        value = record.get(name)
        if isinstance(value, bytes | memoryview):
            value = hashlib.sha256(bytes(value)).hexdigest()
        elif isinstance(value, dt.datetime):
            value = value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
        canon[name] = value
    blob = json.dumps(canon, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + blob).encode("utf-8")).hexdigest()


# Built once: every request appends at least one record, and building a statement costs more than running
# it on SQLite (the parameters are bound at execution).
_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.chain == bindparam("head_chain")) \
    .with_for_update()
_RECORD = insert(audit_log)
_ADVANCE = update(audit_head).where(audit_head.c.chain == bindparam("head_chain")) \
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))

# The heads of the chains this transaction has locked, as its own appends left them: a request appends
# several records to one chain (its payments' changes, then the request itself), and the head need not be
# read again for each. Kept with the connection and forgotten whenever a transaction begins or ends and
# whenever a savepoint rolls back (the head row goes back with it, and on PostgreSQL so does its lock).
_HEADS = "directlink_audit_heads"
# Under deferred(): the records appended and not yet written, the writes to send with them (along(),
# along_rows(): on PostgreSQL), and how many of each there were as each open savepoint began (a savepoint that
# rolls back takes those given within it along).
_PENDING, _ALONG, _MARKS = "directlink_audit_pending", "directlink_audit_along", "directlink_audit_marks"


def _state(conn) -> dict:
    """The connection's info, where the above are kept; none for a connection lost in the middle of a
    transaction (its info went with it, and reading it would raise instead of the error that lost it)."""
    return {} if conn.invalidated else conn.info


def _forget_heads(conn, *_args) -> None:
    _state(conn).pop(_HEADS, None)


def _committing(conn) -> None:
    if conn.info.get(_PENDING):
        raise RuntimeError("audit records appended under audit.deferred() were not written before the commit")
    _forget_heads(conn)


def _savepoint(conn, _name) -> None:
    if _PENDING in conn.info:
        conn.info[_MARKS].append((len(conn.info[_PENDING]), len(conn.info[_ALONG])))


def _savepoint_released(conn, _name, _context) -> None:
    if _PENDING in conn.info:
        conn.info[_MARKS].pop()


def _savepoint_rolled_back(conn, _name, _context) -> None:
    _forget_heads(conn)
    if _PENDING in conn.info:
        pending = conn.info[_PENDING]
        records, writes = conn.info[_MARKS].pop()
        del pending[records:]
        del conn.info[_ALONG][writes:]
        # A chain with records still pending was locked before the savepoint (its lock stays): its head is
        # where they leave it. Any other is read and locked again at its next append.
        heads = conn.info.setdefault(_HEADS, {})
        for row in pending:
            heads[row["chain"]] = (row["seq"], row["hash"])


for _moment, _listener in (("begin", _forget_heads), ("commit", _committing), ("rollback", _forget_heads),
                           ("savepoint", _savepoint), ("release_savepoint", _savepoint_released),
                           ("rollback_savepoint", _savepoint_rolled_back)):
    event.listen(Engine, _moment, _listener)


def lock_chain(conn: Connection, chain: str) -> tuple[int, str]:
    """Lock a chain's head until the transaction ends and return it, (seq, hash), as this transaction's
    appends have left it. Every transaction that writes a client's payments holds that client's head from
    before its first write (gateway/payments.py), so whoever holds it sees all of them committed, none in
    flight."""
    if chain not in conn.info.get(_HEADS, ()):
        # (The first statement may begin the transaction, which forgets the heads: they are taken after it.)
        head = conn.execute(_HEAD, {"head_chain": chain}).first()
        if head is None:
            conn.execute(insert(audit_head).values(chain=chain, seq=0, hash=GENESIS, base_seq=0, base_hash=GENESIS))
            head = conn.execute(_HEAD, {"head_chain": chain}).one()
        conn.info.setdefault(_HEADS, {})[chain] = (head.seq, head.hash)
    return conn.info[_HEADS][chain]


def lock_chain_reading(conn: Connection, chain: str, read, params: dict):
    """lock_chain(), and a scalar `read` (with its `params`) in the same statement: a round trip less, for a
    read that must follow a lock the caller holds already and that nobody can change while the caller holds
    it (the maker's use of an account's daily limit, under the account's lock: gateway/payments.py). The
    read sees what was committed when the statement began, which waiting for the head does not change."""
    if chain in conn.info.get(_HEADS, ()):
        return conn.execute(select(read), params).scalar()
    head = conn.execute(_head_reading(read), {**params, "head_chain": chain}).first()
    if head is None:
        lock_chain(conn, chain)
        return conn.execute(select(read), params).scalar()
    conn.info.setdefault(_HEADS, {})[chain] = (head.seq, head.hash)
    return head.read


@functools.lru_cache(maxsize=8)
def _head_reading(read):
    return select(audit_head.c.seq, audit_head.c.hash, read.label("read")) \
        .where(audit_head.c.chain == bindparam("head_chain")).with_for_update(of=audit_head)


def append(conn: Connection, *, chain: str, at: dt.datetime, kind: str, code: str, **fields) -> None:
    """Append one record to a chain, inside the caller's transaction (it commits or vanishes with it)."""
    append_many(conn, chain, [dict(at=at, kind=kind, code=code, **fields)])


@contextlib.contextmanager
def deferred(conn: Connection):
    """Write the records appended inside the block together as it ends: one insert and one move of each
    chain's head, instead of one of each per append (a payment request appends its payments' records, then
    its own). The records chain, and the heads are locked, as each append happens; nothing inside may read
    the records back, and the block must end before the transaction commits (a commit with records still
    pending raises). A savepoint rolled back within takes its records along. Nested, it is the outer one."""
    if _PENDING in conn.info:
        yield
        return
    conn.info[_PENDING], conn.info[_ALONG], conn.info[_MARKS] = [], [], []
    try:
        yield
        rows, writes = conn.info[_PENDING], conn.info[_ALONG]
    finally:
        for name in (_PENDING, _ALONG, _MARKS):
            _state(conn).pop(name, None)
    _write(conn, rows, _gathered(writes, conn.dialect))


def along(conn: Connection, statement, params: dict) -> None:
    """Run a write (an INSERT or UPDATE of another table, no RETURNING, its parameters named as no other's)
    with the records of the enclosing deferred() block: on PostgreSQL in their very statement, a round trip
    less (a request's stored answer goes so); elsewhere, or outside such a block, at once. Nothing may read
    what it writes before the block ends. A savepoint rolled back after it was given takes it along."""
    if _PENDING not in conn.info or conn.dialect.name != "postgresql":
        conn.execute(statement, params)
        return
    given = {name for _, earlier, table in conn.info[_ALONG] if table is None for name in earlier}
    if given & params.keys():
        raise RuntimeError(f"audit.along(): parameters {sorted(given & params.keys())} were given in this block")
    conn.info[_ALONG].append((statement, params, None))


def along_rows(conn: Connection, table: Table, rows: list[dict], adding: tuple[str, ...] = ()) -> None:
    """Insert rows of a table (every column but an autoincrementing key named in each) as along() runs a
    write; with `adding`, a row already there under the same key gets these columns added instead (a key
    may come once a block: one statement cannot change a row twice). Rows given for one table in one block
    go in one statement, in the order given."""
    if not rows:
        return
    if _PENDING not in conn.info or conn.dialect.name != "postgresql":
        conn.execute(totals.adding(table, conn.dialect.name, *adding) if adding else _inserting(table), rows)
        return
    conn.info[_ALONG].append((json_rows.inserting(table, adding), rows, table))


_inserting = functools.cache(insert)   # one statement a table: its cache key is worked out once


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


def _write(conn: Connection, rows: list[dict], writes: list[tuple] = ()) -> None:
    last = {row["chain"]: row for row in rows}
    if len(last) == 1 and len(rows) <= _AT_ONCE and conn.dialect.name == "postgresql":
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
    conn.execute(_RECORD, rows)
    conn.execute(_ADVANCE, [{"head_chain": c, "new_seq": r["seq"], "new_hash": r["hash"]} for c, r in last.items()])


_COLUMNS = (*_FIELDS, "prev_hash", "hash")
_AT_ONCE = 20   # records a request commonly appends (its own and its payments'); a large batch takes two statements
# Up to two records go one field a parameter, more as one JSON parameter. psycopg converts a statement of more
# than 50 parameters anew every time it runs: 0.27 ms for a payment's three records with the request's answer,
# 0.02 ms once cached. Two records and the answer stay under 50, and there the parameters are the cheaper
# (a request's one record with its bodies: 0.06 ms less of the gateway's CPU, 0.2 ms less of the server's).
_TYPED = 2


def _with(statement, writes: tuple):
    """The head's move, and the writes given to along() and along_rows(), as data-modifying CTEs of the
    records' insert (PostgreSQL runs each exactly once, whether or not the statement reads it)."""
    statement = statement.add_cte(_ADVANCE.cte("moved"))
    for i, write in enumerate(writes):
        statement = statement.add_cte(write.cte(f"along_{i}"))
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


def append_many(conn: Connection, chain: str, records: list[dict]) -> None:
    """Append records (each with at, kind, code and other fields) to a chain in this order: one insert for
    all of them and one move of the head (or, under deferred(), at the block's end)."""
    if not records:
        return
    seq, prev = lock_chain(conn, chain)
    rows = []
    for fields in records:
        if fields.keys() - _FIELDS:   # a misspelt field would otherwise vanish silently, from the row and the hash
            raise TypeError(f"not audit fields: {sorted(fields.keys() - _FIELDS)}")
        record = dict.fromkeys(_FIELDS)   # every field named, so that one insert can take all the records
        record.update(fields, chain=chain, seq=seq + 1)
        record["hash"] = record_hash(prev, record)
        record["prev_hash"] = prev
        rows.append(record)
        seq, prev = record["seq"], record["hash"]
    conn.info[_HEADS][chain] = (seq, prev)
    if _PENDING in conn.info:
        conn.info[_PENDING].extend(rows)
    else:
        _write(conn, rows)


@dataclass(frozen=True)
class Finding:
    chain: str
    seq: int | None
    problem: str


def verify(conn: Connection) -> tuple[int, list[Finding]]:
    """Walk every chain; return (records checked, findings). No findings means the trail is intact."""
    findings: list[Finding] = []
    checked = 0
    heads = {h.chain: h for h in conn.execute(select(audit_head))}
    chains = {c for (c,) in conn.execute(select(audit_log.c.chain).where(audit_log.c.chain.is_not(None))
                                         .group_by(audit_log.c.chain))}
    for chain in sorted(chains | set(heads)):
        head = heads.get(chain)
        if head is None:
            findings.append(Finding(chain, None, "records exist for a chain that has no head"))
            continue
        expected_seq, prev = head.base_seq + 1, head.base_hash
        rows = conn.execute(select(audit_log).where(audit_log.c.chain == chain).order_by(audit_log.c.seq))
        for row in rows:
            checked += 1
            rec = row._asdict()
            if row.seq != expected_seq:
                findings.append(Finding(chain, row.seq, f"expected record {expected_seq}: records removed or moved"))
            if row.prev_hash != prev:
                findings.append(Finding(chain, row.seq, "does not follow the record before it (removed or reordered)"))
            if record_hash(row.prev_hash or "", rec) != row.hash:
                findings.append(Finding(chain, row.seq, "content does not match its hash (edited)"))
            expected_seq, prev = row.seq + 1, row.hash
        if expected_seq - 1 != head.seq or prev != head.hash:
            findings.append(Finding(chain, head.seq, f"chain ends at {expected_seq - 1} but its head says "
                                                     f"{head.seq}: records at the end were removed"))
    loose = conn.execute(select(func.count()).select_from(audit_log).where(audit_log.c.chain.is_(None))).scalar()
    if loose:
        findings.append(Finding("-", None, f"{loose} record(s) belong to no chain (inserted outside it, "
                                           f"or written before the chain existed)"))
    return checked, findings


def sign_anchor(key, certificate_pem: bytes, anchored: dict[str, dict], at: dt.datetime) -> bytes:
    """An anchor file: the chain heads, signed with the gateway's key, to be kept outside the database."""
    body = json.dumps({"at": at.isoformat(), "heads": anchored}, sort_keys=True, separators=(",", ":"))
    data = body.encode("utf-8")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
    else:
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return json.dumps({"anchor": body, "signature": base64.b64encode(signature).decode("ascii"),
                       "certificate": certificate_pem.decode("ascii")}, indent=1).encode("utf-8")


def read_anchor(blob: bytes, trusted: list[x509.Certificate]) -> dict[str, dict]:
    """The heads of an anchor file whose signature verifies with one of the trusted gateway certificates."""
    doc = json.loads(blob)
    data, signature = doc["anchor"].encode("utf-8"), base64.b64decode(doc["signature"])
    for cert in trusted:
        key = cert.public_key()
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            else:
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return json.loads(data)["heads"]
    raise ValueError("the anchor's signature does not verify with the gateway's certificates")


def heads(conn: Connection) -> dict[str, dict]:
    """Each chain's head (seq and hash): what an anchor kept outside the database pins down."""
    return {h.chain: {"seq": h.seq, "hash": h.hash} for h in conn.execute(select(audit_head).order_by(audit_head.c.chain))}


def check_anchor(conn: Connection, anchored: dict[str, dict]) -> list[Finding]:
    """Compare the chains with heads anchored earlier: each anchored record must still be there, with the
    same hash, unless retention purged it. A chain rewritten from start to end is caught here."""
    findings = []
    now = heads(conn)
    for chain, head in anchored.items():
        current = now.get(chain)
        if current is None or current["seq"] < head["seq"]:
            findings.append(Finding(chain, head["seq"], "the chain is shorter than when it was anchored"))
            continue
        row = conn.execute(select(audit_log.c.hash).where(audit_log.c.chain == chain,
                                                          audit_log.c.seq == head["seq"])).first()
        base = conn.execute(select(audit_head.c.base_seq, audit_head.c.base_hash)
                            .where(audit_head.c.chain == chain)).one()
        if row is not None:
            same = row.hash == head["hash"]
        elif base.base_seq == head["seq"]:
            same = base.base_hash == head["hash"]      # purged by retention exactly up to the anchor
        else:
            same = base.base_seq > head["seq"]         # purged past the anchor: nothing left to compare
        if not same:
            findings.append(Finding(chain, head["seq"], "differs from the anchored head: records were rewritten"))
    return findings


def purge(conn: Connection, older_than: dt.datetime) -> int:
    """Remove records older than the retention cut-off from the start of each chain, keeping it verifiable."""
    removed = 0
    purged: list[str] = []
    for head in conn.execute(select(audit_head).with_for_update()).all():
        # Only the unbroken run of old records at the start: never anything younger than the cut-off.
        first_young = conn.execute(select(func.min(audit_log.c.seq)).where(
            audit_log.c.chain == head.chain, audit_log.c.at >= older_than)).scalar()
        last = (first_young - 1) if first_young is not None else head.seq
        if last <= head.base_seq:
            continue
        last_hash = conn.execute(select(audit_log.c.hash).where(audit_log.c.chain == head.chain,
                                                                audit_log.c.seq == last)).scalar_one()
        count = conn.execute(delete(audit_log).where(audit_log.c.chain == head.chain,
                                                     audit_log.c.seq <= last)).rowcount
        conn.execute(update(audit_head).where(audit_head.c.chain == head.chain)
                     .values(base_seq=last, base_hash=last_hash))
        removed += count
        # The purge itself is on the record (in the system chain, appended after this loop's locks).
        purged.append(f"{head.chain}: records {head.base_seq + 1}-{last} ({count}) older than "
                      f"{older_than.isoformat()}; the chain now starts after hash {last_hash}")
    for line in purged:
        append(conn, chain=SYSTEM, at=dt.datetime.now(dt.timezone.utc), kind="config", code="AUDIT_PURGED",
               detail=line)
    return removed
