"""The domain side of a mapping: Tables (syntax.py) <-> payments, statements and statuses.

Reading follows the batch policy of every adapter (docs/adapters.md): faults of the file -- a missing
field, a malformed amount or date, a code the table lacks, wrong control sums, a repeated reference --
raise DocumentInvalid with the place; faults of one payment (account, amount value, bank code) become
that payment's PaymentRejected. Writing is the reverse, through the same field declarations, so that a
mapping's own reader reads back what its writers wrote.
"""
from __future__ import annotations

import datetime as dt
import decimal
import re
from decimal import Decimal

from adapters.base import AccountFacts, DocumentInvalid, PaymentFile, RenderError, StatusReport
from adapters.base import check_reference as _ref
from adapters.declared import syntax
from adapters.declared.spec import AMOUNT, DATE, DATETIME, FLAG, SIGNED, TIME, Field, Section
from domain.errors import PaymentRejected
from domain.models import (
    BankCode,
    Party,
    PaymentStatus,
    Statement,
    StatementEntry,
    SubmittedPayment,
    build_instruction,
)
from domain.money import Money, iso_minor_units

BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")   # Chinese files write wall time in UTC+8, no DST
CURRENCY_ALIASES = {"RMB": "CNY"}
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
_SIGNED = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)
_WHOLE = re.compile(r"-?[0-9]{1,18}", re.ASCII)
_CNAPS = re.compile(r"[0-9]{12}", re.ASCII)
_BIC = re.compile(r"[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?", re.ASCII)


# ---- values: file text -> domain ------------------------------------------------------------------------

class _Read:
    """The values of one record (or the batch): typed getters that raise DocumentInvalid with the place."""

    def __init__(self, s: Section, table: syntax.Table, i: int | None):
        self.s, self.t, self.i = s, table, i
        self.values = table.records[i] if i is not None else table.batch

    def field(self, name: str) -> tuple[Field | None, str | None, tuple[int | None, str]]:
        """(its declaration, its text, its place as (record, name): spelled out only for a fault)."""
        f = (self.s.fields if self.i is not None else self.s.batch).get(name)
        whole = self.s.batch.get(name) if self.i is not None else None   # a field the whole file gives once
        if f is not None and (self.values.get(name) is not None or whole is None):
            return f, self.values.get(name), (self.i, name)
        if whole is not None:           # absent from the record (or not a record field): the file's value
            return whole, self.t.batch.get(name), (None, name)
        return None, None, (self.i, name)

    def text(self, name: str, required: bool = False) -> str | None:
        f, value, where = self.field(name)
        if value is None and (required or (f is not None and f.required)):
            raise DocumentInvalid(self.t.where(*where), "is missing")
        return value

    def code(self, name: str, default: str | None = None) -> str | None:
        f, value, where = self.field(name)
        if value is None:
            if f is not None and f.required:
                raise DocumentInvalid(self.t.where(*where), "is missing")
            return default
        if not f.codes:
            return value
        found = f.to_domain(value)
        if found is None:
            known = ", ".join(repr(v) for _, v in f.codes)
            raise DocumentInvalid(self.t.where(*where), f"{value!r} is not in the mapping's code table ({known})")
        return found

    def amount(self, name: str, currency: str | None) -> Decimal | None:
        f, value, where = self.field(name)
        if value is None:
            if f is not None and f.required:
                raise DocumentInvalid(self.t.where(*where), "is missing")
            return None
        signed = f.type == SIGNED
        if f.unit == "fen":
            if not _WHOLE.fullmatch(value) or (value.startswith("-") and not signed):
                raise DocumentInvalid(self.t.where(*where), f"{value!r} is not a whole number of fen (minor units)")
            places = iso_minor_units().get(currency or "", 2)
            return Decimal(int(value)).scaleb(-places)
        if not (_SIGNED if signed else _DECIMAL).fullmatch(value):
            raise DocumentInvalid(self.t.where(*where), f"{value!r} is not a plain decimal amount in yuan (e.g. 1250.00)")
        return Decimal(value)

    def count(self, name: str) -> int | None:
        _, value, where = self.field(name)
        if value is None:
            return None
        if not _WHOLE.fullmatch(value) or value.startswith("-"):
            raise DocumentInvalid(self.t.where(*where), f"{value!r} is not a whole number")
        return int(value)

    def moment(self, name: str) -> dt.datetime | dt.date | dt.time | None:
        f, value, where = self.field(name)
        if value is None:
            if f is not None and f.required:
                raise DocumentInvalid(self.t.where(*where), "is missing")
            return None
        try:
            parsed = dt.datetime.strptime(value, f.format or "")
        except ValueError:
            raise DocumentInvalid(self.t.where(*where), f"{value!r} does not match the pattern {f.format}") from None
        if f.type == DATE:
            return parsed.date()
        if f.type == TIME:
            return parsed.time()
        return parsed.replace(tzinfo=BEIJING)

    def flag(self, name: str) -> bool:
        return self.code(name, "false") == "true"


