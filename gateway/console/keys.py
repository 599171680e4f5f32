"""Operators' security keys (WebAuthn): one-time enrolment links, the challenges handed out, and the two
ceremonies, checked by py_webauthn with user verification required.

Every challenge is stored and used at most once, so a replayed assertion finds its challenge spent; it is
kept in the database (not in memory) so that any replica can finish what another began.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import webauthn
from sqlalchemy import Connection, delete, func, insert, or_, select, update
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from gateway import audit, directory
from gateway.storage.tables import (
    console_challenges,
    console_credentials,
    console_enrolments,
    console_sessions,
    operators,
)
from gateway.storage.unit_of_work import UnitOfWork

CHALLENGE_MINUTES = 5
REQUIRED = UserVerificationRequirement.REQUIRED


class KeyRefused(Exception):
    """A ceremony that did not verify: a forged, replayed, expired or foreign assertion (the message says
    which, for the audit record; the page says only that it was refused)."""


@dataclass(frozen=True)
class Party:
    """Who the keys are bound to: the console's origin and its host name (the WebAuthn relying party)."""

    origin: str
    rp_id: str
    name: str

    @classmethod
    def of(cls, origin: str, name: str) -> Party:
        return cls(origin.rstrip("/"), urlsplit(origin).hostname or "localhost", name)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# ---- enrolment links -----------------------------------------------------------------------------------

def new_enrolment(conn: Connection, client: str, operator: str, now: dt.datetime,
                  hours: float = 24) -> tuple[str, dt.datetime]:
    """A one-time enrolment token for an operator (only its digest is stored), with its expiry; audited."""
    directory.require_operator(conn, client, operator)
    token = secrets.token_urlsafe(32)
    expires = now + dt.timedelta(hours=hours)
    conn.execute(insert(console_enrolments).values(token_hash=digest(token), client_id=client, operator_id=operator,
                                                   created_at=now, expires_at=expires))
    with UnitOfWork(conn) as uow:
        audit.append(uow, chain=client, at=now, kind="console", code="ENROL_LINK", client_id=client,
                     operator_id=operator, detail=f"enrolment link for {client}/{operator}, expires "
                                                  f"{expires.isoformat(timespec='seconds')}")
    return token, expires


@dataclass(frozen=True)
class Enrolment:
    token_hash: str
    client: str
    operator: str
    name: str
    expires_at: dt.datetime


def enrolment(conn: Connection, token: str, now: dt.datetime) -> Enrolment | None:
    """The enrolment a token opens, if it is unused and unexpired."""
    row = conn.execute(select(console_enrolments, operators.c.name).join(operators, (
        operators.c.client_id == console_enrolments.c.client_id) & (operators.c.id == console_enrolments.c.operator_id))
        .where(console_enrolments.c.token_hash == digest(token))).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    return Enrolment(row.token_hash, row.client_id, row.operator_id, row.name, row.expires_at)


# ---- challenges ----------------------------------------------------------------------------------------

def new_challenge(conn: Connection, purpose: str, client: str, operator: str, now: dt.datetime, *,
                  challenge: bytes | None = None, statement: str | None = None, session_hash: str | None = None,
                  address: str | None = None) -> tuple[str, bytes]:
    """Store a challenge for one ceremony; return its handle and the challenge."""
    handle = secrets.token_urlsafe(24)
    challenge = challenge or secrets.token_bytes(32)
    conn.execute(insert(console_challenges).values(
        id=handle, purpose=purpose, client_id=client, operator_id=operator, challenge=challenge,
        statement=statement, session_hash=session_hash, address=address, created_at=now,
        expires_at=now + dt.timedelta(minutes=CHALLENGE_MINUTES)))
    return handle, challenge


def purge(conn: Connection, now: dt.datetime) -> None:
    """Forget challenges and sessions over a day past their use (the rate limit counts minutes back)."""
    day = now - dt.timedelta(days=1)
    conn.execute(delete(console_challenges).where(console_challenges.c.expires_at < day))
    s = console_sessions.c
    conn.execute(delete(console_sessions).where(or_(s.ended_at < day, s.last_seen < day)))


def take_challenge(conn: Connection, handle: str, purpose: str, now: dt.datetime):
    """The challenge of a handle, spent by this call: None if it is unknown, expired or spent already."""
    c = console_challenges.c
    spent = conn.execute(update(console_challenges).where(
        c.id == handle, c.purpose == purpose, c.used_at.is_(None), c.expires_at > now).values(used_at=now)).rowcount
    if spent != 1:
        return None
    return conn.execute(select(console_challenges).where(c.id == handle)).one()


def recent_signins(conn: Connection, client: str, operator: str, address: str | None, since: dt.datetime
                   ) -> tuple[int, int]:
    """Sign-ins begun since `since` for this operator, and from this address (the rate limit's counts)."""
    c = console_challenges.c
    base = select(func.count()).select_from(console_challenges).where(c.purpose == "signin", c.created_at >= since)
    mine = conn.execute(base.where(c.client_id == client, c.operator_id == operator)).scalar() or 0
    there = conn.execute(base.where(c.address == address)).scalar() if address else 0
    return mine, there or 0


