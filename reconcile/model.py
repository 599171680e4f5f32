"""The domain of reconciliation: statement lines, open items, matches with the rule that made them, results.

Plain frozen dataclasses; amounts are Money (exact Decimal), never floats. Each side has a stable `key`
(a statement line: account/EntryId; an open item: its id), and everything that lists lines or items
lists them in key order, so a result never depends on the order the inputs came in.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from domain.models import Statement, StatementEntry
from domain.money import Money

CRDT, DBIT = "CRDT", "DBIT"


@dataclass(frozen=True)
class StatementLine:
    """One statement entry as reconciliation sees it: money, a day, a counterparty and references."""

    account: str                             # the statement's account
    entry_id: int
    value_date: dt.date
    direction: str                           # CRDT (money in) | DBIT (money out)
    amount: Money
    counterparty_account: str                # "" when the entry has none (fees, interest)
    counterparty_name: str
    bank_ref: str
    client_ref: str | None
    end_to_end_id: str | None
    narrative: str
    reversal: bool = False

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.account, self.entry_id, self.bank_ref)

    @property
    def label(self) -> str:
        return f"{self.account}#{self.entry_id}"

    @property
    def references(self) -> tuple[str, ...]:
        """The entry's structured references, in a fixed order."""
        return tuple(r for r in (self.end_to_end_id, self.client_ref, self.bank_ref) if r)

    @classmethod
    def of(cls, statement: Statement, entry: StatementEntry) -> StatementLine:
        party = entry.counterparty
        return cls(statement.account, entry.entry_id, entry.value_date, entry.direction, entry.amount,
                   (party.account or "") if party else "", (party.name or "") if party else "", entry.bank_ref,
                   entry.client_ref, entry.end_to_end_id, entry.narrative, entry.reversal)


def lines_of(statement: Statement) -> list[StatementLine]:
    return [StatementLine.of(statement, e) for e in statement.entries]


@dataclass(frozen=True)
class OpenItem:
    """Money the ERP expects to receive (CRDT) or to pay (DBIT), or a payment the gateway made (DBIT)."""

    id: str                                  # unique within its source; the reference unless given
    reference: str                           # invoice number, ClientRef, EndToEndId ...
    counterparty_account: str
    amount: Money
    due_date: dt.date
    direction: str
    counterparty_name: str = ""
    text: str = ""                           # description: more reference text for the text rule
    other_references: tuple[str, ...] = ()   # a gateway payment: its EndToEndId and PaymentId
    where: str = ""                          # "open-items.csv line 7": for error messages and the report

    @property
    def key(self) -> str:
        return self.id

    @property
    def references(self) -> tuple[str, ...]:
        return (self.reference, *self.other_references)


@dataclass(frozen=True)
class Tolerances:
    """What the fuzzy rules allow. Exact rules ignore these."""

    date_window_days: int = 5                # amount + date window + counterparty account
    fee: Decimal = Decimal("50")             # reference-text: |entry - item| at most this (fees deducted)
    similarity: float = 0.85                 # reference-text: 1 - edits / length of the reference
    max_group: int = 5                       # one-to-many / many-to-one: at most this many on the "many" side
    max_candidates: int = 20                 # subset searches look at most at this many candidates

    def __post_init__(self) -> None:
        if self.date_window_days < 0 or self.fee < 0 or not 0 < self.similarity <= 1 or self.max_group < 2:
            raise ValueError("tolerances: date window and fee must be >= 0, similarity in (0, 1], max group >= 2")


@dataclass(frozen=True)
class Match:
    """Statement lines and open items that settle each other, and the rule that said so."""

    rule: str
    lines: tuple[StatementLine, ...]
    items: tuple[OpenItem, ...]
    difference: Decimal                      # lines minus items (signed by direction); 0 for exact rules
    note: str = ""

    @property
    def currency(self) -> str:
        return self.lines[0].amount.currency


@dataclass(frozen=True)
class Result:
    """Everything matched, and what is left on either side, in key order."""

    matches: tuple[Match, ...]
    unmatched_lines: tuple[StatementLine, ...]
    unmatched_items: tuple[OpenItem, ...]
    tolerances: Tolerances = field(default_factory=Tolerances)

    def counts(self) -> dict[str, int]:
        by_rule: dict[str, int] = {}
        for m in self.matches:
            by_rule[m.rule] = by_rule.get(m.rule, 0) + 1
        return by_rule


@dataclass(frozen=True)
class Section:
    """One comparison of a report: the statement (of one account, when the files hold several) against one
    source of expected money."""

    title: str                               # "open items (erp.csv)", "gateway payments"
    result: Result
    account: str = ""                        # the statement account it is about; "" for all of them


@dataclass(frozen=True)
class Period:
    """One account's statement as the report names it."""

    account: str
    currency: str
    period: tuple[dt.date, dt.date]


@dataclass(frozen=True)
class Report:
    accounts: tuple[Period, ...]             # one per statement account, in the order the files name them
    statement_files: tuple[str, ...]
    sections: tuple[Section, ...]
    inconsistencies: tuple[str, ...] = ()    # read with --lenient: what did not add up, shown first

    @property
    def account(self) -> str:
        return ", ".join(p.account for p in self.accounts)

    @property
    def currency(self) -> str:
        return ", ".join(dict.fromkeys(p.currency for p in self.accounts))

    @property
    def period(self) -> tuple[dt.date, dt.date]:
        return min(p.period[0] for p in self.accounts), max(p.period[1] for p in self.accounts)
