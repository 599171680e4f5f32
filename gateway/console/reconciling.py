"""Reconciliation in the console: upload a bank statement and the ERP's open items, run the matcher, see the
report; confirm a suggested match or match two lines by hand with a reason; past runs listed.

The console may not import reconcile/ (the layer contract "root": only gateway.cli wires it in). So the
matching comes through a seam: `routes.mount(app, gateway, reconciler=...)` takes a `Reconciler`, which
gateway/cli/serve.py builds from reconcile's functions (gateway/cli/reconciler.py). Without one, the page
says reconciliation is not available. Everything else (permissions, storage, audit, pages) is here.

Who may: an operator with a query grant on every account the statement reports. Runs and decisions are
the client's; each decision is audited (RECON_DECIDED) in the transaction that saves it.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Protocol
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from lxml import etree
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from gateway import audit, statements
from gateway.console.frame import PREFIX, Frame, Problem
from gateway.console.statement_view import MOST
from gateway.protocol import messages
from gateway.storage.engine import read_only
from gateway.storage.tables import recon_decisions as decisions
from gateway.storage.tables import recon_runs as runs
from gateway.storage.unit_of_work import transaction

UPLOAD_PATH = f"{PREFIX}/reconcile/run"
MAX_UPLOAD = 8 * 1024 * 1024     # the upload's whole body (statement + open items); other routes keep 256 KiB
RUNS_SHOWN = 50
KINDS = ("confirmed", "manual")
MAX_COLUMNS = 64 * 1024     # a column mapping is a few lines of TOML
MAX_DAYS = 92    # the gateway's own statement: a quarter at most (and MOST entries)


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


@dataclass(frozen=True)
class Decided:
    """A pair a person settled: the statement line (account#EntryId) and the open item's id."""
    line_key: str
    item_key: str
    kind: str          # confirmed | manual: the rule the report shows for it
    operator: str
    reason: str


class Reconciler(Protocol):
    """Read the two files, take the decided pairs out of both sides (reported with rule = their kind), match
    the rest with reconcile's cascade. Returns the report as plain data: "accounts" (list of account numbers),
    "matches", "unmatched_lines", "unmatched_items", "summary" (reconcile/report_data.py's shapes) and
    "totals" (statement and open items, debits and credits apart; the opening balance is no entry).
    XLSX files are read through `columns`, a column mapping (the TOML of `directlink reconcile --columns`).
    Raises ValueError, with a message a person can act on, when a file or the mapping cannot be read or the
    mapping does not fit the sheet."""

    def __call__(self, statement: Upload, items: Upload, decided: Sequence[Decided],
                 columns: Upload | None = None) -> dict: ...


def form_fields(content_type: str, body: bytes) -> dict[str, Upload]:
    """A multipart/form-data body as name -> Upload (the standard library's MIME parser)."""
    if not content_type.startswith("multipart/form-data"):
        raise Problem(400, "BAD_REQUEST", "the upload is a multipart/form-data form")
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            fields[name] = Upload(part.get_filename() or "", part.get_payload(decode=True) or b"")
    return fields


def decided(conn: Connection, client: str) -> list[Decided]:
    return [Decided(r.line_key, r.item_key, r.kind, r.operator_id, r.reason)
            for r in conn.execute(select(decisions).where(decisions.c.client_id == client).order_by(decisions.c.id))]


def remembered(conn: Connection, client: str, mine: set[str]) -> Upload | None:
    """The column mapping of this client's latest run that had one, among the runs this operator may see
    (a mapping may name an account): used when an upload brings none."""
    for row in conn.execute(select(runs.c.columns, runs.c.accounts).where(
            runs.c.client_id == client, runs.c.columns.is_not(None)).order_by(runs.c.id.desc()).limit(RUNS_SHOWN)):
        if set(row.accounts.split(",")) <= mine:
            return Upload("remembered column mapping", row.columns.encode("utf-8"))
    return None


def mapping_text(columns: Upload) -> str:
    if len(columns.data) > MAX_COLUMNS:
        raise Problem(400, "BAD_REQUEST", f"{columns.name}: a column mapping is at most {MAX_COLUMNS // 1024} KiB")
    try:
        return columns.data.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(400, "BAD_REQUEST", f"{columns.name}: a column mapping is UTF-8 text (TOML)") from None


def queried(frame: Frame, session, conn) -> set[str]:
    return {g.account.replace(" ", "") for g in frame.queryable(session, conn)}


def add(api: APIRouter, frame: Frame) -> None:
    @api.get("/reconcile", response_class=HTMLResponse)
    def reconcile_page(request: Request, error: str = "") -> Response:
        session = frame.session(request)
        if session is None:
            return frame.signin_again(request)
        with read_only(frame.engine) as conn:
            mine = queried(frame, session, conn)
            past = [r for r in conn.execute(
                select(runs.c.id, runs.c.operator_id, runs.c.created_at, runs.c.accounts, runs.c.statement_name,
                       runs.c.items_name, runs.c.summary).where(runs.c.client_id == session.client)
                .order_by(runs.c.id.desc()).limit(RUNS_SHOWN))
                if set(r.accounts.split(",")) <= mine]
            accounts = sorted(mine)
            last = remembered(conn, session.client, mine)
        today = frame.now().astimezone(frame.settings.zone).date()
        return frame.page(request, "reconcile.html", session, available=frame.reconciler is not None,
                          accounts=accounts, today=today,
                          columns=last.data.decode("utf-8") if last else None,
                          past=[(r, json.loads(r.summary)) for r in past], error=error[:300],
                          max_mb=MAX_UPLOAD // (1024 * 1024), zone=frame.settings.zone,
                          status=400 if error else 200)

    @api.post("/reconcile/run")
    async def reconcile_upload(request: Request) -> Response:
        body = await request.body()        # bounded by the middleware (routes.py): MAX_UPLOAD, declared
        try:
            fields = form_fields(request.headers.get("content-type", ""), body)
            csrf = fields.get("csrf")
            session = await run_in_threadpool(frame.writing, request, csrf.data.decode("ascii", "replace") if csrf else None)
            items = fields.get("items")
            statement = (await run_in_threadpool(own_statement, session, fields) if "account" in fields
                         else fields.get("statement"))
            if statement is None or items is None or not statement.data or not items.data:
                raise Problem(400, "BAD_REQUEST", "choose a statement file and an open-items file")
            columns = fields.get("columns")
            run_id = await run_in_threadpool(run, session, statement, items,
                                             columns if columns is not None and columns.data else None)
        except Problem as err:
            if err.status == 400:
                return reconcile_page(request, err.detail)
            return err.response()
        return RedirectResponse(f"{PREFIX}/reconcile/runs/{run_id}", status_code=303)

    def own_statement(session, fields: dict[str, Upload]) -> Upload:
        """The gateway's own statement of an account the operator may query, over a date range, as the
        StatementQuery answer carries it (the "directlink" format reconcile reads)."""
        def value(name: str) -> str:
            return fields[name].data.decode("utf-8", "replace").strip() if name in fields else ""
        account = value("account")
        try:
            first, last = dt.date.fromisoformat(value("date_from")), dt.date.fromisoformat(value("date_to"))
        except ValueError:
            raise Problem(400, "BAD_REQUEST", "give the statement's dates as YYYY-MM-DD") from None
        if last < first or (last - first).days > MAX_DAYS:
            raise Problem(400, "BAD_REQUEST", f"the date range runs forward, over at most {MAX_DAYS} days")
        with read_only(frame.engine) as conn:
            if account.replace(" ", "") not in queried(frame, session, conn):
                raise Problem(400, "BAD_REQUEST", "no such account among those you may query")
            st = statements.read(conn, account, after=None, date_from=first, date_to=last, limit=MOST,
                                 zone=frame.settings.zone, now=frame.now())
        data = etree.tostring(messages.render_statement(st, frame.settings.zone), xml_declaration=True,
                              encoding="UTF-8")
        return Upload(f"{account}-{first:%Y%m%d}-{last:%Y%m%d}.xml", data)

    def run(session, statement: Upload, items: Upload, columns: Upload | None, remember: bool = True) -> int:
        """One run; without a mapping of its own (and `remember`) the client's last one is used."""
        if frame.reconciler is None:
            raise Problem(400, "BAD_REQUEST", "reconciliation is not available on this server")
        with read_only(frame.engine) as conn:
            pairs, mine = decided(conn, session.client), queried(frame, session, conn)
            if columns is None and remember:
                columns = remembered(conn, session.client, mine)
        text = mapping_text(columns) if columns is not None else None
        try:
            report = frame.reconciler(statement, items, pairs, columns)
        except ValueError as err:
            raise Problem(400, "BAD_REQUEST", str(err)) from None
        accounts = [a.replace(" ", "") for a in report["accounts"]]
        if not set(accounts) <= mine:
            frame.audit(session.client, session.operator, "RECON_REFUSED",
                        f"a statement of {', '.join(accounts)}, which this operator may not query"[:2000])
            raise Problem(403, "PERMISSION_DENIED", "the statement is of an account you may not query")
        summary = {**report["summary"], "totals": report["totals"]}
        with transaction(frame.engine) as uow:
            run_id = uow.conn.execute(runs.insert().values(
                client_id=session.client, operator_id=session.operator, created_at=frame.now(),
                accounts=",".join(accounts)[:400], statement_name=statement.name[:200], items_name=items.name[:200],
                statement_data=statement.data, items_data=items.data, columns=text, summary=json.dumps(summary),
                report=json.dumps(report)).returning(runs.c.id)).scalar_one()
            audit.append(uow, chain=session.client, at=frame.now(), kind="console", code="RECON_RUN",
                         client_id=session.client, operator_id=session.operator,
                         detail=f"reconciliation run #{run_id} of {statement.name[:80]} against {items.name[:80]}: "
                                f"{summary['matches']} matches"[:2000])
        return run_id

    def own_run(conn, session, run_id: int):
        row = conn.execute(select(runs).where(runs.c.id == run_id, runs.c.client_id == session.client)).first()
        if row is None or not set(row.accounts.split(",")) <= queried(frame, session, conn):
            return None
        return row

    @api.get("/reconcile/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: int, saved: str = "") -> Response:
        session = frame.session(request)
        if session is None:
            return frame.signin_again(request)
        with read_only(frame.engine) as conn:
            row = own_run(conn, session, run_id)
        if row is None:
            return frame.page(request, "message.html", session, status=404, message="not_found")
        return frame.page(request, "reconcile_run.html", session, run=row, report=json.loads(row.report),
                          saved=saved == "1", available=frame.reconciler is not None, zone=frame.settings.zone)

    @api.post("/reconcile/runs/{run_id}/again")
    async def run_again(request: Request, run_id: int) -> Response:
        form = _urlencoded(await request.body())
        try:
            session = await run_in_threadpool(frame.writing, request, form.get("csrf"))

            def inputs():
                with read_only(frame.engine) as conn:
                    return own_run(conn, session, run_id)
            row = await run_in_threadpool(inputs)
            if row is None:
                raise Problem(404, "NOT_FOUND", "no such run")
            new_id = await run_in_threadpool(
                run, session, Upload(row.statement_name, row.statement_data), Upload(row.items_name, row.items_data),
                Upload("column mapping", row.columns.encode("utf-8")) if row.columns is not None else None, False)
        except Problem as err:
            return err.response()
        return RedirectResponse(f"{PREFIX}/reconcile/runs/{new_id}", status_code=303)

    @api.post("/reconcile/runs/{run_id}/decide")
    async def decide(request: Request, run_id: int) -> Response:
        form = _urlencoded(await request.body())
        try:
            session = await run_in_threadpool(frame.writing, request, form.get("csrf"))
            await run_in_threadpool(save, session, run_id, form)
        except Problem as err:
            return err.response()
        except IntegrityError:   # another person decided the same line or item at the same moment
            return Problem(409, "CONFLICT", "one side of that pair was decided meanwhile").response()
        return RedirectResponse(f"{PREFIX}/reconcile/runs/{run_id}?saved=1", status_code=303)

    def save(session, run_id: int, form: dict[str, str]) -> None:
        kind, line, item = form.get("kind", ""), form.get("line", ""), form.get("item", "")
        reason = " ".join(form.get("reason", "").split())
        if kind not in KINDS or not line or not item:
            raise Problem(400, "BAD_REQUEST", "choose a statement line and an open item")
        if not reason or len(reason) > 200:
            raise Problem(400, "BAD_REQUEST", "give a reason (at most 200 characters)")
        with transaction(frame.engine) as uow:
            row = own_run(uow.conn, session, run_id)
            if row is None:
                raise Problem(404, "NOT_FOUND", "no such run")
            report = json.loads(row.report)
            if kind == "confirmed":
                ok = any(line in {x["key"] for x in m["lines"]} and item in {x["key"] for x in m["items"]}
                         for m in report["matches"])
            else:
                ok = (line in {x["key"] for x in report["unmatched_lines"]}
                      and item in {x["key"] for x in report["unmatched_items"]})
            taken = uow.conn.execute(select(decisions.c.id).where(
                decisions.c.client_id == session.client,
                (decisions.c.line_key == line) | (decisions.c.item_key == item))).first()
            if not ok or taken is not None:
                raise Problem(409, "CONFLICT", "that pair is not open in this run, or one side is decided already")
            uow.conn.execute(decisions.insert().values(
                client_id=session.client, line_key=line, item_key=item, kind=kind, operator_id=session.operator,
                reason=reason, run_id=run_id, created_at=frame.now()))
            audit.append(uow, chain=session.client, at=frame.now(), kind="console", code="RECON_DECIDED",
                         client_id=session.client, operator_id=session.operator,
                         detail=f"{kind}: statement line {line} with open item {item} (run #{run_id}): {reason}"[:2000])


def _urlencoded(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
