"""The payments tracker's pages: the search with its keyset pages, the exports (CSV, XLSX) of the current
search, and one payment's history. Read-only: any operator with a query grant sees the payments of the
accounts they may query, nothing else (tracker.visible)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from domain.codes import PaymentState
from gateway.console import receipt_view, tracker
from gateway.console.frame import Frame
from gateway.storage.engine import read_only

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def add(api: APIRouter, frame: Frame) -> None:
    @api.get("/payments", response_class=HTMLResponse)
    def payments_page(request: Request, after: str = "") -> Response:
        session = frame.session(request)
        if session is None:
            return frame.signin_again(request)
        zone = frame.settings.zone
        try:
            search = tracker.Search.of(request.query_params)
            with read_only(frame.engine) as conn:
                rows, following = tracker.page(conn, session.client, frame.grants(session, conn), search, zone, after)
            bad = ""
        except tracker.BadSearch as err:
            search, rows, following, bad = tracker.Search(), [], "", str(err)
        return frame.page(request, "payments.html", session, search=search, rows=rows, following=following,
                          after=after, bad=bad, states=list(PaymentState), zone=zone,
                          query=search.params(), status=400 if bad else 200)

    @api.get("/payments/export.{kind}")
    def payments_export(request: Request, kind: str) -> Response:
        session = frame.session(request)
        if session is None:
            return frame.signin_again(request)
        if kind not in ("csv", "xlsx"):
            return Response(status_code=404)
        zone = frame.settings.zone
        try:
            search = tracker.Search.of(request.query_params)
        except tracker.BadSearch as err:
            return Response(f"unreadable search field: {err}", status_code=400, media_type="text/plain")
        with read_only(frame.engine) as conn:
            rows = tracker.every(conn, session.client, frame.grants(session, conn), search, zone)
        # Who took a copy of which payments, and of how many, stays on record.
        frame.audit(session.client, session.operator, "PAYMENTS_EXPORTED",
                    f"{kind} of {len(rows)} payment(s), search {search.params()}")
        stamp = frame.now().astimezone(zone).strftime("%Y%m%d-%H%M%S")
        body, media = ((tracker.export_csv(rows, zone), "text/csv; charset=utf-8") if kind == "csv"
                       else (tracker.export_xlsx(rows, zone), XLSX))
        return Response(body, media_type=media,
                        headers={"Content-Disposition": f'attachment; filename="payments-{stamp}.{kind}"'})

    @api.get("/payments/{payment_id}", response_class=HTMLResponse)
    def payment_page(request: Request, payment_id: str) -> Response:
        session = frame.session(request)
        if session is None:
            return frame.signin_again(request)
        with read_only(frame.engine) as conn:
            grants = frame.grants(session, conn)
            found = tracker.history(conn, session.client, grants, payment_id[:35], frame.settings.zone)
            listed = (receipt_view.of_payment(conn, frame.settings, session.client, grants, found.payment.id)
                      if found is not None else [])
        if found is None:
            return frame.page(request, "message.html", session, status=404, message="not_found")
        return frame.page(request, "payment.html", session, h=found, p=found.payment, zone=frame.settings.zone,
                          receipts=listed)

    receipt_view.add(api, frame)   # the receipts' downloads: the payment page's, and the statements page's
