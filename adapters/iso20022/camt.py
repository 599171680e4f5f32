"""camt.053 (end-of-day statement) and camt.052 (intraday account report) writers.

One Stmt (Rpt) per page of the gateway's statement: Id = account + cursor, so the same page has the same
Id and an importer can tell a page it has seen already; balances OPBD and CLBD (camt.052:
OPBD and ITBD, the day is not closed); TxsSummry; one Ntry per entry with NtryRef = EntryId and
AcctSvcrRef = BankRef, and one TxDtls carrying EndToEndId, both parties and the narrative. Parties keep
their roles of the original payment in a reversal, as ISO's RvslInd asks.

The document is written with lxml's incremental writer, one entry at a time: memory stays flat and the
work is linear in the entries (statements of 100,000 entries are written in one go by benchmarks).
Booking times are written as instants with their offset (UTC): AccountFacts does not carry the bank's zone.
GrpHdr/MsgId is derived from the page, so the same page is the same message; CreDtTm is the time of
writing, the one thing that differs between two renderings, because the writer contract carries no
creation time (a StatusReport does, and pain.002 is fully deterministic).
"""
from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from lxml import etree

from adapters.base import AccountFacts
from adapters.iso20022.ident import BIC_2009, is_iban, message_id
from adapters.iso20022.xsd import namespace
from domain.models import BankCode, Party, Statement, StatementEntry
from domain.money import Money


@dataclass(frozen=True)
class Version:
    message: str
    root: str              # BkToCstmrStmt | BkToCstmrAcctRpt
    report: str            # Stmt | Rpt
    closing: str           # CLBD (statement) | ITBD (intraday)
    revision_2019: bool    # .08: BICFI, Sts/Cd, parties in Pty, TxDtls/Amt, TtlNetNtry/Amt

    @property
    def ns(self) -> str:
        return namespace(self.message)


CAMT053_02 = Version("camt.053.001.02", "BkToCstmrStmt", "Stmt", "CLBD", revision_2019=False)
CAMT053_08 = Version("camt.053.001.08", "BkToCstmrStmt", "Stmt", "CLBD", revision_2019=True)
CAMT052_08 = Version("camt.052.001.08", "BkToCstmrAcctRpt", "Rpt", "ITBD", revision_2019=True)


class _Out:
    """Thin helpers over etree.xmlfile in one namespace (declared once, on Document)."""

    def __init__(self, xf, v: Version):
        self.xf, self.v, self.prefix = xf, v, f"{{{v.ns}}}"

    def node(self, name: str, **attrs):
        return self.xf.element(self.prefix + name, attrs)

    def leaf(self, name: str, text: str, **attrs) -> None:
        with self.xf.element(self.prefix + name, attrs):
            self.xf.write(text)

    def path(self, names: str, text: str, **attrs) -> None:
        """'Id/Othr/Id' -> nested elements around one text (attributes on the innermost)."""
        head, _, rest = names.partition("/")
        if not rest:
            self.leaf(head, text, **attrs)
            return
        with self.node(head):
            self.path(rest, text, **attrs)


@dataclass
class _Totals:
    credits: int = 0
    credit_sum: Decimal = Decimal(0)
    debits: int = 0
    debit_sum: Decimal = Decimal(0)

    def add(self, entry: StatementEntry) -> None:
        if entry.direction == "CRDT":
            self.credits, self.credit_sum = self.credits + 1, self.credit_sum + entry.amount.amount
        else:
            self.debits, self.debit_sum = self.debits + 1, self.debit_sum + entry.amount.amount


def _signed(amount: Decimal) -> tuple[str, str]:
    """(text, CRDT|DBIT): ISO amounts are never negative; the indicator carries the sign."""
    return format(abs(amount), "f"), ("DBIT" if amount < 0 else "CRDT")


def _totals(st: Statement) -> _Totals:
    """One pass before writing: TxsSummry precedes the entries, and the balances must add up."""
    totals = _Totals()
    for entry in st.entries:
        totals.add(entry)
    if st.opening.amount + totals.credit_sum - totals.debit_sum != st.closing.amount:
        raise ValueError(f"statement of {st.account} does not add up: opening {st.opening.text()} + credits "
                         f"{totals.credit_sum} - debits {totals.debit_sum} != closing {st.closing.text()}")
    return totals


