"""Frozen value objects of the domain. Wire names (spec) map onto these in gateway/messages.py."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal, overload

from domain.codes import Grant, PaymentState, ReasonCode
from domain.errors import PaymentRejected
from domain.money import Money, parse_amount

_ACCOUNT = re.compile(r"[0-9A-Za-z]{1,34}", re.ASCII)
_CNAPS = re.compile(r"[0-9]{12}", re.ASCII)
_BIC = re.compile(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?", re.ASCII)
BANK_SCHEMES = ("CNAPS", "BIC", "INTERNAL")
Urgency = Literal["NORMAL", "URGENT"]
URGENCIES: tuple[Urgency, ...] = ("NORMAL", "URGENT")


def check_account(number: str, role: str) -> str:
    """Return an account number if it is 1-34 ASCII letters/digits, else ACCOUNT_INVALID."""
    if not _ACCOUNT.fullmatch(number or ""):
        raise PaymentRejected(ReasonCode.ACCOUNT_INVALID, f"{role} account {number!r} is not 1-34 of [0-9A-Za-z]")
    return number


@overload
def check_text(value: str, what: str, low: int, high: int) -> str: ...
@overload
def check_text(value: None, what: str, low: int, high: int) -> None: ...
@overload
def check_text(value: str | None, what: str, low: int, high: int) -> str | None: ...
def check_text(value: str | None, what: str, low: int, high: int) -> str | None:
    """Check a free-text field's length in characters (after NFC) and refuse control characters.

    None means the optional field is absent. The XSD enforces the same bounds first; this keeps the
    domain safe for adapters that build instructions without the protocol schema."""
    if value is None:
        return None
    value = unicodedata.normalize("NFC", value)
    if not low <= len(value) <= high:
        raise PaymentRejected(ReasonCode.ACCOUNT_INVALID, f"{what} must be {low}-{high} characters")
    if has_control_or_format(value):
        raise PaymentRejected(ReasonCode.ACCOUNT_INVALID, f"{what} contains control or format characters")
    return value


def has_control_or_format(value: str) -> bool:
    """Whether a text holds a control (Cc) or format (Cf) character. str.isprintable() is false for every text
    that does (and for a few others: a no-break space, say), so only those are read character by character:
    a 10,000-payment file's names and references spent 4% of its time here."""
    return not value.isprintable() and any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value)


def is_own_bank(scheme: str, code: str, own_cnaps_prefix: str) -> bool:
    """True if a bank code names this bank: the INTERNAL scheme, or a CNAPS code with the bank's prefix."""
    return scheme == "INTERNAL" or (scheme == "CNAPS" and code.startswith(own_cnaps_prefix))


@dataclass(frozen=True, slots=True)
class BankCode:
    scheme: str  # CNAPS | BIC | INTERNAL
    code: str = ""

    def __post_init__(self) -> None:
        ok = {
            "CNAPS": _CNAPS.fullmatch(self.code) is not None,
            "BIC": _BIC.fullmatch(self.code) is not None,
            "INTERNAL": self.code == "",
        }.get(self.scheme, False)
        if not ok:
            raise PaymentRejected(
                ReasonCode.BANK_CODE_INVALID, f"bank code {self.code!r} is not a valid {self.scheme} code"
            )


