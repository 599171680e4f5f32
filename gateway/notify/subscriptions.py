"""Subscriptions: which client hears about which events, at which URL. Kept in the database (so every
replica sees a change at once), changed only through these functions, and every change is audited."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import Connection, bindparam, insert, select, update

from gateway import audit
from gateway.storage.tables import accounts, clients
from gateway.storage.tables import notify_subscriptions as subs
from gateway.storage.unit_of_work import UnitOfWork

PAYMENT, CREDIT = "payment", "credit"      # a payment changed state | money came into an account
KINDS = (PAYMENT, CREDIT)
_UNCHANGED = object()


class SubscriptionError(ValueError):
    """A subscription change that cannot be made; nothing was changed."""


@dataclass(frozen=True)
class Subscription:
    id: int
    client_id: str
    url: str
    kinds: frozenset[str]
    account: str | None          # only events of this account; None: every account of the client
    active: bool

    def wants(self, kind: str, account: str) -> bool:
        return self.active and kind in self.kinds and self.account in (None, account)

    def describe(self) -> str:
        return (f"#{self.id} {self.client_id} {','.join(sorted(self.kinds))} "
                f"{self.account or '(all accounts)'} {self.url} {'active' if self.active else 'inactive'}")


def of_row(row) -> Subscription:
    """A subscription from any row with its columns (also a join that names them alike)."""
    return Subscription(row.id, row.client_id, row.url, frozenset(row.kinds.split(",")), row.account, row.active)


def parse_kinds(text: str) -> frozenset[str]:
    kinds = frozenset(k.strip().lower() for k in text.split(",") if k.strip())
    unknown = kinds - set(KINDS)
    if not kinds or unknown:
        raise SubscriptionError(f"kinds must be a comma list of {', '.join(KINDS)}, got {text!r}")
    return kinds


def check_url(url: str) -> str:
    """An absolute http(s) URL; no credentials in it (they would end up in logs and the audit trail)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SubscriptionError(f"the URL must be an absolute http:// or https:// URL, got {url!r}")
    if parts.username or parts.password:
        raise SubscriptionError("the URL must not carry a user name or password")
    if len(url.strip()) > subs.c.url.type.length:
        raise SubscriptionError(f"the URL is longer than {subs.c.url.type.length} characters")
    return url.strip()


def _check_account(conn: Connection, client_id: str, account: str | None) -> str | None:
    if not account:
        return None
    owner = conn.execute(select(accounts.c.client_id).where(accounts.c.number == account)).first()
    if owner is None or owner.client_id != client_id:
        raise SubscriptionError(f"{account} is not an account of client {client_id}")
    return account


def _audit(conn: Connection, now: dt.datetime, code: str, sub: Subscription) -> None:
    with UnitOfWork(conn) as uow:
        audit.append(uow, chain=audit.SYSTEM, at=now, kind="config", code=code, client_id=sub.client_id,
                     detail=sub.describe())


def subscribe(conn: Connection, client_id: str, url: str, kinds: str, account: str | None,
              now: dt.datetime) -> Subscription:
    """Add an active subscription; returns it (its id is what `notify update` takes)."""
    if conn.execute(select(clients.c.id).where(clients.c.id == client_id)).first() is None:
        raise SubscriptionError(f"unknown client {client_id}")
    values = dict(client_id=client_id, url=check_url(url), kinds=",".join(sorted(parse_kinds(kinds))),
                  account=_check_account(conn, client_id, account), active=True, created_at=now, updated_at=now)
    new_id = conn.execute(insert(subs).values(**values)).inserted_primary_key[0]
    sub = get(conn, new_id)
    _audit(conn, now, "NOTIFY_SUBSCRIBED", sub)
    return sub


def change(conn: Connection, sub_id: int, now: dt.datetime, *, url: str | None = None, kinds: str | None = None,
           account=_UNCHANGED, active: bool | None = None) -> Subscription:
    """Change a subscription; an account of "" or None removes the account filter."""
    current = get(conn, sub_id)
    values: dict = {}
    if url is not None:
        values["url"] = check_url(url)
    if kinds is not None:
        values["kinds"] = ",".join(sorted(parse_kinds(kinds)))
    if account is not _UNCHANGED:
        values["account"] = _check_account(conn, current.client_id, account)
    if active is not None:
        values["active"] = active
    if not values:
        raise SubscriptionError("nothing to change")
    conn.execute(update(subs).where(subs.c.id == sub_id).values(updated_at=now, **values))
    sub = get(conn, sub_id)
    _audit(conn, now, "NOTIFY_CHANGED", sub)
    return sub


def get(conn: Connection, sub_id: int) -> Subscription:
    row = conn.execute(select(subs).where(subs.c.id == sub_id)).first()
    if row is None:
        raise SubscriptionError(f"no subscription #{sub_id}")
    return of_row(row)


def listing(conn: Connection, client_id: str | None = None) -> list[Subscription]:
    query = select(subs).order_by(subs.c.client_id, subs.c.id)
    if client_id:
        query = query.where(subs.c.client_id == client_id)
    return [of_row(r) for r in conn.execute(query)]


def active_for(conn: Connection, client_ids: set[str]) -> list[Subscription]:
    """The active subscriptions of these clients: one indexed read, the only cost a change pays when
    nobody subscribed."""
    if not client_ids:
        return []
    return [of_row(r) for r in conn.execute(_ACTIVE, {"clients": sorted(client_ids)})]


# Built once: every payment's acceptance runs it (building a statement costs about as much as running it).
_ACTIVE = select(subs).where(subs.c.client_id.in_(bindparam("clients", expanding=True)), subs.c.active.is_(True))
