"""The gateway's verified answers as the agent needs them: payment statuses as domain objects (to write
status reports in the ERP's format) and statement pages as the bytes of the ERP's file.

Everything here reads only a tree whose signature gateway.protocol.client has already verified."""
from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

from lxml import etree

from domain.codes import PaymentState, ReasonCode
from domain.models import PaymentStatus
from gateway.protocol.xmlsafe import q, text


class AnswerUnreadable(ValueError):
    """A signed answer that does not hold what the protocol says it holds (a gateway defect)."""


def payment_report(report: etree._Element) -> tuple[str | None, list[PaymentStatus]]:
    """(BatchId, statuses in order) of a PaymentReport."""
    if report is None or report.tag != q("PaymentReport"):
        raise AnswerUnreadable("the answer holds no PaymentReport")
    try:
        return text(report.find(q("BatchId"))), [_status(el) for el in report.iterfind(q("PaymentStatus"))]
    except (ValueError, TypeError) as err:
        raise AnswerUnreadable(f"a PaymentStatus cannot be read: {err}") from err


def _status(el: etree._Element) -> PaymentStatus:
    reason, approvals, updated = el.find(q("Reason")), el.find(q("Approvals")), text(el.find(q("Updated")))
    return PaymentStatus(
        client_ref=text(el.find(q("ClientRef"))),
        state=PaymentState(text(el.find(q("State")))),
        payment_id=text(el.find(q("PaymentId"))) or None,
        reason=None if reason is None else ReasonCode(reason.get("code")),
        reason_text=None if reason is None else text(reason) or None,
        approvals_required=int(approvals.get("required")) if approvals is not None else 0,
        approvals_given=int(approvals.get("given")) if approvals is not None else 0,
        order_digest=text(el.find(q("OrderDigest"))) or None,
        updated=dt.datetime.fromisoformat(updated) if updated else None)


@dataclass(frozen=True)
class StatementPage:
    data: bytes               # the ERP's statement file, exactly as the gateway's adapter wrote it
    extension: str            # xml for XML formats, else the format's last name part (mt940, bai2, json)
    next_cursor: str
    complete: bool


def statement_page(doc: etree._Element, fmt: str) -> StatementPage:
    """A formatted statement page: `<Document format encoding nextCursor complete>` (docs/protocol.md)."""
    if doc is None or doc.tag != q("Document") or doc.get("format") != fmt:
        raise AnswerUnreadable(f"the answer holds no {fmt} Document")
    cursor, complete = doc.get("nextCursor"), doc.get("complete")
    if cursor is None or complete not in ("true", "false"):
        raise AnswerUnreadable("the statement Document carries no nextCursor/complete")
    if doc.get("encoding") == "xml":
        inner = [c for c in doc if isinstance(c.tag, str)]
        if len(inner) != 1:
            raise AnswerUnreadable("an XML statement Document must hold exactly one element")
        data, extension = etree.tostring(inner[0], xml_declaration=True, encoding="UTF-8"), "xml"
    else:
        try:
            data = base64.b64decode(text(doc).encode("ascii"), validate=True)
        except ValueError as err:
            raise AnswerUnreadable("the statement Document is not base64") from err
        extension = fmt.rsplit(".", 1)[-1]
    return StatementPage(data, extension, cursor, complete == "true")


@dataclass(frozen=True)
class ReceiptPage:
    files: list[tuple[str, bytes]]   # (file name, bytes): each receipt's signed XML and/or PDF
    next_cursor: str
    complete: bool


def receipt_page(doc: etree._Element) -> ReceiptPage:
    """A ReceiptList (docs/protocol.md): the forms asked for, named by receipt number."""
    if doc is None or doc.tag != q("ReceiptList"):
        raise AnswerUnreadable("the answer holds no ReceiptList")
    files = []
    for receipt in doc.iterfind(q("Receipt")):
        number = text(receipt.find(q("ReceiptNo")))
        for tag, extension in (("Xml", "xml"), ("Pdf", "pdf")):
            el = receipt.find(q(tag))
            if el is not None:
                try:
                    files.append((f"{number}.{extension}", base64.b64decode(text(el).encode("ascii"), validate=True)))
                except ValueError as err:
                    raise AnswerUnreadable(f"receipt {number}: its {tag} is not base64") from err
    return ReceiptPage(files, text(doc.find(q("NextCursor"))) or "", text(doc.find(q("Complete"))) == "true")