@dataclass(frozen=True, slots=True)
class Party:
    name: str
    account: str
    bank: BankCode
    bank_name: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentInstruction:
    """One payment as the client asked for it (before the gateway adds state)."""

    client_ref: str
    debtor_account: str
    amount: Money
    creditor: Party
    purpose: str
    end_to_end_id: str | None = None
    remark: str | None = None
    requested_date: dt.date | None = None
    urgency: Urgency = "NORMAL"

    @property
    def e2e(self) -> str:
        """The EndToEndId, which defaults to the ClientRef (spec section 5)."""
        return self.end_to_end_id or self.client_ref

    def content_hash(self) -> str:
        """SHA-256 over the instruction's content: equal for a retry, different if any field changed.

        Stored hashes are compared with retries forever, so the JSON hashed must never change: it is what
        dataclasses.asdict gives (nested parties as objects), built without asdict's deep copies (a tenth of
        a 10,000-payment file's time went into them)."""
        bank = self.creditor.bank
        data = {"client_ref": self.client_ref, "debtor_account": self.debtor_account,
                "amount": [self.amount.text(), self.amount.currency],
                "creditor": {"name": self.creditor.name, "account": self.creditor.account,
                             "bank": {"scheme": bank.scheme, "code": bank.code},
                             "bank_name": self.creditor.bank_name},
                "purpose": self.purpose, "end_to_end_id": self.end_to_end_id, "remark": self.remark,
                "requested_date": self.requested_date.isoformat() if self.requested_date else None,
                "urgency": self.urgency}
        blob = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def build_instruction(
    *,
    client_ref: str,
    debtor_account: str,
    amount: str,
    currency: str,
    creditor_name: str,
    creditor_account: str,
    bank_scheme: str,
    bank_code: str,
    bank_name: str | None,
    purpose: str,
    end_to_end_id: str | None = None,
    remark: str | None = None,
    requested_date: dt.date | None = None,
    urgency: str = "NORMAL",
) -> PaymentInstruction:
    """Build a PaymentInstruction from wire text, raising PaymentRejected with the first problem found."""
    money = parse_amount(amount, currency)
    check_account(debtor_account, "debtor")
    check_account(creditor_account, "creditor")
    if creditor_account == debtor_account:
        raise PaymentRejected(ReasonCode.ACCOUNT_INVALID, "creditor account equals the debtor account")
    name = check_text(creditor_name, "creditor name", 1, 70)
    creditor = Party(name, creditor_account, BankCode(bank_scheme, bank_code or ""),
                     check_text(bank_name, "bank name", 1, 70))
    return PaymentInstruction(
        client_ref=client_ref,
        debtor_account=debtor_account,
        amount=money,
        creditor=creditor,
        purpose=check_text(purpose, "purpose", 1, 60),
        end_to_end_id=end_to_end_id,
        remark=check_text(remark, "remark", 0, 140),
        requested_date=requested_date,
        urgency=urgency if urgency in URGENCIES else "NORMAL",
    )


@dataclass(frozen=True, slots=True)
class SubmittedPayment:
    """One payment as an ERP submitted it, in a PaymentOrder or in a payment file: its instruction, or why it
    cannot be one (a problem refuses this payment only; the others go on). `where` names its place in a file
    (e.g. "PmtInf[1]/CdtTrfTxInf[3]" or "/payments/2") so that the ERP team can fix it; `order_digest` is
    what an approver signs (spec section 5), known once the payment is in its signed form."""

    client_ref: str                         # the idempotency key (a file's EndToEndId or own reference)
    instruction: PaymentInstruction | None
    problem: PaymentRejected | None = None
    where: str = ""
    # Set by the gateway, never by an adapter (the golden files of adapters/kit.py leave it out).
    order_digest: str = field(default="", metadata={"set_by": "gateway"})
    # The block of the file it came in (pain.001 PmtInfId), kept to name it in the status reports (pain.002).
    payment_info_id: str | None = field(default=None, metadata={"set_by": "gateway"})


@dataclass(frozen=True, slots=True)
class PaymentStatus:
    """What the gateway reports about one payment (PaymentStatus on the wire)."""

    client_ref: str
    state: PaymentState
    payment_id: str | None = None
    reason: ReasonCode | None = None
    reason_text: str | None = None
    approvals_required: int = 0
    approvals_given: int = 0
    order_digest: str | None = None
    updated: dt.datetime | None = None
    amount: Money | None = None            # for status documents (pain.002) that repeat the order
    end_to_end_id: str | None = None
    debtor_account: str | None = None
    rules: tuple = ()                      # domain.rules.Hit: the fund-flow rules that fired, and why
    payment_info_id: str | None = None     # the block of the ERP file it came in (pain.001 PmtInfId), if any


@dataclass(frozen=True, slots=True)
class Balance:
    account: str
    currency: str
    booked: Money
    available: Money
    as_of: dt.datetime


@dataclass(frozen=True, slots=True)
class AccountInfo:
    account: str
    name: str
    currency: str
    grants: tuple[Grant, ...]
    single_limit: Money | None = None
    daily_limit: Money | None = None


@dataclass(frozen=True, slots=True)
class StatementEntry:
    entry_id: int
    booked: dt.datetime
    value_date: dt.date
    direction: str  # CRDT | DBIT
    amount: Money
    balance_after: Money
    counterparty: Party | None
    bank_ref: str
    narrative: str
    client_ref: str | None = None
    end_to_end_id: str | None = None
    reversal: bool = False


@dataclass(frozen=True, slots=True)
class Statement:
    account: str
    currency: str
    opening: Money
    opening_date: dt.date
    closing: Money
    closing_date: dt.date
    entries: tuple[StatementEntry, ...] = field(default_factory=tuple)
    next_cursor: str = ""
    complete: bool = True
