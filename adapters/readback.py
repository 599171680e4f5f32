"""What the statement readers share: entries with running balances, pages joined into one statement, and the
check that a statement read from a file adds up.

Statement readers are the way back from a bank's file to the domain (for reconciliation and ERP-side tests;
the gateway itself never reads statements). Their input is a file from outside, so every fault is a
DocumentInvalid naming the place in the file, never a KeyError or ValueError.

Two kinds of fault are told apart. A file that is not what its format says (a broken line, a missing field)
is always refused. A file that is well formed but inconsistent (balances that do not add up, a page that
does not open where the one before closed, control totals that differ from the amounts) is refused too, by
default; read `leniently()` it is read anyway and each inconsistency is noted, so that reconciliation can
show it at the top of its report (`directlink reconcile --lenient`). A file of several accounts is read as
one statement per account (`accounts`); a caller that asked for one statement gets SeveralAccounts, which
carries them.
"""
from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from decimal import Decimal
from itertools import pairwise

from adapters.base import DocumentInvalid
from domain.errors import XmlRejected
from domain.models import Party, Statement, StatementEntry
from domain.money import Money, digits, iso_minor_units
from gateway.protocol import xmlsafe  # the one hardened parser (no DTD, entities or network)

MAX_STATEMENT_BYTES = 256 * 1024 * 1024    # a month of one busy account is tens of MB in any format

# The inconsistencies noted while reading leniently; None: refuse the first one. A context variable, not a
# parameter, because the reader contract is bytes -> Statement (adapters/base.py) and the checks sit deep
# in the shared helpers below, several calls away from the reader's entry point.
_NOTED: ContextVar[list[str] | None] = ContextVar("lenient_statement_notes", default=None)


class SeveralAccounts(DocumentInvalid):
    """The file holds statements of several accounts where one statement was asked for; `statements` has
    them, one per account in the order the file first names them (reconcile/ reads them all)."""

    def __init__(self, where: str, statements: Sequence[Statement]):
        names = ", ".join(f"{s.account} {s.currency}" for s in statements)
        super().__init__(where, f"the file reports several accounts ({names})")
        self.statements = tuple(statements)


def inconsistent(where: str, detail: str) -> None:
    """A well-formed file whose figures disagree: DocumentInvalid, or a note when read leniently."""
    noted = _NOTED.get()
    if noted is None:
        raise DocumentInvalid(where, detail)
    noted.append(f"{where}: {detail}" if where else detail)


@contextlib.contextmanager
def leniently() -> Iterator[list[str]]:
    """Read inside this block to have inconsistencies noted in the list it gives, instead of refused."""
    noted: list[str] = []
    token = _NOTED.set(noted)
    try:
        yield noted
    finally:
        _NOTED.reset(token)


@dataclass(frozen=True)
class Row:
    """One entry as a file says it, before the running balance is known."""

    where: str
    booked: dt.datetime
    value_date: dt.date
    direction: str                          # CRDT | DBIT
    amount: Decimal
    counterparty: Party | None
    bank_ref: str
    narrative: str
    client_ref: str | None = None
    end_to_end_id: str | None = None
    reversal: bool = False
    entry_id: int | None = None             # None: numbered in file order


def check_size(data: bytes, what: str) -> None:
    if len(data) > MAX_STATEMENT_BYTES:
        raise DocumentInvalid("/", f"{len(data)} bytes is more than a {what} statement may have "
                                   f"({MAX_STATEMENT_BYTES})")


def parsed_xml(data: bytes, what: str):
    """A statement document's root through the gateway's hardened parser (no DTD, entities or network),
    after the size check; DocumentInvalid naming the parser's refusal."""
    check_size(data, what)
    try:
        return xmlsafe.parse(data, MAX_STATEMENT_BYTES)
    except XmlRejected as err:
        raise DocumentInvalid("/", f"{err.code.value}: {err.detail}") from None


def check_currency(currency: str, where: str) -> str:
    """Any current ISO 4217 currency (domain.money.iso_minor_units): a statement from another bank may be
    kept in CHF or SEK although the gateway books none of them (reading it books nothing)."""
    if currency not in iso_minor_units():
        raise DocumentInvalid(where, f"currency {currency!r} is not an ISO 4217 currency")
    return currency


