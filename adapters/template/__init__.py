"""Template adapter: copy this package to start a new ERP adapter (walk-through: docs/adapters.md).

It reads a CSV payment file (`template.csv`) and writes a CSV statement (`template.statement.csv`).
Everything here is a pure function over bytes and domain objects: no I/O, no database, no HTTP.

template.csv, UTF-8 (an Excel byte-order mark is tolerated), RFC 4180 quoting:

    batch_id,TPL-20261125-001                         <- line 1: the file's id, becomes the BatchId
    client_ref,debtor_account,amount,currency,...     <- line 2: exactly COLUMNS, in this order
    P-1,6222000000000001,12500.00,CNY,供应商甲,...      <- one payment per line

Errors, the one rule to get right:
  * DocumentInvalid(where, detail): the FILE is wrong (cannot be decoded, wrong header, a row with the
    wrong number of cells, a bad date, a repeated reference). The gateway refuses the whole file.
  * PaymentRejected(reason, detail): ONE PAYMENT is wrong (bad account, amount, bank code). Return it in
    SubmittedPayment.problem; the other payments of the file go on. build_instruction raises these for you.
  * Anything else (KeyError, ValueError...) is a bug: the ERP gets INTERNAL. The kit feeds garbage to
    every reader to catch them.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

from adapters import spreadsheet
from adapters.base import (
    AccountFacts,
    Adapter,
    DocumentInvalid,
    Limits,
    PaymentFile,
    check_unique_references,
)
from domain.errors import PaymentRejected
from domain.models import BankCode, Party, Statement, StatementEntry, SubmittedPayment, build_instruction
from domain.money import Money

COLUMNS = ("client_ref", "end_to_end_id", "debtor_account", "amount", "currency", "creditor_name", "creditor_account",
           "bank_scheme", "bank_code", "bank_name", "purpose", "remark", "requested_date", "urgency")
OPTIONAL = {"end_to_end_id", "bank_code", "bank_name", "remark", "requested_date", "urgency"}  # may be empty
MAX_ROWS = 1000


# ---- reading payments ------------------------------------------------------------------------------------

def _rows(data: bytes) -> list[list[str]]:
    """The file's lines as cells. Decoding and CSV syntax are file-level faults."""
    try:
        text = data.decode("utf-8-sig")            # -sig: drops the BOM Excel writes, harmless otherwise
        return list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except UnicodeDecodeError as exc:
        raise DocumentInvalid("file", f"not UTF-8 at byte {exc.start}") from None
    except csv.Error as exc:                        # an unclosed quote, a NUL byte...
        raise DocumentInvalid("file", f"not CSV: {exc}") from None


def _reference(value: str, where: str) -> str:
    # The reference is the payment's idempotency key: a file without usable keys is refused as a whole.
    if not 1 <= len(value) <= 35 or value != value.strip():
        raise DocumentInvalid(where, f"{value!r} must be 1-35 characters without blanks at the ends")
    return value


