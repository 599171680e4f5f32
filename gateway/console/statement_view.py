"""Statements in the console: one account's entries over a date range with the running balance, and the same
statement as a file in every format an adapter writes (camt.053, MT940, BAI2, Kingdee, Yonyou...), taken
from gateway.statements and gateway.documents exactly as StatementQuery takes it. Read-only; only accounts
the operator may query."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from adapters import registry
from domain.errors import DirectLinkError
from domain.models import Statement
from domain.money import Money
from gateway import documents, statements
from gateway.console.frame import Frame
from gateway.storage.engine import read_only

MOST = 5000   # entries on one page or in one file; a longer range is cut there and the page says so


@dataclass(frozen=True)
class Totals:
    debits: Money
    credits: Money
    debit_count: int
    credit_count: int


def formats(folder) -> list[str]:
    """Every statement format the adapters write (installed, and declared in the gateway's formats folder)."""
    return sorted(fmt for a in registry.adapters(folder).values() for fmt in a.statement_writers)


def totals(st: Statement) -> Totals:
    debits = [e.amount.minor for e in st.entries if e.direction == "DBIT"]
    credits = [e.amount.minor for e in st.entries if e.direction == "CRDT"]
    return Totals(Money.from_minor(sum(debits), st.currency), Money.from_minor(sum(credits), st.currency),
                  len(debits), len(credits))


def add(api: APIRouter, frame: Frame) -> None:
    def chosen(request: Request, session, conn):
        """(account grants the operator may query, the account asked for or the first, first day, last day)."""
        mine = frame.queryable(session, conn)
        asked = request.query_params.get("account") or (mine[0].account if mine else "")
        today = frame.now().astimezone(frame.settings.zone).date()
        try:
            first = dt.date.fromisoformat(request.query_params.get("date_from") or today.isoformat())
            last = dt.date.fromisoformat(request.query_params.get("date_to") or today.isoformat())
        except ValueError:
            first = last = None
        return mine, next((g for g in mine if g.account == asked), None), first, last

    def read(conn, account: str, first: dt.date, last: dt.date) -> Statement:
        return statements.read(conn, account, after=None, date_from=first, date_to=last, limit=MOST,
                               zone=frame.settings.zone, now=frame.now())

    @api.get("/statements", response_class=HTMLResponse)
    def statement_page(request: Request) -> Response:
        session = frame.session(request)
        if session is None:
            return frame.signin_again(request)
        with read_only(frame.engine) as conn:
            mine, grant, first, last = chosen(request, session, conn)
            bad = first is None or last is None or last < first
            st = read(conn, grant.account, first, last) if grant is not None and not bad else None
        return frame.page(request, "statement.html", session, mine=mine, grant=grant, first=first, last=last,
                          st=st, totals=totals(st) if st else None, formats=formats(frame.settings.formats),
                          bad=bad, zone=frame.settings.zone, status=400 if bad else 200)

    @api.get("/statements/download")
    def statement_download(request: Request, format: str) -> Response:
        session = frame.session(request)
        if session is None:
            return frame.signin_again(request)
        if format not in formats(frame.settings.formats):
            return Response(f"no adapter writes statements as {format!r}", status_code=404, media_type="text/plain")
        with read_only(frame.engine) as conn:
            _, grant, first, last = chosen(request, session, conn)
            if grant is None or first is None or last is None or last < first:
                return Response("no such account among those you may query, or no such date range",
                                status_code=404, media_type="text/plain")
            st = read(conn, grant.account, first, last)
            try:
                data, is_text = documents.statement_file(conn, format, st, frame.settings, frame.now())
            except DirectLinkError as err:
                return Response(str(err), status_code=422, media_type="text/plain")
        xml = data.lstrip().startswith(b"<")
        media = "application/xml" if xml else ("text/plain; charset=utf-8" if is_text else "application/octet-stream")
        name = f"{grant.account}-{first:%Y%m%d}-{last:%Y%m%d}.{format}" + (".xml" if xml and "xml" not in format else "")
        return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})