# ---- values: domain -> file text ------------------------------------------------------------------------

def _out(f: Field | None, value: object, currency: str | None = None) -> str | None:
    """One domain value as the field writes it (None: left out)."""
    if f is None or value is None:
        return None
    if f.type in (AMOUNT, SIGNED):
        amount = value.amount if isinstance(value, Money) else Decimal(value)
        if f.unit == "fen":
            places = iso_minor_units().get(currency or "", 2)
            return str(int(amount.scaleb(places)))
        return format(amount, "f")
    if f.type in (DATE, DATETIME, TIME):
        if isinstance(value, dt.datetime) and f.type != DATE:
            value = value.astimezone(BEIJING) if value.tzinfo else value.replace(tzinfo=dt.UTC).astimezone(BEIJING)
        elif isinstance(value, dt.datetime):
            value = value.astimezone(BEIJING).date()
        return value.strftime(f.format or "")
    if f.type == FLAG:
        value = "true" if value else "false"
    text = str(value)
    if f.codes:
        coded = f.to_file(text)
        if coded is None:
            raise RenderError(f"{f.key}: {text!r} has no code in the mapping's table")
        return coded
    return text


class _Write:
    def __init__(self, fields: dict[str, Field]):
        self.fields, self.values = fields, {}

    def put(self, name: str, value: object, currency: str | None = None) -> None:
        if name in self.fields:
            self.values[name] = _out(self.fields[name], value, currency)


# ---- payments -------------------------------------------------------------------------------------------

def read_payments(s: Section, data: bytes) -> PaymentFile:
    t = syntax.read(s, data)
    head = _Read(s, t, None)
    batch_id = _ref(head.text("id", True) or "", t.where(None, "id"))
    created = head.moment("created")
    if not t.records:
        raise DocumentInvalid(t.where(None, None), "holds no payments")
    count = head.count("count")
    if count is not None and count != len(t.records):
        raise DocumentInvalid(t.where(None, "count"), f"says {count} payments but the file holds {len(t.records)}")
    read = [_payment(s, t, i) for i in range(len(t.records))]
    total = head.amount("total", read[0][2])
    if total is not None:
        with decimal.localcontext(decimal.Context(prec=decimal.MAX_PREC)):
            found = sum((amount for _, amount, _ in read), Decimal(0))
        if found != total:
            raise DocumentInvalid(t.where(None, "total"), f"is {total} but the payments add up to {found}")
    first: dict[str, int] = {}
    for i, (p, _, _) in enumerate(read):
        if p.client_ref in first:
            raise DocumentInvalid(t.where(i, "client_ref"),
                                  f"{p.client_ref!r} repeats {t.where(first[p.client_ref], 'client_ref')}")
        first[p.client_ref] = i
    return PaymentFile(batch_id, tuple(p for p, _, _ in read), created if isinstance(created, dt.datetime) else None)