def _date(value: str, where: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise DocumentInvalid(where, f"{value!r} is not a date (YYYY-MM-DD)") from None


def _transaction(cells: dict[str, str], where: str) -> SubmittedPayment:
    for column in COLUMNS:
        if not cells[column] and column not in OPTIONAL:     # a missing field is the file's fault
            raise DocumentInvalid(f"{where}/{column}", "is empty")
    ref = _reference(cells["client_ref"], f"{where}/client_ref")
    if cells["urgency"] not in ("", "NORMAL", "URGENT"):
        raise DocumentInvalid(f"{where}/urgency", f"{cells['urgency']!r} is not NORMAL or URGENT")
    try:
        instruction = build_instruction(
            client_ref=ref, end_to_end_id=_reference(cells["end_to_end_id"], f"{where}/end_to_end_id")
            if cells["end_to_end_id"] else None, debtor_account=cells["debtor_account"], amount=cells["amount"],
            currency=cells["currency"], creditor_name=cells["creditor_name"],
            creditor_account=cells["creditor_account"], bank_scheme=cells["bank_scheme"],
            bank_code=cells["bank_code"], bank_name=cells["bank_name"] or None, purpose=cells["purpose"],
            remark=cells["remark"] or None, requested_date=_date(cells["requested_date"], f"{where}/requested_date"),
            urgency=cells["urgency"] or "NORMAL")
    except PaymentRejected as problem:               # this payment only; its siblings go on
        return SubmittedPayment(ref, None, problem, where=where)
    return SubmittedPayment(ref, instruction, where=where)


def read_payments(data: bytes) -> PaymentFile:
    """template.csv -> PaymentFile."""
    rows = _rows(data)
    if len(rows) < 2 or len(rows[0]) != 2 or rows[0][0] != "batch_id":
        raise DocumentInvalid("line 1", "must be: batch_id,<the file's id>")
    if tuple(rows[1]) != COLUMNS:
        raise DocumentInvalid("line 2", "must be the header: " + ",".join(COLUMNS))
    if len(rows) - 2 > MAX_ROWS:                     # refuse before doing any work
        raise DocumentInvalid("file", f"{len(rows) - 2} payments; at most {MAX_ROWS}")
    transactions = []
    for number, row in enumerate(rows[2:], start=3):
        if len(row) != len(COLUMNS):
            raise DocumentInvalid(f"line {number}", f"has {len(row)} cells, the header {len(COLUMNS)}")
        transactions.append(_transaction(dict(zip(COLUMNS, row)), f"line {number}"))
    check_unique_references(transactions)            # a repeated reference refuses the file (base.py helper)
    return PaymentFile(_reference(rows[0][1], "line 1/batch_id"), tuple(transactions))


# ---- writing statements ----------------------------------------------------------------------------------

ENTRY_COLUMNS = ("entry_id", "booked", "value_date", "direction", "amount", "balance_after", "counterparty_name",
                 "counterparty_account", "bank_scheme", "bank_code", "client_ref", "end_to_end_id", "bank_ref",
                 "narrative", "reversal")


def write_statement(st: Statement, facts: AccountFacts) -> bytes:
    """template.statement.csv: account line, opening, the entries, closing, paging.

    Written by adapters/spreadsheet.py, as every CSV a person may open in a spreadsheet: a counterparty's
    name or a narrative starting with = + - @ gets a leading apostrophe (never run as a formula), which
    read_statement() takes off again. Copy that, not a csv.writer of your own."""
    rows = [["account", st.account, st.currency, facts.owner_name, facts.bank_name],
            ["opening", st.opening_date.isoformat(), st.opening.text()], list(ENTRY_COLUMNS)]
    for e in st.entries:
        party, bank = e.counterparty, e.counterparty.bank if e.counterparty else None
        rows.append([str(e.entry_id), e.booked.isoformat(), e.value_date.isoformat(), e.direction, e.amount.text(),
                     e.balance_after.text(), party.name if party else "", party.account if party else "",
                     bank.scheme if bank else "", bank.code if bank else "", e.client_ref or "",
                     e.end_to_end_id or "", e.bank_ref, e.narrative, "true" if e.reversal else "false"])
    rows += [["closing", st.closing_date.isoformat(), st.closing.text()],
             ["next_cursor", st.next_cursor, "complete", "true" if st.complete else "false"]]
    return spreadsheet.csv_bytes(rows)


ADAPTER = Adapter(
    name="template",
    description="Template: CSV payment files and CSV statements (copy me)",
    payment_readers={"template.csv": read_payments},
    # Not "template.csv" again: one name per format across all maps (registry.py refuses a second claim).
    statement_writers={"template.statement.csv": write_statement},
    text_formats=frozenset({"template.statement.csv"}),      # not XML: the gateway sends it base64
    limits=Limits(max_transactions=MAX_ROWS, amount_unit="major", encodings=("utf-8",)),
)


# ---- optional hooks for the conformance kit (adapters/kit.py); the gateway never calls these ------------

def _csv(rows: list[list[str]]) -> bytes:
    """The ERP's own payment format, for the kit's round trip: verbatim, as read_payments() takes it (a
    statement, which a person may open in a spreadsheet, goes through adapters/spreadsheet.py instead)."""
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)   # fixed line ends: same input, same bytes
    return out.getvalue().encode("utf-8")


def write_payments(batch: PaymentFile) -> bytes:
    """PaymentFile -> template.csv, so the kit can check read(write(batch)) == batch."""
    rows = [["batch_id", batch.message_id], list(COLUMNS)]
    for t in batch.transactions:
        i = t.instruction
        rows.append([i.client_ref, i.end_to_end_id or "", i.debtor_account, i.amount.text(), i.amount.currency, i.creditor.name,
                     i.creditor.account, i.creditor.bank.scheme, i.creditor.bank.code, i.creditor.bank_name or "",
                     i.purpose, i.remark or "", i.requested_date.isoformat() if i.requested_date else "", i.urgency])
    return _csv(rows)


def read_statement(data: bytes) -> Statement:
    """template.statement.csv -> Statement, so the kit can check opening + entries = closing."""
    rows = [[spreadsheet.plain(v) for v in row] for row in csv.reader(io.StringIO(data.decode("utf-8"), newline=""))]
    (_, account, currency, *_), (_, opened, opening), closing, paging = rows[0], rows[1], rows[-2], rows[-1]
    entries = []
    for cells in (dict(zip(ENTRY_COLUMNS, r)) for r in rows[3:-2]):
        bank = BankCode(cells["bank_scheme"], cells["bank_code"]) if cells["bank_scheme"] else None
        party = Party(cells["counterparty_name"], cells["counterparty_account"], bank) \
            if cells["counterparty_name"] or cells["counterparty_account"] else None
        entries.append(StatementEntry(
            int(cells["entry_id"]), dt.datetime.fromisoformat(cells["booked"]),
            dt.date.fromisoformat(cells["value_date"]), cells["direction"], _money(cells["amount"], currency),
            _money(cells["balance_after"], currency), party,
            cells["bank_ref"], cells["narrative"], cells["client_ref"] or None, cells["end_to_end_id"] or None,
            cells["reversal"] == "true"))
    return Statement(account, currency, _money(opening, currency), dt.date.fromisoformat(opened),
                     _money(closing[2], currency), dt.date.fromisoformat(closing[1]), tuple(entries),
                     paging[1], paging[3] == "true")


def _money(text: str, currency: str) -> Money:
    return Money(Decimal(text), currency)


PAYMENT_WRITERS = {"template.csv": write_payments}
STATEMENT_READERS = {"template.statement.csv": read_statement}
