"""Reading camt.053 statements, camt.052 account reports and camt.054 debit/credit notifications back into
the domain, for reconciliation.

Any revision (.001.02 to .001.13; element names that changed in 2019 are read in both forms), parsed by
gateway.protocol.xmlsafe (no DTD, entities or network; declared encoding enforced). Several Stmt (Rpt,
Ntfctn) of one account in one document are joined, several accounts give one statement each
(adapters/readback.py). Only booked entries (Sts BOOK) count: pending and information-only entries have
not moved money.

Balances: booked ones first (opening OPBD or PRCD, closing CLBD or ITBD), and the closing must be what
the opening and the entries give. A report with only available balances (OPAV, ITAV/CLAV: intraday
camt.052 of many banks) is read with them, but its closing is not checked: available balances also move
with holds and credit lines, which are no entries. A report without any balance (camt.054 has none, many
camt.052 too) opens at the booked closing less its entries when it has a booked closing, else at zero:
its entries are what reconciliation needs. A balance in another currency than the account's is refused.

From each Ntry: NtryRef (the EntryId when numeric), Amt, CdtDbtInd, RvslInd, BookgDt, ValDt, AcctSvcrRef
(BankRef) and, from its first TxDtls, EndToEndId ("NOTPROVIDED" is none), InstrId, the counterparty
(creditor of what the account paid, debtor of what it received; a reversal keeps the original roles, as
RvslInd asks), its agent (BIC, CNAPS member id, or this bank when the agent's BIC is the account
servicer's) and the remittance text (every Ustrd, and structured creditor references).

ClientRef: our writer shows the ERP's own reference only on what the account paid: InstrId when it
differs from the EndToEndId, else the EndToEndId itself. What the account received carries none.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from lxml import etree

from adapters.base import DocumentInvalid
from adapters.iso20022.ident import is_own_bic
from adapters.readback import Row, build, check_currency, day_start, join, money, parsed_xml
from domain.errors import PaymentRejected
from domain.models import BankCode, Party, Statement

_OPENING, _CLOSING = ("OPBD", "PRCD"), ("CLBD", "ITBD")
_OPENING_AVAILABLE, _CLOSING_AVAILABLE = ("OPAV",), ("CLAV", "ITAV")
_BODIES = (("BkToCstmrStmt", "Stmt"), ("BkToCstmrAcctRpt", "Rpt"), ("BkToCstmrDbtCdtNtfctn", "Ntfctn"))


class _Tree:
    """Paths like 'Acct/Id/IBAN' in the document's one namespace; texts stripped, None when absent."""

    def __init__(self, ns: str):
        self.ns = ns

    def path(self, names: str) -> str:
        return "/".join(f"{{{self.ns}}}{n}" for n in names.split("/"))

    def find(self, el, names: str):
        return el.find(self.path(names))

    def all(self, el, names: str) -> list:
        return el.findall(self.path(names))

    def text(self, el, *alternatives: str) -> str | None:
        for names in alternatives:
            found = el.find(self.path(names))
            if found is not None:
                value = "".join(found.itertext(etree.Element)).strip()
                if value:
                    return value
        return None


def _path(el) -> str:
    """A readable XPath-like location without namespaces: /Document/BkToCstmrStmt/Stmt[1]/Ntry[3]."""
    tree = el.getroottree()
    return "/" + "/".join(part.split("}")[-1] if "}" in part else part
                          for part in tree.getelementpath(el).split("/"))


def _decimal(text: str | None, where: str) -> Decimal:
    try:
        value = Decimal(text or "")
    except InvalidOperation:
        raise DocumentInvalid(where, f"{text!r} is not an amount") from None
    if not value.is_finite() or value < 0:
        raise DocumentInvalid(where, f"{text!r} is not an amount")
    return value