def _payment(s: Section, t: syntax.Table, i: int) -> tuple[SubmittedPayment, Decimal, str]:
    r = _Read(s, t, i)
    ref = _ref(r.text("client_ref", True) or "", t.where(i, "client_ref"))
    e2e = r.text("end_to_end_id")
    currency = r.code("currency") or ""
    currency = CURRENCY_ALIASES.get(currency, currency)
    amount = r.amount("amount", currency)
    if amount is None:
        raise DocumentInvalid(t.where(i, "amount"), "is missing")
    scheme = r.code("bank_scheme", "CNAPS") or "CNAPS"
    code = r.text("bank_code") or ""
    f = s.fields.get("bank_code")
    if f is not None and f.this_bank and code == f.this_bank:
        scheme, code = "INTERNAL", ""
    if scheme == "INTERNAL":
        code = ""
    elif not code:
        raise DocumentInvalid(t.where(i, "bank_code"), f"is missing: a {scheme} code for the payee's bank")
    requested = r.moment("requested_date")
    where = t.where(i, None)
    try:
        ins = build_instruction(
            client_ref=ref, end_to_end_id=_ref(e2e, t.where(i, "end_to_end_id")) if e2e else None,
            debtor_account=r.text("debtor_account", True) or "", amount=format(amount, "f"), currency=currency,
            creditor_name=r.text("creditor_name", True) or "", creditor_account=r.text("creditor_account", True) or "",
            bank_scheme=scheme, bank_code=code, bank_name=r.text("bank_name"), purpose=r.text("purpose", True) or "",
            remark=r.text("remark"), requested_date=requested if isinstance(requested, dt.date) else None,
            urgency=r.code("urgency", "NORMAL") or "NORMAL")
        return SubmittedPayment(ref, ins, where=where), amount, currency
    except PaymentRejected as problem:      # a business fault of this payment only; the others go on
        return SubmittedPayment(ref, None, problem, where=where), amount, currency


def write_payments(s: Section, batch: PaymentFile) -> bytes:
    """The inverse of read_payments, for round trips and for ERP teams making sample files."""
    instructions = [t.instruction for t in batch.transactions]
    if not instructions or any(i is None for i in instructions):
        raise ValueError("only a non-empty batch of instructions can be written")
    first = instructions[0]
    for name, value_of in (("debtor_account", lambda i: i.debtor_account), ("currency", lambda i: i.amount.currency)):
        if name not in s.fields and len({value_of(i) for i in instructions}) > 1:
            raise RenderError(f"{s.format} has one {name} for the whole file; this batch has several")
    head = _Write(s.batch)
    head.put("id", batch.message_id)
    head.put("created", batch.created)
    head.put("count", len(instructions))
    head.put("total", sum((i.amount.amount for i in instructions), Decimal(0)), first.amount.currency)
    head.put("debtor_account", first.debtor_account)
    head.put("currency", first.amount.currency)
    records = []
    for ins in instructions:
        w = _Write(s.fields)
        bank = ins.creditor.bank
        for name, value in (("client_ref", ins.client_ref), ("end_to_end_id", ins.end_to_end_id),
                            ("debtor_account", ins.debtor_account), ("currency", ins.amount.currency),
                            ("creditor_name", ins.creditor.name), ("creditor_account", ins.creditor.account),
                            ("bank_name", ins.creditor.bank_name), ("purpose", ins.purpose),
                            ("remark", ins.remark), ("requested_date", ins.requested_date)):
            w.put(name, value)
        w.put("amount", ins.amount, ins.amount.currency)
        w.put("urgency", ins.urgency)
        f = s.fields.get("bank_code")
        if bank.scheme == "INTERNAL" and f is not None and f.this_bank:
            w.put("bank_code", f.this_bank)
        else:
            w.put("bank_code", bank.code or None)
        if "bank_scheme" in s.fields:
            w.put("bank_scheme", bank.scheme)
        elif bank.scheme != "CNAPS" and not (bank.scheme == "INTERNAL" and f is not None and f.this_bank):
            raise RenderError(f"{s.format} has no bank_scheme field to say {bank.scheme}")
        records.append(w.values)
    return syntax.write(s, head.values, records)


