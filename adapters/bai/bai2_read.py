"""Reading BAI2 files back into the domain (for reconciliation): ours, and other banks' files of one or more
groups (02) and accounts (03).

Records are joined with their 88 continuations the way adapters/bai/__init__.py describes (a line ending
in "/" continues with the next field, any other line continues the text of a 16 record after a blank).
Each group (02, one per booking day in our files) gives one page: its as-of date is the value date and
booking day of its entries, 010 is its opening and 015 its closing ledger balance; each account's pages
are joined into one statement (a file of several accounts gives one per account, adapters/readback.py).
Control totals are checked: an account trailer (49) must hold the sum of every amount above it, a group
trailer (98) the sum of its accounts', the file trailer (99) the sum of its groups', as the format says;
a file that fails that is refused, not half-believed (read leniently: noted).

What comes back from our writer: amounts, directions (type codes 100-399 and 900-959 are credits, 400-699
and 960-999 debits; 252 and 552 are reversals), balances, BankRef, ClientRef, and from the labelled
text the narrative, the counterparty's name (folded to ASCII) and account ("CPTY ", "ACCT ") and the
EndToEndId ("EREF "). BAI2 carries no bank codes of counterparties and no booking times.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from adapters.base import DocumentInvalid
from adapters.readback import Row, build, check_currency, check_size, day_start, decoded, inconsistent, join
from domain.models import Party, Statement
from domain.money import Money

_REVERSALS = {"252", "552"}
_LABELLED = re.compile(r"^(?P<narrative>.*?)(?:(?:^|; )CPTY (?P<name>.*?))?(?:(?:^|; )ACCT (?P<account>[^;]*?))?"
                       r"(?:(?:^|; )EREF (?P<e2e>[^;]*))?$")


def _records(text: str) -> Iterator[tuple[int, str, str]]:
    """(line number, record code, logical record without the trailing "/") with 88 lines joined in."""
    code, body, start, open_field = None, "", 0, False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line:
            continue
        head = line[:2]
        if head == "88":
            if code is None:
                raise DocumentInvalid(f"line {number}", "a continuation (88) before any record")
            rest = line[3:] if line.startswith("88,") else line[2:]
            body += ("," + rest) if open_field else (" " + rest)
        else:
            if code is not None:
                yield start, code, body
            code, body, start = head, line[3:] if line[2:3] == "," else line[2:], number
        open_field = body.endswith("/")
        body = body.removesuffix("/")
    if code is not None:
        yield start, code, body


def _int(text: str, where: str, what: str) -> int:
    text = text.strip()
    if not re.fullmatch(r"[+-]?[0-9]{1,18}", text):
        raise DocumentInvalid(where, f"{what} {text!r} is not a whole number")
    return int(text)


def _date(text: str, where: str) -> dt.date:
    try:
        return dt.datetime.strptime(text.strip(), "%y%m%d").date()
    except ValueError:
        raise DocumentInvalid(where, f"{text!r} is not a date YYMMDD") from None


def _skip_funds(fields: list[str], i: int, where: str) -> int:
    """The index after a funds type and its details (0/1/2/Z: none; V: date, time; S: three; D: n pairs)."""
    kind = fields[i].strip() if i < len(fields) else ""
    i += 1
    if kind == "V":
        return i + 2
    if kind == "S":
        return i + 3
    if kind == "D":
        return i + 1 + 2 * _int(fields[i] if i < len(fields) else "", where, "distribution count")
    return i


def _summaries(fields: list[str], where: str) -> tuple[dict[str, int], int]:
    """type code -> amount of an 03 record's summaries, and their algebraic sum (for the control total)."""
    found, total, i = {}, 0, 2
    while i < len(fields):
        code = fields[i].strip()
        amount = fields[i + 1].strip() if i + 1 < len(fields) else ""
        value = _int(amount, where, f"amount of {code}") if amount else 0
        if code:
            found.setdefault(code, value)
        total += value
        i = _skip_funds(fields, i + 3, where)      # after the item count
    return found, total


def _credit(type_code: str, where: str) -> bool:
    number = _int(type_code, where, "type code")
    if 100 <= number <= 399 or 900 <= number <= 959:
        return True
    if 400 <= number <= 699 or 960 <= number <= 999:
        return False
    raise DocumentInvalid(where, f"type code {type_code} is not a credit or debit detail")


def _labelled(text: str) -> tuple[str, Party | None, str | None]:
    """(narrative, counterparty, EndToEndId) from our labelled text, or the whole text as narrative."""
    match = _LABELLED.match(text)
    narrative, name, account, e2e = match.group("narrative", "name", "account", "e2e")
    party = Party(name or "", account or None, None) if (name or account) else None
    return narrative, party, e2e or None


