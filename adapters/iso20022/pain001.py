"""Reading pain.001 (CustomerCreditTransferInitiation) files, as SAP (PMW/DMEE, CGI_XML_CT) and Oracle
Payments (ISO 20022 CGI template) write them, into domain instructions.

Batch policy, the one SAP and Oracle users expect from their banks:

* File-level faults reject the whole file, nothing of it is accepted (a bank answers pain.002 GrpSts
  RJCT): the official XSD, NbOfTxs and CtrlSum of the group and of each PmtInf, duplicate or unusable
  EndToEndIds, a payment method other than TRF, more transactions than the adapter takes, and (decided
  by the gateway, gateway/documents.py) a currency the bank does not accept. An ERP re-sends such a file
  whole once it is fixed, so half-accepting it would pay some invoices twice.
* Everything else is per transaction: an amount or account the domain refuses here, and the business
  checks the gateway makes later (funds, limits, grants) reject that transaction only; its siblings go
  on (pain.002 GrpSts PART).

Mapping: ClientRef = EndToEndId (the idempotency key); DebtorAccount = PmtInf/DbtrAcct (Othr/Id or
IBAN); amount = InstdAmt with its Ccy; creditor = Cdtr/Nm and CdtrAcct (Othr/Id or IBAN); creditor
agent = CNAPS member (ClrSysId/Cd CNAPS, or Prtry CNAPS or CNCNAPS) or BIC/BICFI, and this bank (its
BIC, or no agent at all) is INTERNAL; Purpose = RmtInf text (first 60 characters, "Payment" when there
is none), the full text (up to 140) as Remark when it is longer; RequestedDate = ReqdExctnDt; URGENT for
InstrPrty HIGH or service level URGP, at transaction level first, then PmtInf level.

SAP and Oracle write the same ISO structure for these versions; their readers differ only in the format
name the ERP team configures, so a file's origin shows in the gateway's records and errors.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from lxml import etree

from adapters.base import DocumentInvalid, Limits, PaymentFile, check_unique_references
from adapters.iso20022 import xsd
from adapters.iso20022.ident import is_own_bic
from domain.codes import ReasonCode
from domain.errors import PaymentRejected, XmlRejected
from domain.models import PaymentInstruction, SubmittedPayment, build_instruction, has_control_or_format
from domain.money import parse_amount
from gateway.protocol import xmlsafe

CNAPS_SYSTEMS = frozenset({"CNAPS", "CNCNAPS"})
MAX_BYTES = 10 * 1024 * 1024         # never more than a whole request body may be
DEFAULT_PURPOSE = "Payment"
# SEPA's placeholder for "the debtor gave no reference": as an idempotency key it would make next
# month's identical rent payment look like a retry of this month's, so such files are refused.
NO_REFERENCE = "NOTPROVIDED"
# Structured remittance (invoice numbers, creditor references) stands in when there are no text lines.
_STRUCTURED = ("Strd/RfrdDocInf/Nb", "Strd/CdtrRefInf/Ref", "Strd/AddtlRmtInf")


def make_reader(vendor: str, message: str, limits: Limits) -> Callable[[bytes], PaymentFile]:
    """The payment reader of one format, e.g. make_reader("sap", "pain.001.001.03", limits)."""

    def read(data: bytes) -> PaymentFile:
        return read_file(data, vendor=vendor, message=message, limits=limits)

    read.__name__ = f"read_{vendor}_{message.replace('.', '_')}"
    read.__doc__ = f"Read a {vendor} {message} file into domain transactions (pure: no I/O)."
    return read


def read_file(data: bytes, *, vendor: str, message: str, limits: Limits) -> PaymentFile:
    """Parse, validate and map one pain.001 file; DocumentInvalid for faults that refuse it whole."""
    root = _parse(data, limits)
    ns = xsd.namespace(message)
    if root.tag != f"{{{ns}}}Document":
        qn = etree.QName(root)
        raise DocumentInvalid("Document", f"the root element is {qn.localname} in "
                                          f"{qn.namespace or 'no namespace'}; {vendor}.{message} needs "
                                          f"Document in {ns}")
    xsd.validate(root, message)
    doc = _Doc(ns)
    initiation = doc.find(root, "CstmrCdtTrfInitn")
    head = doc.tree(doc.find(initiation, "GrpHdr"))
    msg_id = head.text("MsgId")
    _check_ref(msg_id, "GrpHdr/MsgId", "MsgId")
    blocks = doc.all(initiation, "PmtInf")
    txs_of = [doc.all(b, "CdtTrfTxInf") for b in blocks]
    count = sum(map(len, txs_of))
    if count > limits.max_transactions:   # before any per-transaction work
        raise DocumentInvalid("Document", f"{count} transactions; {vendor}.{message} takes at most "
                                          f"{limits.max_transactions} a file")
    amounts_of = [[_tx_amount(doc, tx) for tx in txs] for txs in txs_of]
    _check_totals(head, count, sum(map(sum, amounts_of), Decimal(0)), "GrpHdr")
    transactions = []
    for i, (block_el, txs, amounts) in enumerate(zip(blocks, txs_of, amounts_of), 1):
        where = f"PmtInf[{i}]"
        block = doc.tree(block_el, skip="CdtTrfTxInf")
        _check_totals(block, len(txs), sum(amounts, Decimal(0)), where)
        method = block.text("PmtMtd")
        if method != "TRF":
            raise DocumentInvalid(f"{where}/PmtMtd", f"only credit transfers (TRF) are accepted, "
                                                     f"not {method}")
        context = _BlockContext(
            debtor_account=_account(block, "DbtrAcct"),
            requested=_requested_date(block, f"{where}/ReqdExctnDt"),
            urgency=_urgency(block, "PmtTpInf"))
        for j, tx in enumerate(txs, 1):
            transactions.append(_transaction(doc.tree(tx), context, f"{where}/CdtTrfTxInf[{j}]"))
    check_unique_references(transactions)
    return PaymentFile(msg_id, tuple(transactions), _datetime(head.text("CreDtTm")))


def _initiation(data: bytes) -> tuple[_Doc, etree._Element] | None:
    """The root of a pain.001 (any version) read without validating it; None for anything else."""
    try:
        root = xmlsafe.parse(data, MAX_BYTES)
    except XmlRejected:
        return None
    ns = etree.QName(root).namespace or ""
    return (_Doc(ns), root) if ns.startswith("urn:iso:std:iso:20022:tech:xsd:pain.001.") else None


def file_message_id(data: bytes) -> str | None:
    """The GrpHdr/MsgId of a pain.001 (any version), read even when the file is refused for what follows it
    (a control sum, the XSD), so that a pain.002 refusing the file names it as the ERP did; None when there
    is none to read."""
    found = _initiation(data)
    if found is None:
        return None
    doc, root = found
    msg_id = "".join(el.text or "" for el in doc.all(root, "CstmrCdtTrfInitn/GrpHdr/MsgId")).strip()
    return msg_id or None


def payment_info_ids(data: bytes) -> dict[str, str]:
    """ClientRef (EndToEndId) -> PmtInfId of each transaction of a pain.001 (any version), so that a status
    report can name each payment's block (pain.002 OrgnlPmtInfId) as the ERP wrote it; {} for anything
    that is not a readable pain.001 (the reader proper says what is wrong with it)."""
    found_root = _initiation(data)
    if found_root is None:
        return {}
    doc, root = found_root
    found: dict[str, str] = {}
    for block in doc.all(root, "CstmrCdtTrfInitn/PmtInf"):
        block_id = "".join(el.text or "" for el in doc.all(block, "PmtInfId")).strip()
        for e2e in doc.all(block, "CdtTrfTxInf/PmtId/EndToEndId"):
            ref = (e2e.text or "").strip()
            if block_id and ref:
                found.setdefault(ref, block_id)
    return found


class _Doc:
    """Element access within one message namespace."""

    def __init__(self, ns: str):
        self.nsmap = {None: ns}
        self.prefix = f"{{{ns}}}"

    def find(self, el: etree._Element | None, path: str) -> etree._Element | None:
        return None if el is None else el.find(path, self.nsmap)

    def all(self, el: etree._Element, path: str) -> list[etree._Element]:
        return el.findall(path, self.nsmap)

    def tree(self, el: etree._Element, skip: str | None = None) -> _Tree:
        return _Tree(el, self.prefix, skip)


class _Tree:
    """An element's descendants in the message namespace by their path below it ("Cdtr/Nm"), read in one
    walk: each transaction is looked into some twenty times, and lxml's find reads its path anew on every
    call (3 µs), where the walk costs about four of them. `skip` leaves out a child and all below it (a
    PmtInf's transactions, which have trees of their own)."""

    def __init__(self, el: etree._Element, prefix: str, skip: str | None = None):
        self.paths: dict[str, list[etree._Element]] = {}
        cut = len(prefix)
        level = [(el, "")]
        while level:   # level by level, so that the elements of one path come in document order
            below = []
            for node, above in level:
                for child in node:
                    tag = child.tag
                    if not isinstance(tag, str) or not tag.startswith(prefix):   # comments, other namespaces
                        continue
                    path = above + tag[cut:]
                    if path == skip:
                        continue
                    self.paths.setdefault(path, []).append(child)
                    if len(child):
                        below.append((child, path + "/"))
            level = below

    def find(self, path: str) -> etree._Element | None:
        found = self.paths.get(path)
        return found[0] if found else None

    def all(self, path: str) -> list[etree._Element]:
        return self.paths.get(path, [])

    def text(self, path: str) -> str | None:
        """Read comment-safe (gateway/xmlsafe.text)."""
        return xmlsafe.text(self.find(path))


@dataclass(frozen=True)
class _BlockContext:
    """What a PmtInf says for all its transactions."""

    debtor_account: str
    requested: dt.date
    urgency: str | None


def _parse(data: bytes, limits: Limits) -> etree._Element:
    """The gateway's one hardened parser; its codes stand, with the place named as the Document."""
    try:
        codec = xmlsafe.declared_encoding(data)
        if codec not in limits.encodings:
            raise DocumentInvalid("Document", f"ISO 20022 files are {'/'.join(limits.encodings).upper()}, "
                                              f"not {codec.upper()}")
        return xmlsafe.parse(data, MAX_BYTES)
    except XmlRejected as exc:
        raise XmlRejected(f"Document: {exc.detail}", code=exc.code) from exc


def _check_ref(value: str | None, where: str, what: str) -> None:
    """References travel on into PaymentReports as protocol Ref35 values (1-35, no blanks at the ends, no
    control characters), so an unusable one refuses the file instead of breaking the answer."""
    if not value or value != value.strip(" \t\r\n") or len(value) > 35 or has_control_or_format(value):
        raise DocumentInvalid(where, f"{what} {value!r} must be 1-35 characters with no blanks at the ends "
                                     "and no control characters")


def _tx_amount(doc: _Doc, tx: etree._Element) -> Decimal:
    """A transaction's amount as the control sums count it: InstdAmt, or EqvtAmt/Amt, any currency."""
    el = doc.find(tx, "Amt/InstdAmt")
    if el is None:
        el = doc.find(tx, "Amt/EqvtAmt/Amt")
    return Decimal(xmlsafe.text(el).strip())   # the XSD has checked the decimal lexical form


def _check_totals(el: _Tree, count: int, total: Decimal, where: str) -> None:
    """NbOfTxs and CtrlSum (where present) must describe exactly the transactions below `el`."""
    stated = el.text("NbOfTxs")
    if stated is not None and int(stated) != count:
        raise DocumentInvalid(f"{where}/NbOfTxs", f"says {stated} but there are {count} CdtTrfTxInf")
    stated_sum = el.text("CtrlSum")
    if stated_sum is not None and Decimal(stated_sum.strip()) != total:
        raise DocumentInvalid(f"{where}/CtrlSum",
                              f"says {stated_sum.strip()} but the amounts add up to {total}")


def _account(tree: _Tree, at: str) -> str:
    """Othr/Id or IBAN of the CashAccount at `at`; empty when absent, which the domain refuses per
    transaction."""
    return tree.text(f"{at}/Id/Othr/Id") or tree.text(f"{at}/Id/IBAN") or ""


def _date(text: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip()[:10])   # xs:date may carry a zone; the day is as written
    except ValueError as exc:
        raise DocumentInvalid(where, f"{text!r} is not a date the gateway can use") from exc


def _requested_date(block: _Tree, where: str) -> dt.date:
    req = block.find("ReqdExctnDt")
    if len(req):   # .09: a choice of Dt or DtTm; a DtTm's day is the day in its own offset
        return _date(xmlsafe.text(req[0]), f"{where}/{etree.QName(req[0]).localname}")
    return _date(xmlsafe.text(req), where)


def _datetime(text: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.strip()) if text else None
    except ValueError:
        return None   # informational only: CreDtTm never decides anything


def _urgency(tree: _Tree, at: str) -> str | None:
    """URGENT for InstrPrty HIGH or service level URGP, NORMAL for NORM, None when the PmtTpInf at `at`
    says nothing or is absent."""
    priority = tree.text(f"{at}/InstrPrty")
    levels = {xmlsafe.text(c) for c in tree.all(f"{at}/SvcLvl/Cd")}
    if priority == "HIGH" or "URGP" in levels:
        return "URGENT"
    return "NORMAL" if priority == "NORM" else None


def _creditor_agent(tx: _Tree) -> tuple[str, str, str | None]:
    """(scheme, code, bank name) of the creditor's bank."""
    if tx.find("CdtrAgt/FinInstnId") is None:
        return "INTERNAL", "", None
    bic = (tx.text("CdtrAgt/FinInstnId/BICFI") or tx.text("CdtrAgt/FinInstnId/BIC") or "").strip()
    # informational: cut, never refused
    name = " ".join((tx.text("CdtrAgt/FinInstnId/Nm") or "").split())[:70] or None
    if bic and is_own_bic(bic):
        return "INTERNAL", "", None
    if tx.find("CdtrAgt/FinInstnId/ClrSysMmbId") is not None:
        system = (tx.text("CdtrAgt/FinInstnId/ClrSysMmbId/ClrSysId/Cd")
                  or tx.text("CdtrAgt/FinInstnId/ClrSysMmbId/ClrSysId/Prtry") or "").strip()
        if system.upper() in CNAPS_SYSTEMS:
            return "CNAPS", (tx.text("CdtrAgt/FinInstnId/ClrSysMmbId/MmbId") or "").strip(), name
        if not bic:
            raise PaymentRejected(ReasonCode.BANK_CODE_INVALID,
                                  f"CdtrAgt clearing system {system or '(none)'!r} is not supported: "
                                  "use CNAPS or a BIC")
    if bic:
        return "BIC", bic, name
    # An agent that names a bank but no code cannot be routed; treating it as this bank could credit a
    # same-numbered account here.
    raise PaymentRejected(ReasonCode.BANK_CODE_INVALID, "CdtrAgt names neither a BIC nor a CNAPS member")


def _remittance(tx: _Tree) -> tuple[str, str | None]:
    """(Purpose, Remark) from the unstructured lines, else the structured references (invoice numbers)."""
    parts = [xmlsafe.text(u) for u in tx.all("RmtInf/Ustrd")]
    if not any(p.strip() for p in parts):
        parts = [xmlsafe.text(r) for path in _STRUCTURED for r in tx.all(f"RmtInf/{path}")]
    # ERPs wrap long notes over lines; the protocol's Purpose and Remark are single-line text.
    text = " ".join(" ".join(parts).split())
    purpose = text[:60].rstrip() or DEFAULT_PURPOSE
    return purpose, (text[:140].rstrip() if len(text) > 60 else None)


def _transaction(tx: _Tree, block: _BlockContext, where: str) -> SubmittedPayment:
    e2e = tx.text("PmtId/EndToEndId")
    _check_ref(e2e, f"{where}/PmtId/EndToEndId", "EndToEndId")
    if e2e == NO_REFERENCE:
        raise DocumentInvalid(f"{where}/PmtId/EndToEndId", f"{NO_REFERENCE} cannot be the idempotency key: "
                                                           "give each payment its own EndToEndId")
    where = f"{where} (EndToEndId {e2e})"
    try:
        return SubmittedPayment(e2e, _instruction(tx, block, e2e), where=where)
    except PaymentRejected as problem:
        return SubmittedPayment(e2e, None, problem, where=where)


def _instruction(tx: _Tree, block: _BlockContext, e2e: str) -> PaymentInstruction:
    amount_el = tx.find("Amt/InstdAmt")
    if amount_el is None:
        raise PaymentRejected(ReasonCode.AMOUNT_INVALID,
                              "Amt/EqvtAmt (an amount to convert) is not supported; send Amt/InstdAmt")
    amount, currency = xmlsafe.text(amount_el).strip(), amount_el.get("Ccy")
    try:
        parse_amount(amount, currency)   # first, so that its problems name the field
    except PaymentRejected as problem:
        raise PaymentRejected(problem.reason, f"Amt/InstdAmt: {problem.detail}") from problem
    scheme, code, bank_name = _creditor_agent(tx)
    purpose, remark = _remittance(tx)
    return build_instruction(
        client_ref=e2e, debtor_account=block.debtor_account, amount=amount, currency=currency,
        creditor_name=(tx.text("Cdtr/Nm") or "").strip(),
        creditor_account=_account(tx, "CdtrAcct"),
        bank_scheme=scheme, bank_code=code, bank_name=bank_name, purpose=purpose, remark=remark,
        requested_date=block.requested,
        urgency=_urgency(tx, "PmtTpInf") or block.urgency or "NORMAL")
