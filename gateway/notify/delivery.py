"""Delivering the outbox: claim due events, sign, POST, record the outcome. At least once, never lost.

No database transaction is open during a POST. A claim is a short transaction that takes due rows (on
PostgreSQL with FOR UPDATE SKIP LOCKED, so replicas never take the same row; SQLite has one writer) and
moves their due time past a lease. The POSTs follow, then one short transaction per outcome. A crash in
between leaves the row PENDING, due again when the lease runs out: the event is delivered again with the
same EventId, which the ERP deduplicates by. An outcome is only recorded under the claim that made it.

A failed POST (no 2xx within the timeout, redirects included) is retried after an exponential back-off
with jitter; after notify_max_attempts, or notify_max_age_hours after the event, it becomes a dead letter,
which an operator lists and replays (`directlink notify dead`, `directlink notify replay`).
"""
from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import ipaddress
import logging
import random
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from lxml import etree
from sqlalchemy import Connection, Engine, delete, select, update

from gateway import audit
from gateway.notify import addresses
from gateway.notify.outbox import DEAD, DELIVERED, PENDING
from gateway.protocol.signing import Signer
from gateway.settings import Settings
from gateway.storage.tables import notify_subscriptions as subs
from gateway.storage.tables import outbox_events as outbox
from gateway.storage.unit_of_work import UnitOfWork

log = logging.getLogger("directlink.notify")
ROUNDS = 4                    # a claim takes this many rounds of notify_concurrency POSTs
MAX_BATCHES = 50              # per run, so one run ends even while events keep coming
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def backoff(attempts: int, base: float, cap: float, jitter: Callable[[], float] = random.random) -> dt.timedelta:
    """The wait after the attempts-th failure: base, 2 base, 4 base ... up to cap, each scaled by 50-100 %
    so that events that failed together (the ERP was down) do not all come back at the same instant."""
    full = min(cap, base * 2 ** min(attempts - 1, 30))
    return dt.timedelta(seconds=full * (0.5 + 0.5 * jitter()))


@dataclass(frozen=True)
class Claimed:
    id: int
    event_id: str
    client_id: str
    payload: bytes
    attempts: int               # including this one
    created_at: dt.datetime
    url: str
    lease: str                  # the claim's token: its outcome is recorded only while the row still has it