# ---- statements -----------------------------------------------------------------------------------------

def write_statement(s: Section, st: Statement, facts: AccountFacts) -> bytes:
    ccy = st.currency
    head = _Write(s.batch)
    for name, value in (("account", st.account), ("currency", ccy), ("owner_name", facts.owner_name),
                        ("bank_name", facts.bank_name), ("bank_bic", facts.bank_bic),
                        ("opening_date", st.opening_date), ("closing_date", st.closing_date),
                        ("count", len(st.entries)), ("next_cursor", st.next_cursor), ("complete", st.complete)):
        head.put(name, value)
    head.put("opening_balance", st.opening, ccy)
    head.put("closing_balance", st.closing, ccy)
    head.put("debit_total", sum((e.amount.amount for e in st.entries if e.direction == "DBIT"), Decimal(0)), ccy)
    head.put("credit_total", sum((e.amount.amount for e in st.entries if e.direction != "DBIT"), Decimal(0)), ccy)
    records = []
    for e in st.entries:
        w = _Write(s.fields)
        party = e.counterparty
        bank = party.bank if party else None
        for name, value in (("entry_id", e.entry_id), ("booked", e.booked), ("booked_date", e.booked),
                            ("booked_time", e.booked), ("value_date", e.value_date), ("direction", e.direction),
                            ("counterparty_name", party.name if party else None),
                            ("counterparty_account", party.account if party else None),
                            ("counterparty_bank", bank.code if bank and bank.code else None),
                            ("bank_ref", e.bank_ref), ("narrative", e.narrative), ("client_ref", e.client_ref),
                            ("end_to_end_id", e.end_to_end_id), ("reversal", e.reversal),
                            ("account", st.account), ("currency", ccy)):
            w.put(name, value)
        w.put("amount", e.amount, ccy)
        w.put("debit_amount", e.amount if e.direction == "DBIT" else None, ccy)
        w.put("credit_amount", e.amount if e.direction != "DBIT" else None, ccy)
        w.put("balance", e.balance_after, ccy)
        records.append(w.values)
    return syntax.write(s, head.values, records)


def read_statement(s: Section, data: bytes) -> Statement:
    """A statement file of this mapping back into a Statement (reconciliation, and the mapping's checks)."""
    t = syntax.read(s, data)
    head = _Read(s, t, None)
    rows = [_Read(s, t, i) for i in range(len(t.records))]
    account = head.text("account") or (rows[0].text("account") if rows else None)
    currency = head.code("currency") or (rows[0].code("currency") if rows else None)
    if not account or not currency:
        raise DocumentInvalid(t.where(None, "account"), "the file says no account and currency")
    currency = CURRENCY_ALIASES.get(currency, currency)
    if currency not in iso_minor_units():
        raise DocumentInvalid(t.where(None, "currency"), f"{currency!r} is not an ISO 4217 currency")

    places = Decimal(1).scaleb(-iso_minor_units()[currency])

    def money(value: Decimal, where: str) -> Money:
        if value != value.quantize(places):       # never rounded: 1.005 CNY is a fault of the file
            raise DocumentInvalid(where, f"{value} has more decimals than {currency} has")
        return Money(value.quantize(places), currency)

    entries = [_entry(r, i, currency, money) for i, r in enumerate(rows)]
    opening = head.amount("opening_balance", currency)
    if opening is None:
        if not entries:
            raise DocumentInvalid(t.where(None, "opening_balance"), "is missing and there are no entries")
        first = entries[0]
        opening = first.balance_after.amount + (first.amount.amount if first.direction == "DBIT"
                                                else -first.amount.amount)
    closing = head.amount("closing_balance", currency)
    if closing is None:
        closing = entries[-1].balance_after.amount if entries else opening
    days = [e.value_date for e in entries]
    opening_date = head.moment("opening_date") or (min(days) if days else None)
    closing_date = head.moment("closing_date") or (max(days) if days else opening_date)
    if not isinstance(opening_date, dt.date) or not isinstance(closing_date, dt.date):
        raise DocumentInvalid(t.where(None, "opening_date"), "is missing and there are no entries")
    return Statement(account, currency, money(opening, t.where(None, "opening_balance")), opening_date,
                     money(closing, t.where(None, "closing_balance")), closing_date, tuple(entries),
                     head.text("next_cursor") or "", head.flag("complete") if "complete" in s.batch else True)


