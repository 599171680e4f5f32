"""A stored payment as a typed value: one row of the payments table (gateway/storage/tables.py).

It lives in the server, not in domain/: it is the table's shape (minor units, the state as stored, the rule
hits as their JSON), which the domain's own model of a payment (domain.models) need not know. It needs
nothing of SQLAlchemy though: a row is read into it by position, and it gives back the values to insert.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, fields
from operator import attrgetter


@dataclass(slots=True)
class PaymentRecord:
    """The fields in the order of the table's columns (tests/gateway/test_payment_record.py checks it), so
    that a row of `select(payments)` is read into one by position: that costs a twentieth of reading it by
    name from the row's mapping, and a file of 10,000 retried payments reads one each. Not frozen: the batch that creates
    a payment moves it to SETTLED once its settlement within the bank is written (payments._Batch.flush)."""

    id: str
    client_id: str
    client_ref: str
    end_to_end_id: str
    batch_id: str | None
    debtor_account: str
    amount: int                         # minor units of `currency`
    currency: str
    creditor_name: str
    creditor_account: str
    creditor_bank_scheme: str
    creditor_bank_code: str
    creditor_bank_name: str | None
    purpose: str
    remark: str | None
    requested_date: dt.date
    urgency: str
    state: str                          # a domain.codes.PaymentState value
    reason_code: str | None
    reason_text: str | None
    order_digest: str
    content_hash: str
    maker: str
    approvals_required: int
    approvals_given: int
    created_at: dt.datetime
    updated_at: dt.datetime
    sent_at: dt.datetime | None
    attempts: int
    creditor_key: str | None
    rule_hits: str | None               # JSON (gateway.rule_facts.hits_json)
    payment_info_id: str | None = None  # the PmtInfId of the pain.001 block it came in (migration 0015)

    @classmethod
    def from_row(cls, row: Sequence) -> PaymentRecord:
        """A row of `select(payments)` (all its columns, in the table's order)."""
        return cls(*row)

    def values(self) -> dict:
        """The columns and their values, as an insert takes them."""
        return dict(zip(COLUMNS, _VALUES(self)))


COLUMNS = tuple(f.name for f in fields(PaymentRecord))
_VALUES = attrgetter(*COLUMNS)