class Delivery:
    """The delivery job of one process (`serve` runs it on a timer, `directlink notify run` once)."""

    def __init__(self, engine: Engine, settings: Settings, signer: Signer,
                 clock: Callable[[], dt.datetime] = utcnow, jitter: Callable[[], float] = random.random,
                 resolver: addresses.Resolver = addresses.system_resolver):
        self.engine, self.settings, self.signer, self.clock, self.jitter = engine, settings, signer, clock, jitter
        self.resolver = resolver
        self.batch = max(1, settings.notify_concurrency) * ROUNDS
        # Long enough for every round of a batch to time out, and then some: until it runs out nobody else
        # takes the row; after it, a crashed or hung delivery is taken over (and delivered again).
        self.lease = dt.timedelta(seconds=settings.notify_timeout_seconds * (ROUNDS + 1) + 30)

    def run_once(self) -> Counter:
        """Deliver everything due now; returns counts (delivered, retry, dead) for logs, CLI and tests."""
        done: Counter = Counter()
        timeout = httpx.Timeout(self.settings.notify_timeout_seconds)
        # No redirects (an ERP's URL is configured, never discovered), no proxies from the environment. No
        # connection is kept for another POST: each goes to the address checked for it (see resolve()), and a
        # kept TLS connection, pooled by address, would carry one ERP's events over a handshake that proved
        # another's name.
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False,
                          limits=httpx.Limits(max_keepalive_connections=0)) as http, \
                cf.ThreadPoolExecutor(max(1, self.settings.notify_concurrency)) as pool:
            for _ in range(MAX_BATCHES):
                claimed = self.claim(done)
                if not claimed:
                    break
                futures = {}
                for c in claimed:
                    if self.settings.notify_https_only and urlsplit(c.url).scheme != "https":
                        # A subscription made before the setting was turned on: nothing goes out over http.
                        done[self.record(c, "http:// is refused (setting notify_https_only)")] += 1
                        continue
                    try:
                        body = self.signer.sign(etree.fromstring(c.payload, _PARSER))
                    except Exception as exc:  # one bad event must not stop the others
                        log.exception("cannot sign notification %s", c.event_id)
                        done[self.record(c, f"cannot sign: {type(exc).__name__}")] += 1
                        continue
                    futures[pool.submit(_post, http, c, body, self.settings.notify_private_addresses,
                                        self.resolver)] = c
                for future in cf.as_completed(futures):
                    done[self.record(futures[future], future.result())] += 1
        self._forget_delivered()
        if done:
            log.info("notifications: %s", dict(done))
        return done

    def claim(self, done: Counter | None = None) -> list[Claimed]:
        """Take up to one batch of due events under a fresh lease (one short transaction)."""
        now = self.clock()
        token = f"{secrets.token_hex(8)}@{now:%Y%m%dT%H%M%S}"
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(outbox.c.id, outbox.c.event_id, outbox.c.client_id, outbox.c.payload, outbox.c.attempts,
                       outbox.c.created_at, outbox.c.subscription_id)
                .where(outbox.c.state == PENDING, outbox.c.due_at <= now)
                .order_by(outbox.c.due_at, outbox.c.id).limit(self.batch)
                .with_for_update(skip_locked=True)).all()
            if not rows:
                return []
            targets = {s.id: s for s in conn.execute(select(subs.c.id, subs.c.url, subs.c.active).where(
                subs.c.id.in_({r.subscription_id for r in rows})))}
            claimed = []
            for r in rows:
                target = targets[r.subscription_id]
                # Kept, not dropped: an operator replays it once the subscription is active again, or once
                # whatever made every claim of it end without an outcome (a crash each time) is fixed.
                gave_up = None
                if not target.active:
                    gave_up = f"subscription #{target.id} is inactive"
                elif r.attempts >= self.settings.notify_max_attempts:
                    gave_up = f"no outcome recorded after {r.attempts} attempts"
                if gave_up:
                    conn.execute(update(outbox).where(outbox.c.id == r.id).values(state=DEAD, lease=None,
                                                                                   last_error=gave_up))
                    if done is not None:
                        done["dead"] += 1
                    continue
                claimed.append(Claimed(r.id, r.event_id, r.client_id, r.payload, r.attempts + 1, r.created_at,
                                       target.url, token))
            if claimed:
                conn.execute(update(outbox).where(outbox.c.id.in_([c.id for c in claimed])).values(
                    attempts=outbox.c.attempts + 1, due_at=now + self.lease, lease=token))
        return claimed

    def record(self, c: Claimed, error: str | None) -> str:
        """Record one outcome, only if the claim is still ours (else whoever took it over records theirs)."""
        now = self.clock()
        mine = (outbox.c.id == c.id) & (outbox.c.lease == c.lease) & (outbox.c.state == PENDING)
        if error is None:
            values, result = dict(state=DELIVERED, delivered_at=now, lease=None, last_error=None), "delivered"
        elif (c.attempts >= self.settings.notify_max_attempts
              or now - c.created_at >= dt.timedelta(hours=self.settings.notify_max_age_hours)):
            values, result = dict(state=DEAD, lease=None, last_error=error[:255]), "dead"
            log.warning("notification %s to %s is a dead letter after %d attempt(s): %s", c.event_id, c.url,
                        c.attempts, error)
        else:
            wait = backoff(c.attempts, self.settings.notify_backoff_base_seconds,
                           self.settings.notify_backoff_max_seconds, self.jitter)
            values, result = dict(due_at=now + wait, lease=None, last_error=error[:255]), "retry"
        with self.engine.begin() as conn:
            if conn.execute(update(outbox).where(mine).values(**values)).rowcount != 1:
                return "lease_lost"
        return result

    def _forget_delivered(self) -> None:
        """Delivered events are kept a while (to look into a complaint), then removed."""
        cutoff = self.clock() - dt.timedelta(days=max(self.settings.notify_keep_delivered_days, 1))
        with self.engine.begin() as conn:
            conn.execute(delete(outbox).where(outbox.c.state == DELIVERED, outbox.c.due_at < cutoff))


def resolve(url: str, private_allowed: bool,
            resolver: addresses.Resolver = addresses.system_resolver) -> tuple[str | None, str | None]:
    """The address to POST to for this URL's host, resolved once for this delivery, or why not: (address,
    None) or (None, reason). Unless private addresses are allowed, every address the name resolves to must
    be an ordinary public one (notify/addresses.py). Checked at every delivery, and the delivery then
    connects to the very address checked: a name that resolves to a public address for the check and to an
    internal one for the connection (DNS rebinding) cannot steer the POST."""
    parts = urlsplit(url)
    try:
        found = [ipaddress.ip_address(a.split("%")[0]) for a in resolver(
            parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))]
    except (OSError, ValueError) as exc:   # ValueError: a port out of range, an answer that is no address
        return None, f"cannot resolve {parts.hostname}: {exc}"
    if not private_allowed:
        for ip in found:
            why = addresses.refusal(ip)
            if why is not None:
                return None, (f"{parts.hostname} resolves to {ip}, {why} "
                              "(setting notify_private_addresses allows it)")
    if not found:
        return None, f"{parts.hostname} resolves to no address"
    return str(found[0]), None


