"""The audit view: this client's hash chain, read-only, newest first, filtered by code, operator, kind,
payment and day, with the chain's verification state (gateway.audit.verify and the approvals' signed
evidence, the same checks `directlink audit verify` makes, on this client's chain only).

Who sees it: an operator holding any query grant; records about a payment on an account they may not query
are left out (as the tracker leaves the payment out)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection, or_, select

from gateway import audit, businessday
from gateway.console import evidence
from gateway.console.frame import Frame
from gateway.storage.engine import read_only
from gateway.storage.tables import audit_head, audit_log, payments

PAGE = 100


@dataclass(frozen=True)
class Verified:
    checked: int
    signatures: int
    findings: list[str]
    head: int


def verified(conn: Connection, chain: str) -> Verified:
    checked, findings = audit.verify(conn, only=chain)
    signatures, problems = evidence.verify_all(conn, only=chain)
    head = conn.execute(select(audit_head.c.seq).where(audit_head.c.chain == chain)).scalar() or 0
    return Verified(checked, signatures, [f"#{f.seq}: {f.problem}" for f in findings]
                    + [f"#{p.seq}: {p.problem}" for p in problems], head)


def records(conn: Connection, client: str, accounts: list[str], params, before: int | None):
    """One page of the chain (newest first, by position), and the position the next page starts before."""
    a = audit_log.c
    query = (select(a.seq, a.at, a.kind, a.code, a.operator_id, a.payment_id, a.message_id, a.cert_fingerprint,
                    a.from_state, a.to_state, a.detail)
             .select_from(audit_log.outerjoin(payments, payments.c.id == a.payment_id))
             .where(a.chain == client, or_(a.payment_id.is_(None), payments.c.debtor_account.in_(accounts))))
    for field, column in (("code", a.code), ("operator", a.operator_id), ("kind", a.kind), ("payment", a.payment_id)):
        value = (params.get(field) or "").strip()[:40]
        if value:
            query = query.where(column == value)
    day = (params.get("day") or "").strip()
    if day:
        start, end = businessday.bounds(dt.date.fromisoformat(day), dt.date.fromisoformat(day), params["zone"])
        query = query.where(a.at >= start, a.at < end)
    if before is not None:
        query = query.where(a.seq < before)
    rows = conn.execute(query.order_by(a.seq.desc()).limit(PAGE + 1)).all()
    return rows[:PAGE], (rows[PAGE - 1].seq if len(rows) > PAGE else None)


def add(api: APIRouter, frame: Frame) -> None:
    @api.get("/audit", response_class=HTMLResponse)
    def audit_page(request: Request, before: int | None = None) -> Response:
        session = frame.session(request)
        if session is None:
            return frame.signin_again(request)
        params = dict(request.query_params) | {"zone": frame.settings.zone}
        with read_only(frame.engine) as conn:
            accounts = [g.account for g in frame.queryable(session, conn)]
            if not accounts:
                return frame.page(request, "message.html", session, status=403, message="forbidden")
            try:
                rows, following = records(conn, session.client, accounts, params, before)
            except ValueError:
                return frame.page(request, "message.html", session, status=400, message="bad_search")
            state = verified(conn, session.client)
        query = {k: v for k, v in request.query_params.items() if k != "before" and v}
        return frame.page(request, "audit.html", session, rows=rows, following=following, state=state,
                          query=query, zone=frame.settings.zone)
