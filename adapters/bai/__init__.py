"""BAI2 (BAI Cash Management Balance Reporting, version 2) statements, as US treasury systems and Oracle
Cash Management import them.

Layout of one file (one StatementQuery answer):
  01 file header: sender = bank BIC, receiver = account number, creation date/time = the page's last
     booking day and 0000 (the adapter is pure and reads no clock; the file is identified by its file
     id), file id = the page's first EntryId (0 for a page without entries), record length 80, version 2
  02 group header per BOOKING DAY: receiver = account, originator = bank BIC, status 1 (update), as-of
     date = that day, currency. BAI2 has no per-transaction posting date, so a page whose entries span
     several days carries one group per day, each with that day's balances (a page without entries is
     one group as of its closing date).
  03 account: account, currency, 010 opening ledger, 015 closing ledger (signed, no item count or
     funds type, as for all status codes), 100 total credits and 400 total debits (amount, item count,
     funds type Z)
  16 one per entry: type code, amount, funds type Z, bank reference (BankRef), customer reference
     (ClientRef), text. Funds type Z takes no further fields: nothing is written between Z and the bank
     reference (the bai2 library's own writer adds an empty field there, which shifts every reference).
  49 account trailer, 98 group trailer, 99 file trailer: control totals and record counts. The account
     control total is the algebraic sum of every amount in its 03 and 16 records; the group and file
     totals are the sums of the totals below them. Counts include the header, trailer and 88 records.

Type codes: 195 incoming / 495 outgoing money transfer (entries with a counterparty account), 399 / 699
miscellaneous credit / debit (no counterparty account, e.g. the opening booking), 252 debit reversal
(a returned payment crediting the money back) / 552 credit reversal (a reversal taking money out).

Amounts are integers in the currency's minor units (BAI2's implied decimals: 2 for CNY and USD, 0 for
JPY); only the balances may be negative. No field is ever left blank where the format expects a number
(blank totals are what trips readers up): counts and totals are written even when 0.

Physical records: at most 80 characters, not padded (CRLF line ends). Every record ends with "/", except
a 16 record whose last field, the text, runs to the end: BAI2 forbids the delimiter there. A record that
does not fit continues on 88 records: a break between fields ends the line with "/" and the 88 starts
with the next field (03 records break only between whole summaries); a break inside the text falls on a
blank, which readers put back when they join an unterminated line to its 88. Characters: printable ASCII;
Chinese is spelled in pinyin and other characters replaced as described in adapters/swift/common.py; "," and "/" never
appear in references, "/" never in text.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator

from adapters.bai.bai2_read import read_bai2
from adapters.base import AccountFacts, Adapter
from adapters.swift import common
from domain.models import Statement, StatementEntry

FORMAT = "bai2"
WIDTH = 80
_REF_CHARS = common.PRINTABLE_ASCII - {",", "/"}
_TEXT_CHARS = common.PRINTABLE_ASCII - {"/"}


def record(code: str, groups: list[list[str]], text: str | None = None) -> list[str]:
    """One logical record as physical lines of at most WIDTH characters.

    `groups` are runs of fields that stay on one line (a summary of an 03 record); `text`, if given, is
    the free-text last field of a 16 record."""
    lines: list[str] = []
    line = code
    for group in groups:
        piece = ",".join(group)
        if len(line) + 1 + len(piece) + 1 > WIDTH and line not in (code, "88"):
            lines.append(line + "/")
            line = "88"
        line += "," + piece
    if text is None:
        return [*lines, line + "/"]
    words = list(_words(text, WIDTH - len("88,")))
    if not words:
        return [*lines, line + "/"]        # no text: the record simply ends after the references
    separator = ","
    for word in words:
        if len(line) + 1 + len(word) <= WIDTH:
            line += separator + word
        elif separator == ",":             # no room for the text to start here: end the fields, text on 88
            lines.append(line + "/")
            line = "88," + word
        else:                              # the text goes on; no "/" in mid-text
            lines.append(line)
            line = "88," + word
        separator = " "
    return [*lines, line]


def _words(text: str, longest: int) -> Iterator[str]:
    for word in text.split():
        while len(word) > longest:         # only a word longer than a line is cut without a blank
            yield word[:longest]
            word = word[longest:]
        yield word


def _reference(value: str | None) -> str:
    return common.fold(value, _REF_CHARS)


def type_code(entry: StatementEntry) -> str:
    credit = entry.direction == "CRDT"
    if entry.reversal:
        return "252" if credit else "552"
    if entry.counterparty is not None and entry.counterparty.account:
        return "195" if credit else "495"
    return "399" if credit else "699"


def entry_text(entry: StatementEntry) -> str:
    """Narrative, counterparty and EndToEndId, labelled so that reconciliation rules can find them."""
    party = entry.counterparty
    labelled = [("", entry.narrative), ("CPTY ", party and party.name), ("ACCT ", party and party.account),
                ("EREF ", entry.end_to_end_id)]
    parts = [label + text for label, value in labelled if (text := common.fold(value, _TEXT_CHARS))]
    # BAI2: a comma may not begin the text field.
    return "; ".join(parts).lstrip(", ")


def _account(statement: Statement, opening: int, entries: list[StatementEntry]) -> tuple[list[str], int, int]:
    """The 03/16/88/49 records of one day: (lines, control total, closing balance)."""
    currency = statement.currency
    amounts = [common.minor(e.amount, currency) for e in entries]
    credits = [a for a, e in zip(amounts, entries) if e.direction == "CRDT"]
    debits = [a for a, e in zip(amounts, entries) if e.direction == "DBIT"]
    closing = opening + sum(common.signed_minor(e, currency) for e in entries)
    summaries = [["010", str(opening), "", ""], ["015", str(closing), "", ""],
                 ["100", str(sum(credits)), str(len(credits)), "Z"],
                 ["400", str(sum(debits)), str(len(debits)), "Z"]]
    lines = record("03", [[common.fold(statement.account, _REF_CHARS), currency], *summaries])
    for entry, amount in zip(entries, amounts):
        lines += record("16", [[type_code(entry), str(amount), "Z"], [_reference(entry.bank_ref)],
                               [_reference(entry.client_ref)]], entry_text(entry))
    total = opening + closing + sum(credits) + sum(debits) + sum(amounts)
    lines += record("49", [[str(total), str(len(lines) + 1)]])
    return lines, total, closing


def _days(statement: Statement) -> list[tuple]:
    """(as-of date, that day's entries) per booking day, in entry order; one empty day for no entries."""
    if not statement.entries:
        return [(statement.closing_date, [])]
    return [(day, list(group)) for day, group in itertools.groupby(statement.entries, key=common.booking_day)]


def write_bai2(statement: Statement, facts: AccountFacts) -> bytes:
    """One statement page as a BAI2 file (see the module docstring for every choice)."""
    opening, closing = common.checked_balances(statement)
    account = common.fold(statement.account, _REF_CHARS)
    sender = common.fold(facts.bank_bic, _REF_CHARS)
    days = _days(statement)
    groups, file_total, balance = [], 0, opening
    for day, entries in days:
        header = record("02", [[account], [sender], ["1"], [f"{day:%y%m%d}"], [""], [statement.currency], [""]])
        body, total, balance = _account(statement, balance, entries)
        trailer = record("98", [[str(total), "1", str(len(header) + len(body) + 1)]])
        groups += header + body + trailer
        file_total += total
    if balance != closing:                 # days were cut out of the same entries: cannot differ
        raise AssertionError("BAI2 day groups do not end at the statement's closing balance")
    last_day = days[-1][0]
    header = record("01", [[sender], [account], [f"{last_day:%y%m%d}"], ["0000"],
                           [str(common.statement_key(statement))], [str(WIDTH)], [""], ["2"]])
    trailer = record("99", [[str(file_total), str(len(days)), str(len(header) + len(groups) + 1)]])
    return ("\r\n".join([*header, *groups, *trailer]) + "\r\n").encode("ascii")


ADAPTER = Adapter(
    name="bai",
    description="BAI2 balance and transaction reports for US treasury systems and Oracle Cash Management",
    statement_writers={FORMAT: write_bai2},
    statement_readers={FORMAT: read_bai2},
    text_formats=frozenset({FORMAT}),
)

# The kit's hook: the statement writer's output must read back balanced (docs/adapters.md section 4).
STATEMENT_READERS = ADAPTER.statement_readers
