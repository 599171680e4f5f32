"""pain.002 (CustomerPaymentStatusReport) writers: the gateway's payment statuses as SAP BCM's and Oracle
Payments' status monitors read them.

States map per spec section 6: PENDING_APPROVAL and UNKNOWN are PDNG (StsRsnInf/Rsn/Prtry tells which),
ACCEPTED ACTC, PROCESSING ACSP, SETTLED ACSC, REJECTED, FAILED and RETURNED RJCT with our reason code,
CANCELLED CANC (pain.002.001.03 has no CANC: RJCT with reason code DS02, "order cancelled").
The group status sums them up: RJCT when all are rejected, PART when some are, ACSC or PDNG when all are
that, otherwise ACCP.

Transactions are grouped in one OrgnlPmtInfAndSts per PmtInfId of the original file, when the caller
knows them (StatusReport.payment_info_ids: the agent keeps them from the files it sends, the gateway with
each payment that came in a pain.001); the others go in one OrgnlPmtInfAndSts named after the original
message (or UNKNOWN: the gateway's status query answers for payments of any message). ERPs match the
transactions by OrgnlEndToEndId, which is always given.
"""
from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Callable

from lxml import etree

from adapters.base import StatusReport
from adapters.iso20022.ident import is_iban, message_id
from adapters.iso20022.xsd import namespace
from domain.codes import PaymentState
from domain.models import PaymentStatus
from domain.money import Money

_TX_STATUS = {
    PaymentState.PENDING_APPROVAL: "PDNG",
    PaymentState.ACCEPTED: "ACTC",
    PaymentState.PROCESSING: "ACSP",
    PaymentState.UNKNOWN: "PDNG",
    PaymentState.SETTLED: "ACSC",
    PaymentState.RETURNED: "RJCT",
    PaymentState.REJECTED: "RJCT",
    PaymentState.FAILED: "RJCT",
    PaymentState.CANCELLED: "CANC",
}
_REJECTED = frozenset({"RJCT", "CANC"})
_ADDTL_INF = 105                          # Max105Text per AddtlInf line
_ADDTL_LINES = 3                          # enough for any reason text the gateway writes
UNKNOWN_ORIGINAL = "UNKNOWN"


def tx_status(state: PaymentState, has_cancel: bool) -> str:
    """The ISO TxSts of a payment state; CANC only where the version has it."""
    code = _TX_STATUS[state]
    return "RJCT" if code == "CANC" and not has_cancel else code


def group_status(codes: list[str]) -> str | None:
    """GrpSts from the transactions' TxSts; None (left out) when the report holds no transaction."""
    if not codes:
        return None
    rejected = sum(code in _REJECTED for code in codes)
    if rejected == len(codes):
        return "RJCT"
    if rejected:
        return "PART"
    for uniform in ("ACSC", "PDNG"):
        if all(code == uniform for code in codes):
            return uniform
    return "ACCP"


class _Version:
    """What differs between the pain.002 versions this module writes."""

    def __init__(self, message: str, original: str, has_cancel: bool):
        self.ns = namespace(message)
        self.message, self.original, self.has_cancel = message, original, has_cancel

    def q(self, name: str) -> str:
        return f"{{{self.ns}}}{name}"


V03 = _Version("pain.002.001.03", "pain.001.001.03", has_cancel=False)
V10 = _Version("pain.002.001.10", "pain.001.001.09", has_cancel=True)


def _sub(v: _Version, parent: etree._Element, name: str, text: str | None = None, **attrs) -> etree._Element:
    el = etree.SubElement(parent, v.q(name), attrs)
    if text is not None:
        el.text = text
    return el


def _reason(v: _Version, parent: etree._Element, status: PaymentStatus, code: str) -> None:
    """StsRsnInf: our reason code (or, for the two PDNG states, the state) and its text."""
    if code == "RJCT" and status.state == PaymentState.CANCELLED:
        proprietary, iso_code = None, "DS02"
    elif status.reason is not None:
        proprietary, iso_code = str(status.reason), None
    elif code in ("PDNG", "RJCT", "CANC"):
        proprietary, iso_code = str(status.state), None
    else:
        return
    info = _sub(v, parent, "StsRsnInf")
    rsn = _sub(v, info, "Rsn")
    if iso_code:
        _sub(v, rsn, "Cd", iso_code)
    else:
        _sub(v, rsn, "Prtry", proprietary)
    text = " ".join((status.reason_text or "").split())
    if status.state == PaymentState.PENDING_APPROVAL:
        given = f"{status.approvals_given} of {status.approvals_required} approvals given."
        text = f"{given} {text}".strip()
    elif iso_code:   # DS02 says "cancelled"; the state keeps our own word for it
        text = f"{status.state}: {text}" if text else str(status.state)
    _addtl_inf(v, info, text)