def _date(t: _Tree, el, names: str, where: str, required: bool = True) -> dt.datetime | None:
    """Dt or DtTm under `names`: an aware instant (a bare date is its midnight UTC)."""
    value = t.text(el, f"{names}/DtTm", f"{names}/Dt")
    if value is None:
        if required:
            raise DocumentInvalid(where, f"{names} is missing")
        return None
    try:
        if "T" in value:
            moment = dt.datetime.fromisoformat(value)
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        return day_start(dt.date.fromisoformat(value[:10]))
    except ValueError:
        raise DocumentInvalid(f"{where}/{names}", f"{value!r} is not a date") from None


def _account(t: _Tree, el) -> str | None:
    return t.text(el, "Id/IBAN", "Id/Othr/Id") if el is not None else None


def _party(t: _Tree, details, role: str, servicer_bic: str | None) -> Party | None:
    parties = t.find(details, "RltdPties")
    name = account = None
    if parties is not None:
        name = t.text(parties, f"{role}/Pty/Nm", f"{role}/Nm")
        account = _account(t, t.find(parties, f"{role}Acct"))
    if not (name or account):
        return None
    agent = t.find(details, f"RltdAgts/{role}Agt/FinInstnId")
    bank = None
    if agent is not None:
        bic = t.text(agent, "BICFI", "BIC")
        member = t.text(agent, "ClrSysMmbId/MmbId")
        try:
            if bic and servicer_bic and is_own_bic(bic, servicer_bic):
                bank = BankCode("INTERNAL")
            elif member:
                bank = BankCode("CNAPS", member)
            elif bic:
                bank = BankCode("BIC", bic)
        except PaymentRejected:          # a code the domain does not know: keep the party without it
            bank = None
    return Party(name or "", account, bank)


def _entry(t: _Tree, ntry, currency: str, servicer_bic: str | None, made: dt.datetime | None) -> Row | None:
    where = _path(ntry)
    status = t.text(ntry, "Sts/Cd", "Sts")
    if status is not None and status != "BOOK":
        return None
    amount_el = t.find(ntry, "Amt")
    if amount_el is None:
        raise DocumentInvalid(where, "Amt is missing")
    if amount_el.get("Ccy") != currency:
        raise DocumentInvalid(f"{where}/Amt", f"currency {amount_el.get('Ccy')!r} on an account in {currency}")
    amount = _decimal(t.text(ntry, "Amt"), f"{where}/Amt")
    direction = t.text(ntry, "CdtDbtInd")
    if direction not in ("CRDT", "DBIT"):
        raise DocumentInvalid(f"{where}/CdtDbtInd", f"{direction!r} is neither CRDT nor DBIT")
    reversal = (t.text(ntry, "RvslInd") or "false").lower() in ("true", "1")
    value_moment = _date(t, ntry, "ValDt", where, required=False)
    # BookgDt is optional in every revision: camt.054 notifications often give only the value date, some
    # no date at all, and then the entry was booked by the time the report was made (`made`).
    booked = _date(t, ntry, "BookgDt", where, required=value_moment is None and made is None) or value_moment or made
    value_date = value_moment.date() if value_moment else booked.date()
    reference = t.text(ntry, "NtryRef")
    details = t.find(ntry, "NtryDtls/TxDtls")
    issued = (direction == "DBIT") != reversal
    e2e = instr = party = None
    texts: list[str] = []
    if details is not None:
        e2e = t.text(details, "Refs/EndToEndId")
        e2e = None if e2e == "NOTPROVIDED" else e2e
        instr = t.text(details, "Refs/InstrId")
        party = _party(t, details, "Cdtr" if issued else "Dbtr", servicer_bic)
    for tx in t.all(ntry, "NtryDtls/TxDtls"):
        texts += [u for el in t.all(tx, "RmtInf/Ustrd") if (u := "".join(el.itertext(etree.Element)).strip())]
        texts += [r for el in t.all(tx, "RmtInf/Strd/CdtrRefInf/Ref") if (r := (el.text or "").strip())]
    texts = texts or [t.text(ntry, "AddtlNtryInf") or ""]
    client_ref = instr or (e2e if issued else None)
    return Row(where, booked, value_date, direction, money(amount, currency, f"{where}/Amt").amount, party,
               t.text(ntry, "AcctSvcrRef") or "", " ".join(texts), client_ref, e2e, reversal=reversal,
               entry_id=int(reference) if reference and reference.isascii() and reference.isdigit() else None)