def _entry(r: _Read, i: int, currency: str, money) -> StatementEntry:
    where = r.t.where(i, None)
    debit, credit = r.amount("debit_amount", currency), r.amount("credit_amount", currency)
    amount = r.amount("amount", currency)
    direction = r.code("direction")
    if direction is None:
        if bool(debit) == bool(credit):
            raise DocumentInvalid(where, "needs exactly one of the debit (借) and credit (贷) amounts")
        direction = "DBIT" if debit else "CRDT"
    if amount is None:
        amount = debit if direction == "DBIT" else credit
    if amount is None:
        raise DocumentInvalid(r.t.where(i, "amount"), "is missing")
    booked = r.moment("booked")
    if not isinstance(booked, dt.datetime):
        day, time = r.moment("booked_date"), r.moment("booked_time")
        if not isinstance(day, dt.date):
            raise DocumentInvalid(r.t.where(i, "booked_date"), "is missing")
        booked = dt.datetime.combine(day, time if isinstance(time, dt.time) else dt.time(0), BEIJING)
    value_date = r.moment("value_date")
    name, account, bank = r.text("counterparty_name"), r.text("counterparty_account"), r.text("counterparty_bank")
    code = (BankCode("CNAPS", bank) if bank and _CNAPS.fullmatch(bank)
            else BankCode("BIC", bank) if bank and _BIC.fullmatch(bank) else None)
    party = Party(name or "", account or "", code) if (name or account) else None   # type: ignore[arg-type]
    return StatementEntry(
        entry_id=r.count("entry_id") or i + 1, booked=booked.astimezone(dt.UTC),
        value_date=value_date if isinstance(value_date, dt.date) else booked.date(), direction=direction,
        amount=money(amount, where), balance_after=money(r.amount("balance", currency) or Decimal(0), where),
        counterparty=party, bank_ref=r.text("bank_ref") or "", narrative=r.text("narrative") or "",
        client_ref=r.text("client_ref"), end_to_end_id=r.text("end_to_end_id"), reversal=r.flag("reversal"))


# ---- statuses -------------------------------------------------------------------------------------------

def write_statuses(s: Section, report: StatusReport) -> bytes:
    head = _Write(s.batch)
    head.put("batch_id", report.original_message_id)
    head.put("created", report.created)
    head.put("count", len(report.statuses))
    return syntax.write(s, head.values, [_status(s, st, report) for st in report.statuses])


def _status(s: Section, st: PaymentStatus, report: StatusReport) -> dict:
    w = _Write(s.fields)
    amount, currency = st.amount, st.amount.currency if st.amount else None
    if amount is None and st.client_ref in report.amounts:
        value, currency = report.amounts[st.client_ref]
        amount = Money(value, currency)
    for name, value in (("client_ref", st.client_ref), ("end_to_end_id", st.end_to_end_id),
                        ("payment_id", st.payment_id), ("state", st.state.value),
                        ("reason", st.reason.value if st.reason else None), ("reason_text", st.reason_text),
                        ("currency", currency), ("debtor_account", st.debtor_account), ("updated", st.updated),
                        ("approvals_required", st.approvals_required), ("approvals_given", st.approvals_given),
                        ("order_digest", st.order_digest)):
        w.put(name, value)
    w.put("amount", amount, currency)
    return w.values


def read_statuses(s: Section, data: bytes) -> list[dict[str, str | None]]:
    """A status file of this mapping as plain values (state as the gateway's name): for tests and ERP teams."""
    t = syntax.read(s, data)
    out = []
    for i, values in enumerate(t.records):
        r = _Read(s, t, i)
        row = dict(values)
        row["state"] = r.code("state")
        out.append(row)
    return out