def _account_id(out: _Out, number: str) -> None:
    out.path("Id/IBAN" if is_iban(number) else "Id/Othr/Id", number)


def _agent(out: _Out, bic: str | None = None, member: str | None = None, name: str | None = None) -> None:
    """FinInstnId with a BIC (where the version accepts it), a CNAPS member id and/or a name."""
    if bic and not out.v.revision_2019 and not BIC_2009.fullmatch(bic):
        bic = None
    with out.node("FinInstnId"):
        if bic:
            out.leaf("BICFI" if out.v.revision_2019 else "BIC", bic)
        if member:
            with out.node("ClrSysMmbId"):
                out.path("ClrSysId/Cd", "CNAPS")
                out.leaf("MmbId", member)
        if name:
            out.leaf("Nm", name[:140])


def _balance(out: _Out, code: str, money: Money, day: dt.date) -> None:
    amount, indicator = _signed(money.amount)
    with out.node("Bal"):
        out.path("Tp/CdOrPrtry/Cd", code)
        out.leaf("Amt", amount, Ccy=money.currency)
        out.leaf("CdtDbtInd", indicator)
        out.path("Dt/Dt", day.isoformat())


def _summary(out: _Out, totals: _Totals) -> None:
    net, indicator = _signed(totals.credit_sum - totals.debit_sum)
    with out.node("TxsSummry"):
        with out.node("TtlNtries"):
            out.leaf("NbOfNtries", str(totals.credits + totals.debits))
            out.leaf("Sum", format(totals.credit_sum + totals.debit_sum, "f"))
            if out.v.revision_2019:
                with out.node("TtlNetNtry"):
                    out.leaf("Amt", net)
                    out.leaf("CdtDbtInd", indicator)
            else:
                out.leaf("TtlNetNtryAmt", net)
                out.leaf("CdtDbtInd", indicator)
        for name, count, total in (("TtlCdtNtries", totals.credits, totals.credit_sum),
                                   ("TtlDbtNtries", totals.debits, totals.debit_sum)):
            with out.node(name):
                out.leaf("NbOfNtries", str(count))
                out.leaf("Sum", format(total, "f"))


def _party(out: _Out, role: str, name: str | None, account: str | None) -> None:
    if name:
        with out.node(role):
            if out.v.revision_2019:   # .08 parties are a choice of party or agent
                out.path("Pty/Nm", name[:140])
            else:
                out.leaf("Nm", name[:140])
    if account:
        with out.node(role + "Acct"):
            _account_id(out, account)


def _counterparty_bank(out: _Out, role: str, bank: BankCode | None, facts: AccountFacts) -> None:
    if bank is None:
        return
    with out.node("RltdAgts"), out.node(role + "Agt"):
        if bank.scheme == "BIC":
            _agent(out, bic=bank.code)
        elif bank.scheme == "CNAPS":
            _agent(out, member=bank.code)
        else:   # INTERNAL: an account of this bank
            _agent(out, bic=facts.bank_bic, name=facts.bank_name)


def _entry(out: _Out, e: StatementEntry, facts: AccountFacts) -> None:
    # The original payment's direction: a reversal is booked against it (RvslInd true).
    issued = (e.direction == "DBIT") != e.reversal
    them: Party | None = e.counterparty
    with out.node("Ntry"):
        out.leaf("NtryRef", str(e.entry_id))
        out.leaf("Amt", e.amount.text(), Ccy=e.amount.currency)
        out.leaf("CdtDbtInd", e.direction)
        if e.reversal:
            out.leaf("RvslInd", "true")
        out.path("Sts/Cd" if out.v.revision_2019 else "Sts", "BOOK")
        out.path("BookgDt/DtTm", e.booked.isoformat(timespec="seconds"))
        out.path("ValDt/Dt", e.value_date.isoformat())
        if e.bank_ref:
            out.leaf("AcctSvcrRef", e.bank_ref[:35])
        with out.node("BkTxCd"), out.node("Domn"):
            out.leaf("Cd", "PMNT")
            with out.node("Fmly"):
                out.leaf("Cd", "ICDT" if issued else "RCDT")
                sub = "RRTN" if e.reversal else "OTHR" if them is None or them.bank is None else \
                    "BOOK" if them.bank.scheme == "INTERNAL" else "DMCT"
                out.leaf("SubFmlyCd", sub)
        with out.node("NtryDtls"), out.node("TxDtls"):
            e2e = e.end_to_end_id or e.client_ref
            if e2e:
                with out.node("Refs"):
                    if issued and e.client_ref and e.client_ref != e2e:   # the ERP's own id, ours to show
                        out.leaf("InstrId", e.client_ref)
                    out.leaf("EndToEndId", e2e)
            if out.v.revision_2019:
                out.leaf("Amt", e.amount.text(), Ccy=e.amount.currency)
                out.leaf("CdtDbtInd", e.direction)
            own = (facts.owner_name or None, facts.iban or facts.account)
            other = (them.name, them.account) if them is not None else (None, None)
            debtor, creditor = (own, other) if issued else (other, own)
            with out.node("RltdPties"):
                _party(out, "Dbtr", *debtor)
                _party(out, "Cdtr", *creditor)
            _counterparty_bank(out, "Cdtr" if issued else "Dbtr", them.bank if them else None, facts)
            if e.narrative:
                out.path("RmtInf/Ustrd", e.narrative[:140])


