"""Delivery health, for the client's integrators: the notification subscriptions, the deliveries that are
failing (last error, attempts, next attempt), the dead letters, and a test event sent to one subscription.

Read from gateway/notify's tables and functions (subscriptions.listing, delivery.dead_letters; the test
event through outbox.test_event), never through the command line. Who sees what: an operator with a query
grant sees the subscriptions of every account (none named) and of the accounts they may query; sending a
test event needs more than query (pay or approve) on the subscription's account, or on any account for one
that names none. A forged request without it is refused and audited.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection, func, select

from domain.codes import Grant
from gateway import audit
from gateway.console.frame import PREFIX, Frame, Problem
from gateway.directory import AccountGrant
from gateway.notify import delivery, outbox, subscriptions
from gateway.notify.subscriptions import Subscription
from gateway.storage.engine import read_only
from gateway.storage.tables import outbox_events as events
from gateway.storage.unit_of_work import transaction

SHOWN = 200   # failing deliveries and dead letters listed (the newest)


@dataclass(frozen=True)
class Line:
    sub: Subscription
    counts: dict[str, int]
    may_test: bool


def seen(grants: dict[str, AccountGrant], sub: Subscription) -> bool:
    query = {g.account for g in grants.values() if Grant.QUERY in g.grants}
    return bool(query) and (sub.account is None or sub.account in query)


def may_test(grants: dict[str, AccountGrant], sub: Subscription) -> bool:
    more = {g.account for g in grants.values() if g.grants & {Grant.PAY, Grant.APPROVE}}
    return seen(grants, sub) and (sub.account in more if sub.account else bool(more))


def health(conn: Connection, client: str, grants: dict[str, AccountGrant]):
    subs = [s for s in subscriptions.listing(conn, client) if seen(grants, s)]
    ids = [s.id for s in subs]
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    for sid, state, n in conn.execute(select(events.c.subscription_id, events.c.state, func.count())
                                      .where(events.c.subscription_id.in_(ids))
                                      .group_by(events.c.subscription_id, events.c.state)):
        counts[sid][state] = n
    failing = conn.execute(select(events.c.id, events.c.event_id, events.c.kind, events.c.subscription_id,
                                  events.c.attempts, events.c.due_at, events.c.last_error, events.c.created_at)
                           .where(events.c.subscription_id.in_(ids), events.c.state == outbox.PENDING,
                                  events.c.last_error.is_not(None))
                           .order_by(events.c.id.desc()).limit(SHOWN)).all()
    dead = [d for d in delivery.dead_letters(conn, client) if d.subscription_id in counts][-SHOWN:]
    return [Line(s, counts[s.id], may_test(grants, s)) for s in subs], failing, dead


def add(api: APIRouter, frame: Frame) -> None:
    @api.get("/delivery", response_class=HTMLResponse)
    def delivery_page(request: Request, sent: str = "") -> Response:
        session = frame.session(request)
        if session is None:
            return frame.signin_again(request)
        with read_only(frame.engine) as conn:
            lines, failing, dead = health(conn, session.client, frame.grants(session, conn))
        return frame.page(request, "delivery.html", session, lines=lines, failing=failing, dead=dead,
                          sent=sent[:80], zone=frame.settings.zone)

    @api.post("/delivery/test")
    async def delivery_test(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        try:
            session = await run_in_threadpool(frame.writing, request, (form.get("csrf") or [None])[0])
            wanted = (form.get("subscription") or [""])[0]
            event_id = await run_in_threadpool(send, session, wanted)
        except Problem as err:
            return err.response()
        return RedirectResponse(f"{PREFIX}/delivery?sent={event_id}", status_code=303)

    def send(session, wanted: str) -> str:
        now = frame.now()
        with transaction(frame.engine) as uow:
            grants = frame.grants(session, uow.conn)
            subs = {str(s.id): s for s in subscriptions.listing(uow.conn, session.client)}
            sub = subs.get(wanted)
            if sub is None or not may_test(grants, sub):
                refused = True
            else:
                refused = False
                event_id = outbox.test_event(uow.conn, sub, session.operator, now)
                audit.append(uow, chain=session.client, at=now, kind="console", code="NOTIFY_TEST",
                             client_id=session.client, operator_id=session.operator,
                             detail=f"test event {event_id} to subscription #{sub.id} {sub.url}"[:2000])
        if refused:
            frame.audit(session.client, session.operator, "NOTIFY_TEST_REFUSED",
                        f"a test event to subscription {wanted[:20]!r}, which this operator may not send")
            raise Problem(403, "PERMISSION_DENIED", "no such subscription, or sending to it needs pay or approve")
        return event_id
