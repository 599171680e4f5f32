"""What an ERP adapter is: pure functions between an ERP's file formats and the domain model.

An adapter never does I/O, never touches the database and never knows HTTP. The gateway hands it bytes
(an ERP payment file) or domain objects (a statement, payment statuses) and takes back domain objects or
bytes. Declare it in pyproject.toml under `[project.entry-points."directlink.adapters"]`.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from domain.models import PaymentStatus, Statement, SubmittedPayment, has_control_or_format


class RenderError(ValueError):
    """A writer cannot express this statement or status in its format (a field too long, say)."""


class DocumentInvalid(Exception):
    """The whole file is refused (its format's rules, control sums, duplicate references, currencies).

    `where` names the place in the file (an XPath-like path or JSON pointer), so the ERP team can fix it."""

    def __init__(self, where: str, detail: str):
        super().__init__(f"{where}: {detail}")
        self.where, self.detail = where, detail


@dataclass(frozen=True)
class PaymentFile:
    """An ERP payment file in domain terms, in file order."""

    message_id: str                         # the file's own id (GrpHdr/MsgId, batch number): the BatchId
    transactions: tuple[SubmittedPayment, ...]   # each with its `where`
    created: dt.datetime | None = None


@dataclass(frozen=True)
class AccountFacts:
    """What statement formats need to say about the account beyond its entries."""

    account: str
    currency: str
    owner_name: str
    bank_name: str
    bank_bic: str = "DLNKCNSHXXX"           # the bank's BIC (setting bank_bic)
    iban: str | None = None
    timezone: str = "Asia/Shanghai"         # the bank's business day: booking times arrive in UTC
    created: dt.datetime | None = None      # when the statement was asked for (the gateway's clock)


@dataclass(frozen=True)
class StatusReport:
    """Payment statuses answering an ERP's file or query, for pain.002-like documents."""

    statuses: tuple[PaymentStatus, ...]
    original_message_id: str | None = None  # the file the statuses answer, when there is one
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    amounts: Mapping[str, tuple[Decimal, str]] = field(default_factory=dict)  # ClientRef -> (amount, ccy)
    # The file refused whole before any payment of it was taken: (result code, why). A status writer says so
    # for the whole group (pain.002: GrpSts RJCT with the reason); `statuses` is then empty.
    rejected: tuple[str, str] | None = None
    payment_info_ids: Mapping[str, str] = field(default_factory=dict)   # ClientRef -> the file's PmtInfId


@dataclass(frozen=True)
class Limits:
    max_transactions: int = 1000            # per file; more is DocumentInvalid before any work
    amount_unit: str = "major"              # "major" (decimal text, 12.50) or "minor" (integer fen)
    encodings: tuple[str, ...] = ("utf-8",)


@dataclass(frozen=True)
class Adapter:
    """One ERP family's formats. Each mapping goes from a format name to a pure function."""

    name: str
    description: str
    payment_readers: Mapping[str, Callable[[bytes], PaymentFile]] = field(default_factory=dict)
    statement_writers: Mapping[str, Callable[[Statement, AccountFacts], bytes]] = field(default_factory=dict)
    status_writers: Mapping[str, Callable[[StatusReport], bytes]] = field(default_factory=dict)
    # Statements read back (for reconciliation, not the gateway): usually the same names as the writers,
    # since a format read and a format written are one format.
    statement_readers: Mapping[str, Callable[[bytes], Statement]] = field(default_factory=dict)
    text_formats: frozenset[str] = frozenset()   # written formats that are text (sent base64), not XML
    limits: Limits = Limits()

    @property
    def formats(self) -> tuple[str, ...]:
        # A statement reader may share its name with this adapter's statement writer (the same format);
        # any other repeat is left in, so that the registry and the kit refuse it.
        readers_only = (fmt for fmt in self.statement_readers if fmt not in self.statement_writers)
        return (*self.payment_readers, *self.statement_writers, *self.status_writers, *readers_only)


def check_unique_references(transactions: Iterable[SubmittedPayment]) -> None:
    """Raise DocumentInvalid when two transactions of one file share a reference (DU04 duplicate E2E)."""
    seen: dict[str, str] = {}
    for t in transactions:
        if t.client_ref in seen:
            raise DocumentInvalid(t.where, f"reference {t.client_ref!r} repeats {seen[t.client_ref]}")
        seen[t.client_ref] = t.where


def check_payment_file(payment_file: PaymentFile, fmt: str, limits: Limits) -> None:
    """The checks of a whole payment file beyond its format's own: not more transactions than the adapter
    takes, at least one, no reference twice. DocumentInvalid refuses the file (the gateway on DocumentSubmit,
    the agent's --validate before it sends)."""
    if len(payment_file.transactions) > limits.max_transactions:
        raise DocumentInvalid("file", f"{len(payment_file.transactions)} transactions; "
                                      f"{fmt} takes at most {limits.max_transactions}")
    if not payment_file.transactions:
        raise DocumentInvalid("file", "holds no transactions")
    check_unique_references(payment_file.transactions)


def read_json_literally(text: str, object_pairs_hook: Callable[[list[tuple[str, object]]], object]) -> object:
    """An ERP file's JSON with its numbers kept as their literal text (0.1 stays "0.1", never the float
    0.1000000000000000055), NaN and Infinity refused, and every fault a DocumentInvalid at "/". The hook
    decides what a member given twice means to the caller's format."""
    try:
        return json.loads(text, object_pairs_hook=object_pairs_hook, parse_float=str, parse_int=str,
                          parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise DocumentInvalid("/", f"not well-formed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") \
            from None
    except RecursionError:
        raise DocumentInvalid("/", "JSON nested too deeply") from None


def _no_constant(name: str):
    raise DocumentInvalid("/", f"{name} is not a JSON number")


def check_reference(value: str, where: str) -> str:
    """A file's key under the protocol's Ref35 rule (usable as ClientRef/BatchId): 1-35 characters, no blanks
    at the ends (what the XSD's \\s calls blank, no more), no control or format characters; else the file
    is refused, since without a key the gateway cannot make a payment idempotent."""
    if not 1 <= len(value) <= 35 or value != value.strip(" \t\r\n") or has_control_or_format(value):
        raise DocumentInvalid(where, f"{value!r} is not 1-35 characters without blanks at the ends or control "
                                     "characters")
    return value
