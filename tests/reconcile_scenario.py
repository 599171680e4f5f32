"""A known month of one account: receipts from several payers, our payments, and what must stay unmatched,
with the rule each match must be made by (tests/reconcile/test_reconcile.py and tests/adapters/test_statement_readers.py)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from domain.models import BankCode, Party, Statement, StatementEntry
from domain.money import Money
from reconcile.model import CRDT, DBIT, OpenItem

OWN = "6222000000000001"
DAY = dt.date(2026, 11, 1)
CNAPS = BankCode("CNAPS", "102290012345")


def _party(name: str, account: str | None) -> Party | None:
    return None if account is None else Party(name, account, CNAPS)


# (direction, amount, counterparty name, account, narrative, day of month, extra fields)
ENTRIES = [
    (CRDT, "12000.00", "Alpha Trading", "31001111", "Goods October", 3, {"end_to_end_id": "INV-1001"}),
    (CRDT, "7000.00", "Beta Ltd", "31002222", "Payment invoices 2001 2002 2003", 5, {}),
    (CRDT, "4000.00", "Gamma GmbH", "31003333", "INV-3001 part 1", 6, {}),
    (CRDT, "9985.00", "Delta Inc", "31004444", "Invoice INV-4001 less charges", 7, {}),
    (DBIT, "8800.00", "Supplier S", "31005555", "Materials", 8, {"client_ref": "PAY-5001", "end_to_end_id": "E2E-5001"}),
    (CRDT, "3200.00", "Phi Co (second account)", "31009999", "re INV-2026-6024", 9, {}),
    (CRDT, "5432.10", "Gee Services", "31007777", "monthly fee", 12, {}),
    (CRDT, "5000.00", "<script>alert('x')</script> Decoy", "31000000", "deposit", 15, {}),
    (CRDT, "6000.00", "Gamma GmbH", "31003333", "INV-3001 part 2", 16, {}),
    (DBIT, "250.00", "Closed Account Ltd", "31006000", "Refund", 18, {"client_ref": "RET-1", "bank_ref": "P20261118AAAA"}),
    (CRDT, "250.00", "Closed Account Ltd", "31006000", "Return: AC04 account closed", 19,
     {"client_ref": "RET-1", "bank_ref": "RP20261118AAAA", "reversal": True}),
    (DBIT, "15.00", None, None, "Service fee", 30, {}),
]

# (reference, account, amount, due day, direction, name)
ITEMS = [
    ("INV-1001", "31001111", "12000.00", 1, CRDT, "Alpha Trading"),
    ("INV-2001", "31002222", "1000.00", 2, CRDT, "Beta Ltd"),
    ("INV-2002", "31002222", "2500.50", 2, CRDT, "Beta Ltd"),
    ("INV-2003", "31002222", "3499.50", 3, CRDT, "Beta Ltd"),
    ("INV-2004", "31002222", "1500.00", 20, CRDT, "Beta Ltd"),
    ("INV-3001", "31003333", "10000.00", 5, CRDT, "Gamma GmbH"),
    ("INV-4001", "31004444", "10000.00", 6, CRDT, "Delta Inc"),
    ("E2E-5001", "31005555", "8800.00", 8, DBIT, "Supplier S"),
    ("INV-2026-6042", "31006666", "3200.00", 9, CRDT, "Phi Co"),
    ("INV-7001", "31007777", "5432.10", 10, CRDT, "Gee Services"),
    ("INV-8001", "31008888", "5000.00", 15, CRDT, "Eta Holdings"),
    ("INV-9001", "31001111", "777.00", 20, CRDT, "Alpha Trading"),
    ("PAY-RET-1", "31006000", "250.00", 18, DBIT, "Closed Account Ltd"),
]

# What must come out: rule -> the groups (statement line numbers 1-based in ENTRIES, item references).
EXPECTED = {
    ("exact-reference", (1,), ("INV-1001",)),
    ("one-to-many", (2,), ("INV-2001", "INV-2002", "INV-2003")),
    ("many-to-one", (3, 9), ("INV-3001",)),
    ("reference-text", (4,), ("INV-4001",)),
    ("exact-reference", (5,), ("E2E-5001",)),
    ("reference-text", (6,), ("INV-2026-6042",)),
    ("amount-date-account", (7,), ("INV-7001",)),
    ("reversal", (10, 11), ()),
}
UNMATCHED_LINES = {8, 12}
UNMATCHED_ITEMS = {"INV-2004", "INV-8001", "INV-9001", "PAY-RET-1"}


def statement(opening: str = "100000.00") -> Statement:
    balance = Decimal(opening)
    entries = []
    for n, (direction, amount, name, account, narrative, day, extra) in enumerate(ENTRIES, start=1):
        extra = dict(extra)
        balance += Decimal(amount) if direction == CRDT else -Decimal(amount)
        date = DAY.replace(day=day)
        entries.append(StatementEntry(
            entry_id=n, booked=dt.datetime.combine(date, dt.time(2, n), tzinfo=dt.UTC), value_date=date,
            direction=direction, amount=Money(Decimal(amount), "CNY"), balance_after=Money(balance, "CNY"),
            counterparty=_party(name, account), bank_ref=extra.pop("bank_ref", f"P202611{day:02d}{n:08d}"),
            narrative=narrative, **extra))
    return Statement(OWN, "CNY", Money(Decimal(opening), "CNY"), DAY, Money(balance, "CNY"), DAY.replace(day=30),
                     tuple(entries), f"{len(entries):012d}", True)


def items() -> list[OpenItem]:
    return [OpenItem(ref, ref, account, Money(Decimal(amount), "CNY"), DAY.replace(day=day), direction, name)
            for ref, account, amount, day, direction, name in ITEMS]


def items_csv() -> bytes:
    rows = ["reference,counterparty_account,amount,currency,due_date,direction,counterparty_name"]
    rows += [f"{ref},{account},{amount},CNY,{DAY.replace(day=day)},{'receipt' if d == CRDT else 'payment'},{name}"
             for ref, account, amount, day, d, name in ITEMS]
    return ("\r\n".join(rows) + "\r\n").encode("utf-8")