def _balance(t: _Tree, report, codes: tuple[str, ...], where: str, currency: str) -> tuple[Decimal, dt.date] | None:
    for bal in t.all(report, "Bal"):
        if t.text(bal, "Tp/CdOrPrtry/Cd") in codes:
            amount_el = t.find(bal, "Amt")
            if amount_el is not None and amount_el.get("Ccy") != currency:
                raise DocumentInvalid(f"{_path(bal)}/Amt", f"balance in {amount_el.get('Ccy')!r} on an account "
                                                           f"in {currency}")
            amount = _decimal(t.text(bal, "Amt"), f"{where}/Bal/Amt")
            sign = -1 if t.text(bal, "CdtDbtInd") == "DBIT" else 1
            return sign * amount, _date(t, bal, "Dt", f"{where}/Bal").date()
    return None


def _made(t: _Tree, report) -> dt.datetime | None:
    """When the report (Stmt, Rpt, Ntfctn) was made, by its CreDtTm; None if it has none or no date."""
    value = t.text(report, "CreDtTm")
    try:
        moment = dt.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment and moment.tzinfo is None else moment


def _report(t: _Tree, report) -> Statement:
    where = _path(report)
    account = _account(t, t.find(report, "Acct"))
    if not account:
        raise DocumentInvalid(f"{where}/Acct", "the account has no Id")
    servicer_bic = t.text(report, "Acct/Svcr/FinInstnId/BICFI", "Acct/Svcr/FinInstnId/BIC")
    ntries = t.all(report, "Ntry")
    # Acct/Ccy is optional in camt: then the currency the balances are given in.
    amounts = [el for el in (t.find(report, "Bal/Amt"), t.find(report, "Ntry/Amt")) if el is not None]
    currency = t.text(report, "Acct/Ccy") or next((el.get("Ccy") for el in amounts), None) or ""
    check_currency(currency, f"{where}/Acct/Ccy")
    made = _made(t, report)
    rows = [row for ntry in ntries if (row := _entry(t, ntry, currency, servicer_bic, made)) is not None]
    opening = _balance(t, report, _OPENING, where, currency)
    closing = _balance(t, report, _CLOSING, where, currency)
    if opening is None and closing is None:
        opening = _balance(t, report, _OPENING_AVAILABLE, where, currency)
        closing = None                # available balances are not checked against the entries (above)
    created = t.text(report, "CreDtTm") or t.text(report, "FrToDt/FrDtTm") or ""
    try:
        first_day = rows[0].booked.date() if rows else dt.date.fromisoformat(created[:10])
    except ValueError:
        raise DocumentInvalid(f"{where}/CreDtTm", "no entry and no date the report was made") from None
    if opening is None:
        net = sum((r.amount if r.direction == "CRDT" else -r.amount for r in rows), Decimal(0))
        opening = (closing[0] - net, first_day) if closing else (Decimal(0), first_day)
    closing_amount, closing_date = closing if closing else (None, rows[-1].value_date if rows else opening[1])
    return build(account, currency, opening[0], opening[1], closing_amount, closing_date, rows, where=f"{where}/Bal")


def read_camt(data: bytes) -> Statement:
    """A camt.053, .052 or .054 document as one Statement (SeveralAccounts: one per account); DocumentInvalid
    if it is not one."""
    root = parsed_xml(data, "camt")
    ns = etree.QName(root).namespace or ""
    if not ns.startswith("urn:iso:std:iso:20022:tech:xsd:camt.05") or etree.QName(root).localname != "Document":
        raise DocumentInvalid("/", f"not a camt.052/053/054 document (root {root.tag})")
    t = _Tree(ns)
    for body_name, report_name in _BODIES:
        body = t.find(root, body_name)
        if body is not None:
            return join([_report(t, r) for r in t.all(body, report_name)], where="")
    raise DocumentInvalid("/Document", "none of BkToCstmrStmt, BkToCstmrAcctRpt, BkToCstmrDbtCdtNtfctn")
