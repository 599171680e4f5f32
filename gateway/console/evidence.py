"""What an approver signs in the console, and the evidence of it kept in the audit chain.

The statement names the decision, the client and operator, and each payment by its PaymentId and the
OrderDigest the page showed; the WebAuthn challenge is its SHA-256, so the key's signature covers exactly
that. The evidence record (kind "console", code APPROVAL_SIGNED or APPROVAL_REFUSED) keeps the statement,
the assertion as the browser sent it, the key's public key and the origin: `directlink audit verify`
checks each one again, offline, against the public key that the key's enrolment record put in the chain.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass

import webauthn
from sqlalchemy import Connection, select, true

from gateway.storage.tables import audit_log

SIGNED, REFUSED = "APPROVAL_SIGNED", "APPROVAL_REFUSED"
DECISIONS = ("APPROVE", "REJECT")


def statement(client: str, operator: str, decision: str, items: list[tuple[str, str]], comment: str | None,
              issued_at: str) -> str:
    """The canonical statement (JSON text) for a decision on (PaymentId, OrderDigest) pairs."""
    return json.dumps({"v": 1, "purpose": "directlink-console-approval", "client": client, "operator": operator,
                       "decision": decision, "comment": comment or "",
                       "items": [{"payment_id": p, "order_digest": d} for p, d in items],
                       "nonce": secrets.token_urlsafe(16), "issued_at": issued_at},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def challenge_of(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def record(text: str, credential: dict, public_key: bytes, credential_id: str, rp_id: str, origin: str) -> bytes:
    """The evidence kept in the audit record's request field (its hash is in the chain)."""
    return json.dumps({"statement": text, "assertion": credential, "credential_id": credential_id,
                       "public_key": base64.urlsafe_b64encode(public_key).decode().rstrip("="),
                       "rp_id": rp_id, "origin": origin}, sort_keys=True, ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Problem:
    seq: int
    chain: str
    problem: str


def verify_all(conn: Connection, only: str | None = None) -> tuple[int, list[Problem]]:
    """Check every approval evidence record (of the chain `only`, if named): the assertion verifies over the
    statement's hash with the key enrolled (in the same chain) for that credential, and the statement names
    the record's operator."""
    a = audit_log.c
    mine = a.chain == only if only else true()
    enrolled: dict[tuple[str, str], tuple[str, str]] = {}   # (chain, credential id) -> (operator, public key)
    for row in conn.execute(select(a.chain, a.operator_id, a.detail).where(a.kind == "console",
                                                                          a.code == "KEY_ENROLLED", mine)):
        words = (row.detail or "").split(" ")   # "credential ID public key KEY" (keys.register)
        if len(words) == 5:
            enrolled[(row.chain, words[1])] = (row.operator_id, words[4])
    checked, problems = 0, []
    for row in conn.execute(select(a.chain, a.seq, a.client_id, a.operator_id, a.request)
                            .where(a.kind == "console", a.code.in_((SIGNED, REFUSED)), mine).order_by(a.chain, a.seq)):
        checked += 1
        why = _check(row, enrolled)
        if why:
            problems.append(Problem(row.seq, row.chain, why))
    return checked, problems


def _check(row, enrolled: dict) -> str | None:
    try:
        ev = json.loads(bytes(row.request))
        said = json.loads(ev["statement"])
    except (TypeError, ValueError, KeyError):
        return "the evidence is not readable"
    if (said.get("client"), said.get("operator")) != (row.client_id, row.operator_id):
        return "the signed statement names another operator than the record"
    operator, key = enrolled.get((row.chain, ev.get("credential_id")), (None, None))
    if key is None or operator != row.operator_id:
        return f"credential {ev.get('credential_id')} was never enrolled for {row.operator_id}"
    if key != ev.get("public_key"):
        return "the evidence's public key is not the one enrolled"
    try:
        webauthn.verify_authentication_response(
            credential=ev["assertion"], expected_challenge=challenge_of(ev["statement"]), expected_rp_id=ev["rp_id"],
            expected_origin=ev["origin"], credential_public_key=webauthn.base64url_to_bytes(key),
            credential_current_sign_count=0, require_user_verification=True)
    except Exception as err:   # noqa: BLE001 - any failure of the library is a finding, named
        return f"the signature does not verify: {err}"
    return None