def _addtl_inf(v: _Version, info: etree._Element, text: str) -> None:
    # Split between words (a date or an id stays whole; only a word longer than a line is cut).
    for line in textwrap.wrap(" ".join(text.split()), _ADDTL_INF, break_on_hyphens=False)[:_ADDTL_LINES]:
        _sub(v, info, "AddtlInf", line)


def _transaction(v: _Version, parent: etree._Element, status: PaymentStatus, amount: Money | None) -> str:
    code = tx_status(status.state, v.has_cancel)
    tx = _sub(v, parent, "TxInfAndSts")
    _sub(v, tx, "OrgnlEndToEndId", status.end_to_end_id or status.client_ref)
    _sub(v, tx, "TxSts", code)
    _reason(v, tx, status, code)
    if status.payment_id:   # the bank's reference of the instruction
        _sub(v, tx, "AcctSvcrRef", status.payment_id)
    if amount is not None or status.debtor_account:
        ref = _sub(v, tx, "OrgnlTxRef")
        if amount is not None:
            _sub(v, _sub(v, ref, "Amt"), "InstdAmt", amount.text(), Ccy=amount.currency)
        if status.debtor_account:
            acct_id = _sub(v, _sub(v, ref, "DbtrAcct"), "Id")
            if is_iban(status.debtor_account):
                _sub(v, acct_id, "IBAN", status.debtor_account)
            else:
                _sub(v, _sub(v, acct_id, "Othr"), "Id", status.debtor_account)
    return code


def _amount(report: StatusReport, status: PaymentStatus) -> Money | None:
    if status.amount is not None:
        return status.amount
    known = report.amounts.get(status.client_ref)
    return Money(known[0], known[1]) if known else None


def write(report: StatusReport, v: _Version) -> bytes:
    """One status report document (UTF-8 bytes with an XML declaration)."""
    created = report.created if report.created.tzinfo else report.created.replace(tzinfo=dt.UTC)
    root = etree.Element(v.q("Document"), nsmap={None: v.ns})
    body = _sub(v, root, "CstmrPmtStsRpt")
    head = _sub(v, body, "GrpHdr")
    said = ((s.client_ref, s.payment_id, s.state, s.reason) for s in report.statuses)
    msg_id = message_id("DLSR", v.message, created.isoformat(), report.original_message_id, *said)
    _sub(v, head, "MsgId", msg_id)
    _sub(v, head, "CreDtTm", created.isoformat(timespec="seconds"))
    group = _sub(v, body, "OrgnlGrpInfAndSts")
    original = (report.original_message_id or UNKNOWN_ORIGINAL)[:35]
    _sub(v, group, "OrgnlMsgId", original)
    _sub(v, group, "OrgnlMsgNmId", v.original)
    if report.rejected is not None:
        # The whole file refused (no payment of it was taken): GrpSts RJCT and why, so that the ERP's
        # importer marks every payment of the file as not paid.
        code, why = report.rejected
        _sub(v, group, "GrpSts", "RJCT")
        info = _sub(v, group, "StsRsnInf")
        _sub(v, _sub(v, info, "Rsn"), "Prtry", code[:35])
        _addtl_inf(v, info, why)
    elif report.statuses:
        group_sts = _sub(v, group, "GrpSts")   # filled in below, once the transactions are known
        by_block: dict[str, list[PaymentStatus]] = {}
        for s in report.statuses:
            by_block.setdefault(report.payment_info_ids.get(s.client_ref, original)[:35], []).append(s)
        codes = []
        for block_id, statuses in by_block.items():
            block = _sub(v, body, "OrgnlPmtInfAndSts")
            _sub(v, block, "OrgnlPmtInfId", block_id)
            codes += [_transaction(v, block, s, _amount(report, s)) for s in statuses]
        group_sts.text = group_status(codes)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def writer(v: _Version) -> Callable[[StatusReport], bytes]:
    def write_report(report: StatusReport) -> bytes:
        return write(report, v)

    write_report.__name__ = f"write_{v.message.replace('.', '_')}"
    write_report.__doc__ = f"Payment statuses as {v.message} (pure: no I/O)."
    return write_report
