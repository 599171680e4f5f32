"""Electronic receipts in the console: those of a payment (its debit, and a return's credit) on the payment's
page, one per entry on the statements page, each downloaded as the signed XML or the PDF.

Made by exactly what ReceiptQuery uses (gateway.receipts: found in the ledger, signed with the gateway's key,
printed with the signed XML attached), for the accounts the operator may query (tracker.visible, the check of
the tracker and statements pages); another account's receipt is as unknown as one never issued."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from domain.errors import NotFound
from domain.receipts import Receipt
from gateway import receipts
from gateway.console import tracker
from gateway.console.frame import Frame
from gateway.directory import AccountGrant
from gateway.settings import Settings
from gateway.storage.engine import read_only

MEDIA = {"xml": "application/xml", "pdf": "application/pdf"}


def of_payment(conn: Connection, settings: Settings, client: str, grants: dict[str, AccountGrant],
               payment_id: str) -> list[Receipt]:
    """The payment's receipts, as ReceiptQuery by PaymentId finds them (none while it is not booked)."""
    return receipts.by_payment(conn, settings, client, sorted(tracker.visible(grants)), [payment_id])


def of_entry(conn: Connection, settings: Settings, client: str, grants: dict[str, AccountGrant], account: str,
             entry: int) -> Receipt | None:
    """The receipt of one entry (its EntryId, as statements number them), or None if not the operator's."""
    if account not in tracker.visible(grants) or entry < 1:
        return None
    try:   # ReceiptQuery's account paging: the page after the cursor entry-1 starts at the entry
        page = receipts.by_account(conn, settings, client, account, after=str(entry - 1) if entry > 1 else "",
                                   date_from=None, date_to=None, limit=1)
    except NotFound:
        return None
    found = page.receipts[0] if page.receipts else None
    return found if found is not None and found.entry_id == entry else None


def add(api: APIRouter, frame: Frame) -> None:
    @api.get("/receipts/{account}/{entry}.{form}")
    def receipt_download(request: Request, account: str, entry: int, form: str) -> Response:
        session = frame.session(request)
        if session is None:
            return frame.signin_again(request)
        if form not in MEDIA:
            return Response(status_code=404)
        with read_only(frame.engine) as conn:
            found = of_entry(conn, frame.settings, session.client, frame.grants(session, conn), account[:34], entry)
        if found is None:
            return Response("no such receipt among the accounts you may query", status_code=404,
                            media_type="text/plain")
        issued = receipts.issue(found, frame.gateway.signer, frame.settings, form.upper())
        # Who took a copy of which receipt stays on record, as the tracker's exports do.
        frame.audit(session.client, session.operator, "RECEIPT_DOWNLOADED", f"{form} of {found.number}")
        return Response(issued.xml if form == "xml" else issued.pdf, media_type=MEDIA[form],
                        headers={"Content-Disposition": f'attachment; filename="{found.number}.{form}"'})
