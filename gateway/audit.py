"""The audit trail: append-only, hash-chained records of every request (with its exact bytes and the
verifying certificate), every payment state change and every configuration change.

Each record's hash covers the previous record's hash and all of its own fields, so editing, removing or
reordering any record breaks the chain, and the head row catches a cut tail. There is one chain per
client (plus `system` and `unverified`), each head row locked by its appends: records chain in commit order
without making different clients wait for each other.

Records are appended through the transaction's unit of work (gateway/storage/unit_of_work.py), which locks
the heads, and writes the records (gateway/storage/chain_rows.py) when it flushes.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from sqlalchemy import Connection, delete, func, select, true, update

from gateway.protocol import sm2
from gateway.protocol.signing import SigningKey, public_key
from gateway.storage.tables import audit_head, audit_log
from gateway.storage.unit_of_work import UnitOfWork

SYSTEM, UNVERIFIED = "system", "unverified"
_FIELDS = ("chain", "seq", "at", "kind", "client_id", "operator_id", "message_id", "code", "detail",
           "request_digest", "payment_id", "from_state", "to_state", "cert_fingerprint", "request", "response")
_SORTED_FIELDS = tuple(sorted(_FIELDS))


def record_hash(prev_hash: str, record: dict) -> str:
    """SHA-256 over the previous hash and a canonical form of every field (bytes by their SHA-256)."""
    canon = {}
    for name in _SORTED_FIELDS:   # in sorted order already: json.dumps need not sort every record's keys
        value = record.get(name)
        if isinstance(value, bytes | memoryview):
            value = hashlib.sha256(bytes(value)).hexdigest()
        elif isinstance(value, dt.datetime):
            value = value.astimezone(dt.UTC).isoformat(timespec="microseconds")
        canon[name] = value
    blob = json.dumps(canon, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + blob).encode("utf-8")).hexdigest()


def append(uow: UnitOfWork, *, chain: str, at: dt.datetime, kind: str, code: str, **fields) -> None:
    """Append one record to a chain, in the unit of work's transaction (it commits or vanishes with it)."""
    append_many(uow, chain, [dict(at=at, kind=kind, code=code, **fields)])


def append_many(uow: UnitOfWork, chain: str, records: list[dict]) -> None:
    """Append records (each with at, kind, code and other fields) to a chain in this order, chained on its
    head as the unit of work locked it; they are written when it flushes (one insert for all of them and
    one move of the head), and nothing may read them back before."""
    if not records:
        return
    seq, prev = uow.head(chain)
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
    uow.add_records(chain, rows)


@dataclass(frozen=True)
class Finding:
    chain: str
    seq: int | None
    problem: str


def verify(conn: Connection, only: str | None = None) -> tuple[int, list[Finding]]:
    """Walk every chain, or the one named `only` (the console shows a client its own); return (records
    checked, findings). No findings means the trail is intact."""
    findings: list[Finding] = []
    checked = 0
    heads = {h.chain: h for h in conn.execute(select(audit_head).where(audit_head.c.chain == only if only else true()))}
    chains = {c for (c,) in conn.execute(select(audit_log.c.chain).where(audit_log.c.chain.is_not(None))
                                         .where(audit_log.c.chain == only if only else true())
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
    if only:
        return checked, findings
    loose = conn.execute(select(func.count()).select_from(audit_log).where(audit_log.c.chain.is_(None))).scalar()
    if loose:
        findings.append(Finding("-", None, f"{loose} record(s) belong to no chain (inserted outside it, "
                                           f"or written before the chain existed)"))
    return checked, findings


def sign_anchor(key: SigningKey, certificate_pem: bytes, anchored: dict[str, dict], at: dt.datetime) -> bytes:
    """An anchor file: the chain heads, signed with the gateway's key, to be kept outside the database."""
    body = json.dumps({"at": at.isoformat(), "heads": anchored}, sort_keys=True, separators=(",", ":"))
    signature = key.sign(body.encode("utf-8"))
    if isinstance(public_key(key.certificate), ec.EllipticCurvePublicKey):
        # The key signs in XML-DSig's r||s form; anchor files carry ECDSA signatures in DER, as ever.
        signature = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    return json.dumps({"anchor": body, "signature": base64.b64encode(signature).decode("ascii"),
                       "certificate": certificate_pem.decode("ascii")}, indent=1).encode("utf-8")


def read_anchor(blob: bytes, trusted: list[x509.Certificate]) -> dict[str, dict]:
    """The heads of an anchor file whose signature verifies with one of the trusted gateway certificates."""
    doc = json.loads(blob)
    data, signature = doc["anchor"].encode("utf-8"), base64.b64decode(doc["signature"])
    for cert in trusted:
        key = public_key(cert)
        try:
            if isinstance(key, sm2.PublicKey):   # r||s, as the key signs it
                if not key.verify(signature, data):
                    raise InvalidSignature
            elif isinstance(key, ec.EllipticCurvePublicKey):
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
    with UnitOfWork(conn) as uow:
        for line in purged:
            append(uow, chain=SYSTEM, at=dt.datetime.now(dt.UTC), kind="config", code="AUDIT_PURGED",
                   detail=line)
    return removed