def _statement_id(st: Statement) -> str:
    cursor = st.next_cursor.lstrip("0") or "0"
    return f"{st.account[:34 - len(cursor)]}-{cursor}"   # Max35Text


def _message_id(st: Statement, v: Version) -> str:
    # Ledger entries never change once booked, so the account, the page's entry ids and its balances
    # identify the page; the time of writing does not go in (CreDtTm carries it).
    ids = (st.entries[0].entry_id, st.entries[-1].entry_id, len(st.entries)) if st.entries else ()
    return message_id("DLST", v.message, st.account, st.currency, st.opening.text(), st.opening_date,
                      st.closing.text(), st.closing_date, st.next_cursor, *ids)


def _page_time(st: Statement) -> dt.datetime:
    if st.entries:
        return max(e.booked for e in st.entries)
    return dt.datetime.combine(st.closing_date, dt.time(23, 59, 59), tzinfo=dt.timezone.utc)


def write(st: Statement, facts: AccountFacts, v: Version, created: dt.datetime | None = None) -> bytes:
    """A statement page as one camt document (UTF-8 bytes with an XML declaration)."""
    totals = _totals(st)
    # The gateway passes the time of the query; without it, the page's own last booking (or the end of its
    # closing day) keeps the same page the same document.
    created = created or facts.created or _page_time(st)
    stamp = created.isoformat(timespec="seconds")
    buf = io.BytesIO()
    with etree.xmlfile(buf, encoding="UTF-8") as xf:
        xf.write_declaration()
        out = _Out(xf, v)
        with xf.element(out.prefix + "Document", nsmap={None: v.ns}), out.node(v.root):
            with out.node("GrpHdr"):
                out.leaf("MsgId", _message_id(st, v))
                out.leaf("CreDtTm", stamp)
            with out.node(v.report):
                out.leaf("Id", _statement_id(st))
                out.leaf("CreDtTm", stamp)
                with out.node("Acct"):
                    _account_id(out, facts.iban or facts.account)
                    out.leaf("Ccy", facts.currency)
                    if facts.owner_name:
                        out.path("Ownr/Nm", facts.owner_name[:140])
                    with out.node("Svcr"):
                        _agent(out, bic=facts.bank_bic, name=facts.bank_name)
                _balance(out, "OPBD", st.opening, st.opening_date)
                _balance(out, v.closing, st.closing, st.closing_date)
                _summary(out, totals)
                for entry in st.entries:
                    _entry(out, entry, facts)
                more = "" if st.complete else "; more entries follow"
                out.leaf("AddtlStmtInf" if v.report == "Stmt" else "AddtlRptInf",
                         f"NextCursor {st.next_cursor or '(none)'}{more}")
    return buf.getvalue()


def writer(v: Version) -> Callable[[Statement, AccountFacts], bytes]:
    def write_statement(st: Statement, facts: AccountFacts) -> bytes:
        return write(st, facts, v)

    write_statement.__name__ = f"write_{v.message.replace('.', '_')}"
    write_statement.__doc__ = f"A statement page as {v.message} (pure: no I/O)."
    return write_statement
