"""camt.053 (end-of-day statement) and camt.052 (intraday account report) writers.

One Stmt (Rpt) per page of the gateway's statement: Id = account + cursor, so the same page has the same
Id and an importer can tell a page it has seen already; balances OPBD and CLBD (camt.052:
OPBD and ITBD, the day is not closed); TxsSummry; one Ntry per entry with NtryRef = EntryId and
AcctSvcrRef = BankRef, and one TxDtls carrying EndToEndId, both parties and the narrative. Parties keep
their roles of the original payment in a reversal, as ISO's RvslInd asks.

The document is written one entry at a time, and `stream` hands it over in byte chunks as it goes: memory
stays flat and the work is linear in the entries (bench/statement_render.py writes 100,000 entries at once).
Booking times are written as instants with their offset (UTC): AccountFacts does not carry the bank's zone.
GrpHdr/MsgId is derived from the page, so the same page is the same message; CreDtTm is the time of
writing, the one thing that differs between two renderings, because the writer contract carries no
creation time (a StatusReport does, and pain.002 is fully deterministic).
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache

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


# ---- markup ---------------------------------------------------------------------------------------------
# The document is written as text, element by element: lxml's incremental writer costs about a microsecond
# per element in Python calls, and an entry has fifty. Every text value goes through _esc; the parts that
# repeat from entry to entry (our own party, a bank's agent, the transaction codes) are written once.

_SPECIAL = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _esc(text: str) -> str:
    """Character data as XML text; ValueError for characters XML 1.0 cannot carry at all."""
    if not _SPECIAL.search(text):
        return text
    if _ILLEGAL.search(text):
        raise ValueError(f"{text[:40]!r} holds characters that XML cannot carry")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _el(name: str, content: str) -> str:
    """An element around content that is markup already."""
    return f"<{name}>{content}</{name}>"


def _leaf(name: str, text: str) -> str:
    return f"<{name}>{_esc(text)}</{name}>"


def _amount(name: str, amount: str, currency: str) -> str:
    return f'<{name} Ccy="{_esc(currency)}">{_esc(amount)}</{name}>'


@cache
def _tags(names: str) -> tuple[str, str]:
    parts = names.split("/")
    return "".join(f"<{n}>" for n in parts), "".join(f"</{n}>" for n in reversed(parts))


def _path(names: str, text: str) -> str:
    """'Id/Othr/Id' -> nested elements around one text."""
    opening, closing = _tags(names)
    return f"{opening}{_esc(text)}{closing}"


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


def _account_id(number: str) -> str:
    return _path("Id/IBAN" if is_iban(number) else "Id/Othr/Id", number)


@lru_cache(maxsize=4096)
def _agent(v: Version, bic: str | None = None, member: str | None = None, name: str | None = None) -> str:
    """FinInstnId with a BIC (where the version accepts it), a CNAPS member id and/or a name."""
    if bic and not v.revision_2019 and not BIC_2009.fullmatch(bic):
        bic = None
    parts = []
    if bic:
        parts.append(_leaf("BICFI" if v.revision_2019 else "BIC", bic))
    if member:
        parts.append(_el("ClrSysMmbId", _path("ClrSysId/Cd", "CNAPS") + _leaf("MmbId", member)))
    if name:
        parts.append(_leaf("Nm", name[:140]))
    return _el("FinInstnId", "".join(parts))


def _balance(code: str, money: Money, day: dt.date) -> str:
    amount, indicator = _signed(money.amount)
    return _el("Bal", _path("Tp/CdOrPrtry/Cd", code) + _amount("Amt", amount, money.currency)
               + _leaf("CdtDbtInd", indicator) + _path("Dt/Dt", day.isoformat()))


def _summary(v: Version, totals: _Totals) -> str:
    net, indicator = _signed(totals.credit_sum - totals.debit_sum)
    net_entry = (_el("TtlNetNtry", _leaf("Amt", net) + _leaf("CdtDbtInd", indicator)) if v.revision_2019
                 else _leaf("TtlNetNtryAmt", net) + _leaf("CdtDbtInd", indicator))
    parts = [_el("TtlNtries", _leaf("NbOfNtries", str(totals.credits + totals.debits))
                 + _leaf("Sum", format(totals.credit_sum + totals.debit_sum, "f")) + net_entry)]
    for name, count, total in (("TtlCdtNtries", totals.credits, totals.credit_sum),
                               ("TtlDbtNtries", totals.debits, totals.debit_sum)):
        parts.append(_el(name, _leaf("NbOfNtries", str(count)) + _leaf("Sum", format(total, "f"))))
    return _el("TxsSummry", "".join(parts))


@lru_cache(maxsize=4096)
def _party(v: Version, role: str, name: str | None, account: str | None) -> str:
    parts = []
    if name:   # .08 parties are a choice of party or agent
        parts.append(_el(role, _path("Pty/Nm", name[:140]) if v.revision_2019 else _leaf("Nm", name[:140])))
    if account:
        parts.append(_el(role + "Acct", _account_id(account)))
    return "".join(parts)


@lru_cache(maxsize=4096)
def _counterparty_bank(v: Version, role: str, bank: BankCode | None, facts: AccountFacts) -> str:
    if bank is None:
        return ""
    if bank.scheme == "BIC":
        agent = _agent(v, bic=bank.code)
    elif bank.scheme == "CNAPS":
        agent = _agent(v, member=bank.code)
    else:   # INTERNAL: an account of this bank
        agent = _agent(v, bic=facts.bank_bic, name=facts.bank_name)
    return _el("RltdAgts", _el(role + "Agt", agent))


@cache
def _bank_transaction_code(issued: bool, sub: str) -> str:
    return _el("BkTxCd", _el("Domn", _leaf("Cd", "PMNT") + _el("Fmly", _leaf("Cd", "ICDT" if issued else "RCDT")
                                                                + _leaf("SubFmlyCd", sub))))


def _entry(v: Version, e: StatementEntry, facts: AccountFacts) -> str:
    # The original payment's direction: a reversal is booked against it (RvslInd true).
    issued = (e.direction == "DBIT") != e.reversal
    them: Party | None = e.counterparty
    amount = _amount("Amt", e.amount.text(), e.amount.currency)
    parts = [_leaf("NtryRef", str(e.entry_id)), amount, _leaf("CdtDbtInd", e.direction)]
    if e.reversal:
        parts.append("<RvslInd>true</RvslInd>")
    parts.append("<Sts><Cd>BOOK</Cd></Sts>" if v.revision_2019 else "<Sts>BOOK</Sts>")
    parts.append(_path("BookgDt/DtTm", e.booked.isoformat(timespec="seconds")))
    parts.append(_path("ValDt/Dt", e.value_date.isoformat()))
    if e.bank_ref:
        parts.append(_leaf("AcctSvcrRef", e.bank_ref[:35]))
    sub = "RRTN" if e.reversal else "OTHR" if them is None or them.bank is None else \
        "BOOK" if them.bank.scheme == "INTERNAL" else "DMCT"
    parts.append(_bank_transaction_code(issued, sub))
    details = []
    e2e = e.end_to_end_id or e.client_ref
    if e2e:
        instruction = ""
        if issued and e.client_ref and e.client_ref != e2e:   # the ERP's own id, ours to show
            instruction = _leaf("InstrId", e.client_ref)
        details.append(_el("Refs", instruction + _leaf("EndToEndId", e2e)))
    if v.revision_2019:
        details.append(amount + _leaf("CdtDbtInd", e.direction))
    own = (facts.owner_name or None, facts.iban or facts.account)
    other = (them.name, them.account) if them is not None else (None, None)
    debtor, creditor = (own, other) if issued else (other, own)
    details.append(_el("RltdPties", _party(v, "Dbtr", *debtor) + _party(v, "Cdtr", *creditor)))
    details.append(_counterparty_bank(v, "Cdtr" if issued else "Dbtr", them.bank if them else None, facts))
    if e.narrative:
        details.append(_path("RmtInf/Ustrd", e.narrative[:140]))
    parts.append(_el("NtryDtls", _el("TxDtls", "".join(details))))
    return _el("Ntry", "".join(parts))


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
    return dt.datetime.combine(st.closing_date, dt.time(23, 59, 59), tzinfo=dt.UTC)


ENTRIES_PER_CHUNK = 256    # about 250 KB of XML: large enough for cheap writes, small enough to stay flat
DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n"


def stream(st: Statement, facts: AccountFacts, v: Version, created: dt.datetime | None = None) -> Iterator[bytes]:
    """A statement page as one camt document, as UTF-8 byte chunks (the first carries the XML declaration).

    A statement that does not add up raises before the first chunk: no file is better than a wrong one."""
    totals = _totals(st)
    # The gateway passes the time of the query; without it, the page's own last booking (or the end of its
    # closing day) keeps the same page the same document.
    created = created or facts.created or _page_time(st)
    stamp = created.isoformat(timespec="seconds")
    owner = _path("Ownr/Nm", facts.owner_name[:140]) if facts.owner_name else ""
    account = _el("Acct", _account_id(facts.iban or facts.account) + _leaf("Ccy", facts.currency) + owner
                  + _el("Svcr", _agent(v, bic=facts.bank_bic, name=facts.bank_name)))
    yield (f'{DECLARATION}<Document xmlns="{v.ns}"><{v.root}>'
           + _el("GrpHdr", _leaf("MsgId", _message_id(st, v)) + _leaf("CreDtTm", stamp))
           + f"<{v.report}>" + _leaf("Id", _statement_id(st)) + _leaf("CreDtTm", stamp) + account
           + _balance("OPBD", st.opening, st.opening_date) + _balance(v.closing, st.closing, st.closing_date)
           + _summary(v, totals)).encode("utf-8")
    for start in range(0, len(st.entries), ENTRIES_PER_CHUNK):
        chunk = st.entries[start:start + ENTRIES_PER_CHUNK]
        yield "".join(_entry(v, e, facts) for e in chunk).encode("utf-8")
    more = "" if st.complete else "; more entries follow"
    tail = _leaf("AddtlStmtInf" if v.report == "Stmt" else "AddtlRptInf",
                 f"NextCursor {st.next_cursor or '(none)'}{more}")
    yield f"{tail}</{v.report}></{v.root}></Document>".encode()


def write(st: Statement, facts: AccountFacts, v: Version, created: dt.datetime | None = None) -> bytes:
    """A statement page as one camt document (UTF-8 bytes with an XML declaration)."""
    return b"".join(stream(st, facts, v, created))


def writer(v: Version) -> Callable[[Statement, AccountFacts], bytes]:
    def write_statement(st: Statement, facts: AccountFacts) -> bytes:
        return write(st, facts, v)

    write_statement.__name__ = f"write_{v.message.replace('.', '_')}"
    write_statement.__doc__ = f"A statement page as {v.message} (pure: no I/O)."
    return write_statement
