"""ERP-native documents through adapters: payment files in (DocumentSubmit), statements and status
reports out. The adapters do the format work; this module applies the gateway's rules around them."""
from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from pathlib import Path

from lxml import etree
from sqlalchemy import Connection, select

from adapters import registry
from adapters.base import AccountFacts, DocumentInvalid, PaymentFile, StatusReport, check_payment_file
from adapters.iso20022.pain001 import payment_info_ids
from domain.codes import ReasonCode, ResultCode
from domain.errors import DirectLinkError
from domain.models import PaymentStatus, Statement, SubmittedPayment
from gateway.protocol import messages
from gateway.storage.tables import accounts, clients

_NOT_ACCEPTED = (ReasonCode.CURRENCY_NOT_ALLOWED,)   # in a file, refuses the whole file (issue: "nothing of it")


def _invalid(where: str, detail: str) -> DirectLinkError:
    return DirectLinkError(f"{where}: {detail}; nothing in the file was accepted", code=ResultCode.DOCUMENT_INVALID)


def document_bytes(doc: etree._Element) -> bytes:
    """The ERP file inside a Document element: the inline XML element, or the base64 text decoded."""
    if doc.get("encoding") == "xml":
        children = [c for c in doc if isinstance(c.tag, str)]
        if len(children) != 1:
            raise _invalid("Document", "encoding=\"xml\" needs exactly one element inside")
        return etree.tostring(children[0], xml_declaration=True, encoding="UTF-8")
    try:
        return base64.b64decode("".join(doc.itertext()).encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise _invalid("Document", "encoding=\"base64\" but the content is not base64") from exc


def read_payment_file(doc: etree._Element, formats: Path | None = None) -> tuple[PaymentFile, list[SubmittedPayment]]:
    """Read an ERP payment file into the same per-payment form a PaymentOrder has; file-level faults refuse all.
    `formats`: the folder of declared mappings (settings.formats), besides the installed adapters."""
    fmt = doc.get("format")
    reader, limits = registry.payment_reader(fmt, formats)
    try:
        data = document_bytes(doc)
        payment_file = reader(data)
        check_payment_file(payment_file, fmt, limits)
    except DocumentInvalid as err:
        raise _invalid(err.where, err.detail) from err
    except DirectLinkError as err:
        # The hardened parser's codes (XML_*) describe our request, not the ERP's file inside it: for the
        # file they mean the same as any other fault of the file.
        raise _invalid("file", f"{err.code}: {err.detail}") from err
    # A pain.001's blocks (PmtInfId), kept with each payment for the pain.002s that report on it (the agent
    # reads them the same way); {} for the other formats. The reader has validated the file: at most 35 each.
    blocks = payment_info_ids(data)
    parsed = []
    for t in payment_file.transactions:
        if t.problem is not None and t.problem.reason in _NOT_ACCEPTED:
            raise _invalid(t.where, t.problem.detail)
        if t.instruction is None:
            problem = t.problem.__class__(t.problem.reason, f"{t.where}: {t.problem.detail}")
            parsed.append(replace(t, problem=problem))
            continue
        # What an approver signs is the payment in its PaymentOrder form, whichever file it came in.
        parsed.append(replace(t, order_digest=messages.order_digest(messages.render_payment(t.instruction)),
                              payment_info_id=blocks.get(t.client_ref)))
    return payment_file, parsed


def render_statement(conn: Connection, fmt: str, statement: Statement, settings, created):
    """A statement page in an adapter's format, as the answer's Document element, with the cursor for the
    next page on it (the rendered file itself has nowhere to carry one)."""
    data, is_text = statement_file(conn, fmt, statement, settings, created)
    doc = messages.render_document(fmt, data, is_text)
    doc.set("nextCursor", statement.next_cursor)
    doc.set("complete", "true" if statement.complete else "false")
    return doc


def statement_file(conn: Connection, fmt: str, statement: Statement, settings, created) -> tuple[bytes, bool]:
    """A statement page written by an adapter: (the file's bytes, whether the format is text). The console's
    downloads take the same bytes StatementQuery carries."""
    writer, is_text = registry.statement_writer(fmt, settings.formats)
    owner = conn.execute(select(clients.c.name).join(accounts, accounts.c.client_id == clients.c.id)
                         .where(accounts.c.number == statement.account)).scalar() or ""
    facts = AccountFacts(statement.account, statement.currency, owner, settings.bank_name, settings.bank_bic,
                         timezone=settings.timezone, created=created)
    return _written(fmt, writer, statement, facts), is_text


def render_statuses(fmt: str, statuses: list[PaymentStatus], formats: Path | None = None):
    """Payment statuses in an adapter's format (pain.002, ...), as the answer's Document element; payments
    that came in a pain.001 are named by their block (OrgnlPmtInfId), as the ERP wrote it."""
    writer, is_text = registry.status_writer(fmt, formats)
    blocks = {s.client_ref: s.payment_info_id for s in statuses if s.payment_info_id}
    report = StatusReport(tuple(statuses), payment_info_ids=blocks)
    return messages.render_document(fmt, _written(fmt, writer, report), is_text)


def _written(fmt: str, writer, *args) -> bytes:
    try:
        return writer(*args)
    except ValueError as err:   # incl. RenderError: the format cannot say this; a stable code, not a 500
        raise DirectLinkError(f"cannot be written as {fmt}: {err}", code=ResultCode.UNSUPPORTED_FORMAT) from err