# ---- credentials ---------------------------------------------------------------------------------------

def credentials(conn: Connection, client: str, operator: str) -> list:
    c = console_credentials.c
    return conn.execute(select(console_credentials).where(c.client_id == client, c.operator_id == operator,
                                                          c.revoked_at.is_(None))).all()


def revoke_all(conn: Connection, client: str, operator: str, now: dt.datetime) -> int:
    """Revoke every security key of an operator (a key lost or an operator leaving): their sessions end at
    their next request and they cannot sign in until a new key is enrolled; audited. Returns how many."""
    directory.require_operator(conn, client, operator)
    c = console_credentials.c
    ids = conn.execute(select(c.id).where(c.client_id == client, c.operator_id == operator,
                                          c.revoked_at.is_(None))).scalars().all()
    if ids:
        conn.execute(update(console_credentials).where(c.id.in_(ids)).values(revoked_at=now))
        with UnitOfWork(conn) as uow:
            audit.append(uow, chain=client, at=now, kind="console", code="KEYS_REVOKED", client_id=client,
                         operator_id=operator, detail=f"{len(ids)} key(s) of {client}/{operator}: {' '.join(ids)}")
    return len(ids)


def _descriptors(rows) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=webauthn.base64url_to_bytes(r.id)) for r in rows]


def registration_options(party: Party, enrol: Enrolment, challenge: bytes, existing) -> str:
    """The options navigator.credentials.create() takes, as JSON."""
    return webauthn.options_to_json(webauthn.generate_registration_options(
        rp_id=party.rp_id, rp_name=party.name, user_name=f"{enrol.client}/{enrol.operator}",
        user_id=hashlib.sha256(f"{enrol.client}/{enrol.operator}".encode()).digest()[:16],
        user_display_name=enrol.name, challenge=challenge, exclude_credentials=_descriptors(existing),
        authenticator_selection=AuthenticatorSelectionCriteria(user_verification=REQUIRED,
                                                               resident_key=ResidentKeyRequirement.PREFERRED)))


def register(conn: Connection, party: Party, enrol: Enrolment, challenge: bytes, credential: dict,
             now: dt.datetime) -> str:
    """Verify a new credential and store it, spending the enrolment link; audited with its public key (which
    `directlink audit verify` checks later approvals against). Returns the credential id."""
    try:
        done = webauthn.verify_registration_response(credential=credential, expected_challenge=challenge,
                                                     expected_rp_id=party.rp_id, expected_origin=party.origin,
                                                     require_user_verification=True)
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as err:
        raise KeyRefused(f"registration did not verify: {err}") from None
    e = console_enrolments.c
    if conn.execute(update(console_enrolments).where(e.token_hash == enrol.token_hash, e.used_at.is_(None))
                    .values(used_at=now)).rowcount != 1:
        raise KeyRefused("the enrolment link was used meanwhile")
    credential_id = bytes_to_base64url(done.credential_id)
    key = bytes_to_base64url(done.credential_public_key)
    conn.execute(insert(console_credentials).values(
        id=credential_id, client_id=enrol.client, operator_id=enrol.operator, public_key=done.credential_public_key,
        sign_count=done.sign_count, added_at=now))
    with UnitOfWork(conn) as uow:
        audit.append(uow, chain=enrol.client, at=now, kind="console", code="KEY_ENROLLED", client_id=enrol.client,
                     operator_id=enrol.operator, detail=f"credential {credential_id} public key {key}")
    return credential_id


def authentication_options(party: Party, challenge: bytes, rows) -> str:
    """The options navigator.credentials.get() takes, as JSON: only this operator's keys, verified user."""
    return webauthn.options_to_json(webauthn.generate_authentication_options(
        rp_id=party.rp_id, challenge=challenge, allow_credentials=_descriptors(rows), user_verification=REQUIRED))


def check_assertion(conn: Connection, party: Party, client: str, operator: str, challenge: bytes,
                    credential: dict):
    """Verify an assertion by one of the operator's keys over `challenge`; move its signature counter on.
    Returns the key's row (as it was before)."""
    cred_id = credential.get("id") if isinstance(credential, dict) else None
    c = console_credentials.c
    row = conn.execute(select(console_credentials).where(
        c.id == cred_id, c.client_id == client, c.operator_id == operator, c.revoked_at.is_(None))).first()
    if row is None:
        raise KeyRefused(f"credential {str(cred_id)[:60]} is not a key of {client}/{operator}")
    try:
        done = webauthn.verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=party.rp_id,
            expected_origin=party.origin, credential_public_key=row.public_key,
            credential_current_sign_count=row.sign_count, require_user_verification=True)
    except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError) as err:
        raise KeyRefused(f"assertion did not verify: {err}") from None
    conn.execute(update(console_credentials).where(c.id == row.id).values(sign_count=done.new_sign_count))
    return row