class _Page:
    def __init__(self, account: str, currency: str, day: dt.date, summaries: dict[str, int], where: str):
        self.account, self.currency, self.day, self.summaries, self.where = account, currency, day, summaries, where
        self.rows: list[Row] = []
        self.total = 0

    def statement(self) -> Statement:
        digits = Money.from_minor(0, self.currency).amount
        opening = self.summaries.get("010")
        closing = self.summaries.get("015")
        net = sum((r.amount if r.direction == "CRDT" else -r.amount for r in self.rows), digits)
        opening_amount = (Money.from_minor(opening, self.currency).amount if opening is not None else
                          Money.from_minor(closing, self.currency).amount - net if closing is not None else digits)
        closing_amount = None if closing is None else Money.from_minor(closing, self.currency).amount
        return build(self.account, self.currency, opening_amount, self.day, closing_amount, self.day, self.rows,
                     where=self.where)


def _detail(fields: list[str], page: _Page, where: str, entry_id: int | None) -> Row:
    type_code, amount = fields[0].strip(), _int(fields[1], where, "amount")
    if amount <= 0:
        raise DocumentInvalid(where, f"amount {amount} is not a booking")
    i = _skip_funds(fields, 2, where)
    bank_ref = fields[i].strip() if i < len(fields) else ""
    client_ref = fields[i + 1].strip() if i + 1 < len(fields) else ""
    text = ",".join(fields[i + 2:]).strip() if i + 2 < len(fields) else ""
    narrative, party, e2e = _labelled(text)
    page.total += amount
    return Row(where, day_start(page.day), page.day, "CRDT" if _credit(type_code, where) else "DBIT",
               Money.from_minor(amount, page.currency).amount, party, bank_ref, narrative, client_ref or None, e2e,
               reversal=type_code in _REVERSALS, entry_id=entry_id)


def read_bai2(data: bytes) -> Statement:
    """A BAI2 file as one Statement (SeveralAccounts: one per account); DocumentInvalid if it is not one."""
    check_size(data, "BAI2")
    text = decoded(data, "ascii", "BAI2 is ASCII")
    pages: list[_Page] = []
    page: _Page | None = None
    group_currency, day, first_id, count = "USD", None, None, 0
    seen_file = ended = False
    group_total = file_total = 0
    for number, code, body in _records(text):
        where = f"line {number}"
        fields = body.split(",")
        if code == "01":
            seen_file = True
            file_id = fields[4].strip() if len(fields) > 4 else ""
            first_id = int(file_id) if file_id.isascii() and file_id.isdigit() and int(file_id) > 0 else None
        elif code == "02":
            if len(fields) < 4:
                raise DocumentInvalid(where, "a group header (02) needs an as-of date")
            day = _date(fields[3], where)
            group_currency = (fields[5].strip() if len(fields) > 5 else "") or "USD"
        elif code == "03":
            if day is None:
                raise DocumentInvalid(where, "an account (03) outside a group (02)")
            summaries, total = _summaries(fields, where)
            currency = check_currency(fields[1].strip() if len(fields) > 1 and fields[1].strip() else group_currency,
                                      where)
            page = _Page(fields[0].strip(), currency, day, summaries, where)
            page.total = total
            pages.append(page)
        elif code == "16":
            if page is None:
                raise DocumentInvalid(where, "a transaction (16) outside an account (03)")
            if len(fields) < 2:
                raise DocumentInvalid(where, "a transaction (16) needs a type code and an amount")
            entry_id = first_id + count if first_id else None
            page.rows.append(_detail(fields, page, where, entry_id))
            count += 1
        elif code == "49":
            if page is None:
                raise DocumentInvalid(where, "an account trailer (49) outside an account")
            stated = _int(fields[0], where, "control total")
            if stated != page.total:
                inconsistent(where, f"account control total {stated} differs from the sum of the "
                                    f"account's amounts {page.total}")
            group_total += stated            # a higher trailer sums the trailers below it
            page = None
        elif code in ("98", "99"):
            # Group and file control totals: the sums of the totals below them.
            stated = _int(fields[0], where, "control total")
            total = group_total if code == "98" else file_total
            if stated != total:
                inconsistent(where, f"control total {stated} differs from the sum below it {total}")
            if code == "98":
                file_total, group_total = file_total + stated, 0
            ended = code == "99"
        else:
            raise DocumentInvalid(where, f"unknown record code {code!r}")
    if not seen_file or not pages:
        raise DocumentInvalid("line 1", "not a BAI2 file (01 ... 03 ... 99)")
    if not ended:
        raise DocumentInvalid("end of file", "no file trailer (99): the file is cut short")
    if page is not None:
        raise DocumentInvalid(page.where, "the account has no trailer (49): the file is cut short")
    return join([p.statement() for p in pages], where="")
