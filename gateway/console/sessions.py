"""Console sessions, kept server-side: the cookie holds a random token, the table its SHA-256.

A session is read afresh by every request of it, so that whatever ends it takes effect on the next
request, on every replica: sign-out, the idle timeout, the operator disabled (`directlink operators
disable`), a certificate of the operator revoked after the session began, or the key it began with revoked.
"""
from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, and_, bindparam, exists, insert, select, update

from gateway.console.keys import digest
from gateway.storage.tables import certificates, console_credentials, console_sessions, operators

COOKIE = "dl_console"


@dataclass(frozen=True)
class Session:
    token_hash: str
    client: str
    operator: str
    name: str
    csrf: str

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


def start(conn: Connection, client: str, operator: str, credential_id: str, now: dt.datetime) -> str:
    """A new session; returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    conn.execute(insert(console_sessions).values(
        token_hash=digest(token), client_id=client, operator_id=operator, credential_id=credential_id,
        csrf=secrets.token_urlsafe(32), created_at=now, last_seen=now))
    return token


_s = console_sessions.c
# A certificate of the operator revoked since the session began ends it (the revocation is dated: `now`).
_REVOKED_SINCE = exists().where(certificates.c.client_id == _s.client_id, certificates.c.operator_id == _s.operator_id,
                                certificates.c.revoked_at >= _s.created_at, certificates.c.revoked_at <= bindparam("now"))
_READ = (select(console_sessions, operators.c.name, operators.c.disabled_at,
                console_credentials.c.revoked_at.label("key_revoked"), _REVOKED_SINCE.label("cert_revoked"))
         .join(operators, and_(operators.c.client_id == _s.client_id, operators.c.id == _s.operator_id))
         .join(console_credentials, console_credentials.c.id == _s.credential_id))


def current(conn: Connection, token: str | None, now: dt.datetime, idle: dt.timedelta) -> Session | None:
    """The live session of a cookie's token, its idle clock reset; None (and the session ended) otherwise."""
    if not token:
        return None
    row = conn.execute(_READ.where(_s.token_hash == digest(token)), {"now": now}).first()
    if row is None or row.ended_at is not None:
        return None
    if now - row.last_seen > idle or row.disabled_at is not None or row.key_revoked is not None or row.cert_revoked:
        end(conn, row.token_hash, now)
        return None
    conn.execute(update(console_sessions).where(_s.token_hash == row.token_hash).values(last_seen=now))
    return Session(row.token_hash, row.client_id, row.operator_id, row.name, row.csrf)


def end(conn: Connection, token_hash: str, now: dt.datetime) -> None:
    conn.execute(update(console_sessions).where(_s.token_hash == token_hash, _s.ended_at.is_(None))
                 .values(ended_at=now))