def undeliverable(url: str, settings: Settings,
                  resolver: addresses.Resolver = addresses.system_resolver) -> tuple[str | None, str | None]:
    """Checked when a subscription is made or its URL changed: (why it would never be delivered to, or None;
    a warning, or None). An http:// URL where notify_https_only is set, or a host whose addresses the
    delivery guard refuses (resolve above), is refused; a name that does not resolve now only warns (it may
    be set up later, and every delivery resolves it again)."""
    if settings.notify_https_only and urlsplit(url).scheme != "https":
        return "the URL must be https:// (setting notify_https_only)", None
    address, reason = resolve(url, settings.notify_private_addresses, resolver)
    if address is None and reason is not None and not reason.startswith("cannot resolve") \
            and not reason.endswith("resolves to no address"):
        return f"no notification would ever be delivered there: {reason}", None
    return None, reason


def pinned(url: str, address: str) -> tuple[str, dict, dict]:
    """The request that reaches `address` for `url`: the URL with the address in place of the host, the Host
    header as the URL names it, and for https the name the TLS handshake sends and the certificate must
    carry (httpx's `sni_hostname`), so that the ERP's server sees and proves the name it expects."""
    parts = urlsplit(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    host = f"[{address}]" if ":" in address else address
    netloc = (userinfo + "@" if userinfo else "") + host + (f":{parts.port}" if parts.port else "")
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return parts._replace(netloc=netloc).geturl(), {"Host": hostport}, extensions


def _post(http: httpx.Client, c: Claimed, body: bytes, private_allowed: bool,
          resolver: addresses.Resolver) -> str | None:
    """POST one signed notification; None if the ERP took it (2xx), else why not. Only the status is
    read: the ERP's answer body is never needed, and a huge one must not fill our memory."""
    address, refused = resolve(c.url, private_allowed, resolver)
    if refused is not None:
        return refused
    url, host, extensions = pinned(c.url, address)
    headers = {"Content-Type": "application/xml", "Event-Id": c.event_id, "User-Agent": "DirectLink-Notify/1",
               **host}
    try:
        with http.stream("POST", url, content=body, headers=headers, extensions=extensions) as answer:
            if 200 <= answer.status_code < 300:
                return None
            return f"HTTP {answer.status_code}" + (" (redirects are not followed)" if answer.is_redirect else "")
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"


# ---- dead letters ---------------------------------------------------------------------------------------------

def dead_letters(conn: Connection, client_id: str | None = None) -> list:
    query = (select(outbox.c.id, outbox.c.event_id, outbox.c.client_id, outbox.c.kind, outbox.c.subscription_id,
                    outbox.c.attempts, outbox.c.created_at, outbox.c.last_error)
             .where(outbox.c.state == DEAD).order_by(outbox.c.id))
    if client_id:
        query = query.where(outbox.c.client_id == client_id)
    return conn.execute(query).all()


def replay(conn: Connection, ids: list[int] | None, now: dt.datetime) -> list[int]:
    """Put dead letters back in the queue, due now with a fresh attempt count (ids None: all of them).
    Returns the ids replayed; each replay is audited. Unknown or not-dead ids are refused as a whole."""
    rows = dead_letters(conn) if ids is None else conn.execute(
        select(outbox.c.id, outbox.c.event_id, outbox.c.client_id, outbox.c.state)
        .where(outbox.c.id.in_(ids))).all()
    if ids is not None:
        found = {r.id: r for r in rows}
        wrong = [i for i in ids if i not in found or found[i].state != DEAD]
        if wrong:
            raise ValueError(f"not a dead letter: {', '.join(f'#{i}' for i in wrong)}")
    with UnitOfWork(conn) as uow:
        for r in rows:
            conn.execute(update(outbox).where(outbox.c.id == r.id, outbox.c.state == DEAD).values(
                state=PENDING, attempts=0, due_at=now, lease=None))
            audit.append(uow, chain=audit.SYSTEM, at=now, kind="config", code="NOTIFY_REPLAYED",
                         client_id=r.client_id, detail=f"dead letter #{r.id} event {r.event_id} queued again")
    return [r.id for r in rows]