def money(value: Decimal, currency: str, where: str) -> Money:
    """An amount with exactly the currency's decimals (more decimals than the currency has is a fault)."""
    exponent = Decimal(1).scaleb(-digits(currency))
    quantized = value.quantize(exponent)
    if quantized != value:
        raise DocumentInvalid(where, f"amount {value} has more decimals than {currency} has")
    return Money(quantized, currency)


def build(account: str, currency: str, opening: Decimal, opening_date: dt.date, closing: Decimal | None,
          closing_date: dt.date, rows: Sequence[Row], *, where: str, first_id: int = 1,
          next_cursor: str = "", complete: bool = True) -> Statement:
    """A Statement from rows: running balances from the opening; the closing, if the file states one, must
    be what opening + entries give (a file that does not add up is refused, not half-believed; read
    leniently, the stated closing is kept and the difference noted)."""
    balance = opening
    entries = []
    for i, row in enumerate(rows):
        if row.direction not in ("CRDT", "DBIT") or row.amount <= 0:
            raise DocumentInvalid(row.where, f"{row.direction} {row.amount} is not a booking")
        amount = money(row.amount, currency, row.where)
        balance += amount.amount if row.direction == "CRDT" else -amount.amount
        entries.append(StatementEntry(
            entry_id=row.entry_id if row.entry_id is not None else first_id + i, booked=row.booked,
            value_date=row.value_date, direction=row.direction, amount=amount,
            balance_after=Money(balance, currency), counterparty=row.counterparty, bank_ref=row.bank_ref,
            narrative=row.narrative, client_ref=row.client_ref, end_to_end_id=row.end_to_end_id,
            reversal=row.reversal))
    if closing is not None and closing != balance:
        inconsistent(where, f"does not add up: opening {opening} + entries = {balance}, "
                            f"but the closing balance says {closing}")
    return Statement(account, currency, money(opening, currency, where), opening_date,
                     money(balance if closing is None else closing, currency, where), closing_date,
                     tuple(entries), next_cursor, complete)


def decoded(data: bytes, encoding: str, why: str) -> str:
    """A statement file's text; DocumentInvalid naming the first byte that is not `encoding`."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DocumentInvalid(f"byte {exc.start}", why) from None


def accounts(pages: Sequence[Statement], where: str = "/") -> list[Statement]:
    """Pages of one or several accounts (a file of several messages, or several files) as one statement per
    account (and currency), in the order the accounts first appear; each account's pages are joined."""
    if not pages:
        raise DocumentInvalid(where, "no statement in the file")
    by_account: dict[tuple[str, str], list[Statement]] = {}
    for page in pages:
        by_account.setdefault((page.account, page.currency), []).append(page)
    return [_join_one(group, where) for group in by_account.values()]


def join(pages: Sequence[Statement], where: str = "/") -> Statement:
    """Pages as one statement (see _join_one); SeveralAccounts if they are of several accounts."""
    statements = accounts(pages, where)
    if len(statements) > 1:
        raise SeveralAccounts(where or "/", statements)
    return statements[0]


def _join_one(pages: Sequence[Statement], where: str) -> Statement:
    """Consecutive pages of one account as one statement.

    Each page must open where the previous one closed: a gap means a missing page, and reconciling without
    it would report its entries as never booked (read leniently: noted, and the pages joined as they are).

    Entries keep their EntryIds when those rise across the pages (the gateway's own statements); otherwise
    (other banks' pages, each numbered from 1 in file order) all entries are numbered 1, 2, ... in order,
    so that no two entries of the joined statement share an EntryId."""
    first = pages[0]
    entries = list(first.entries)
    last = first
    for n, page in enumerate(pages[1:], start=2):
        if page.opening != last.closing:
            inconsistent(f"{where}statement {n} of account {first.account}",
                         f"opens with {page.opening.amount} but the statement before closed with "
                         f"{last.closing.amount}: a page is missing")
        entries += page.entries
        last = page
    ids = [e.entry_id for e in entries]
    if any(b <= a for a, b in pairwise(ids)):
        entries = [replace(e, entry_id=n) for n, e in enumerate(entries, start=1)]
    return replace(first, closing=last.closing, closing_date=last.closing_date, entries=tuple(entries),
                   next_cursor=last.next_cursor, complete=last.complete)


def day_start(day: dt.date) -> dt.datetime:
    """A booking instant for formats that only give the booking day: its midnight, UTC."""
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
