"""Ex-ante fund-flow rules: pure decisions about one payment, given the facts around it.

Every payment passes these between validation and acceptance (gateway/rule_facts.py gathers the facts from the
database; nothing here does I/O). A rule either says nothing or fires with an outcome: HOLD (the payment
waits in PENDING_APPROVAL with the rule's reason code) or REJECT (the payment is refused with it). The
payment gets the most severe outcome of all fired rules, and every fired rule is reported with why, so an
approver sees why a payment waits.

Amounts in rule parameters are decimal strings in the payment's currency, as everywhere in configuration.
"""
from __future__ import annotations

import datetime as dt
import re
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from domain.codes import PaymentState, ReasonCode
from domain.errors import PaymentRejected
from domain.models import PaymentInstruction
from domain.money import Money, minor_units


class Outcome(StrEnum):
    HOLD = "HOLD"
    REJECT = "REJECT"


@dataclass(frozen=True)
class Hit:
    """One rule that fired on a payment: which, with what outcome and code, and why (for the approver)."""

    rule: str
    outcome: Outcome
    code: ReasonCode
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "outcome": self.outcome.value, "code": self.code.value, "detail": self.detail}

    @classmethod
    def from_dict(cls, d: Mapping[str, str]) -> Hit:
        return cls(d["rule"], Outcome(d["outcome"]), ReasonCode(d["code"]), d["detail"])


class RuleRejected(PaymentRejected):
    """A payment refused by the rules stage: the first rejecting rule's code, every fired rule attached."""

    def __init__(self, hits: list[Hit]):
        first = next(h for h in hits if h.outcome == Outcome.REJECT)
        why = first.detail if len(hits) == 1 else "; ".join(f"{h.code.value}: {h.detail}" for h in hits)
        super().__init__(first.code, why)
        self.hits = tuple(hits)


def outcome_of(hits: list[Hit]) -> Outcome | None:
    """The payment's outcome: REJECT beats HOLD; None when no rule fired."""
    if any(h.outcome == Outcome.REJECT for h in hits):
        return Outcome.REJECT
    return Outcome.HOLD if hits else None


# ---- parameters, one model per rule (validated when configured, so evaluation never meets bad input) --------

class RuleParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True          # false on an account switches off the client-wide rule of that name
    action: Literal["HOLD", "REJECT"] = "HOLD"


_AMOUNT_TEXT = re.compile(r"[0-9]{1,15}(\.[0-9]{1,6})?", re.ASCII)


def _check_amount(value: str | None) -> str | None:
    """The amount grammar of configuration (zero allowed: a floor may be 0)."""
    if value is not None and not _AMOUNT_TEXT.fullmatch(value):
        raise ValueError(f"{value!r} is not a plain decimal amount such as 50000.00")
    return value


class AllowList(RuleParams):
    """Only registered counterparties (`directlink rules payee add`) may be paid."""
    action: Literal["HOLD", "REJECT"] = "REJECT"


class BlockList(RuleParams):
    """Payees on a loaded block list (names in Chinese or pinyin, accounts). On whenever a list is loaded."""
    action: Literal["HOLD", "REJECT"] = "REJECT"


class NewPayee(RuleParams):
    """First payment to an account never paid before, or a known payee name with another account."""


class Duplicate(RuleParams):
    """Same payee account and amount within the window under another ClientRef."""
    window_days: int = Field(7, ge=1, le=366)


class PayeeDailyCap(RuleParams):
    """At most `cap` per payee account per business day (all of the client's accounts together)."""
    action: Literal["HOLD", "REJECT"] = "REJECT"
    cap: str
    _cap = field_validator("cap")(classmethod(lambda cls, v: _check_amount(v)))


class Velocity(RuleParams):
    """At most `max_count` payments or `max_amount` in total from the account within `window_minutes`."""
    action: Literal["HOLD", "REJECT"] = "REJECT"
    window_minutes: int = Field(60, ge=1, le=7 * 24 * 60)
    max_count: int | None = Field(None, ge=1)
    max_amount: str | None = None
    _max = field_validator("max_amount")(classmethod(lambda cls, v: _check_amount(v)))


class AmountAnomaly(RuleParams):
    """An amount over `factor` times the median of earlier payments to this payee account."""
    factor: float = Field(5.0, gt=1.0)
    min_history: int = Field(3, ge=1)


class BusinessHours(RuleParams):
    """Same-day payments only inside the window of their urgency (bank time), weekdays only if so set."""
    action: Literal["HOLD", "REJECT"] = "REJECT"
    windows: dict[Literal["NORMAL", "URGENT"], str] = {"NORMAL": "00:00-24:00", "URGENT": "09:00-17:00"}
    weekdays_only: bool = False

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: dict[str, str]) -> dict[str, str]:
        for window in value.values():
            _window(window)
        return value


class CashFloor(RuleParams):
    """Hold a payment that would take the account's projected available balance below `floor`."""
    floor: str
    _floor = field_validator("floor")(classmethod(lambda cls, v: _check_amount(v)))


RULES: dict[str, type[RuleParams]] = {
    "allow_list": AllowList, "block_list": BlockList, "new_payee": NewPayee, "duplicate": Duplicate,
    "payee_daily_cap": PayeeDailyCap, "velocity": Velocity, "amount_anomaly": AmountAnomaly,
    "business_hours": BusinessHours, "cash_floor": CashFloor,
}


class RuleConfigInvalid(ValueError):
    """A rule's name or parameters are not valid; the message names the rule and the field."""


def parse_params(rule: str, params: Mapping[str, object]) -> RuleParams:
    model = RULES.get(rule)
    if model is None:
        raise RuleConfigInvalid(f"unknown rule {rule!r} (known: {', '.join(RULES)})")
    try:
        return model.model_validate(dict(params))
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or rule}: {e['msg']}" for e in err.errors())
        raise RuleConfigInvalid(f"rule {rule}: {problems}") from None


_WINDOW = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-(([01][0-9]|2[0-3]):([0-5][0-9])|24:00)")


@lru_cache(maxsize=256)
def _window(text: str) -> tuple[int, int]:
    """'09:00-16:30' as minutes after midnight [start, end)."""
    m = _WINDOW.fullmatch(text)
    if m is None:
        raise ValueError(f"window {text!r} is not HH:MM-HH:MM")
    start = int(m[1]) * 60 + int(m[2])
    end = 24 * 60 if m[3] == "24:00" else int(m[4]) * 60 + int(m[5])
    if end <= start:
        raise ValueError(f"window {text!r} ends before it starts")
    return start, end


# ---- facts --------------------------------------------------------------------------------------------------

# Payments that took (or will take) money out: what counts towards duplicates, caps and velocity.
LIVE = frozenset({PaymentState.PENDING_APPROVAL, PaymentState.ACCEPTED, PaymentState.PROCESSING,
                  PaymentState.UNKNOWN, PaymentState.SETTLED})
# Payments that reached the payee or are on their way after every check: what makes a payee known.
PAID = LIVE - {PaymentState.PENDING_APPROVAL}


@dataclass(frozen=True)
class Earlier:
    """An earlier payment a rule names (the probable original of a duplicate)."""
    payment_id: str
    client_ref: str
    created: dt.datetime


@dataclass(frozen=True)
class Listed:
    """A block-list entry that designates the payee (matched by gateway/rule_facts.py with domain/names.py)."""
    list_name: str
    name: str | None
    account: str | None
    by: Literal["name", "account"]


@dataclass(frozen=True)
class Facts:
    """What the rules know about one payment. gateway/rule_facts.py reads each from the database, already
    narrowed by SQL (the payment's transaction, its accounts locked), and only those the active rules need."""

    instruction: PaymentInstruction
    now: dt.datetime                        # in the bank's time zone
    registered: bool = False                # the payee account is a registered counterparty
    known_account: bool = False             # ... or was paid before (PAID)
    name_accounts: tuple[str, ...] = ()     # other accounts paid or registered under the payee's name
    duplicate_of: Earlier | None = None     # a LIVE payment, same account and amount, within the window
    payee_today: int = 0                    # LIVE payments to the payee account today (minor units)
    recent_count: int = 0                   # LIVE payments from the debtor account in the velocity window
    recent_amount: int = 0
    payee_amounts: tuple[int, ...] = ()     # the newest PAID amounts to the payee account
    listed: tuple[Listed, ...] = ()
    available: int = 0                      # the debtor account's available balance (minor units)

    @property
    def today(self) -> dt.date:
        return self.now.date()


def evaluate(rules: Mapping[str, RuleParams], facts: Facts) -> list[Hit]:
    """Every enabled rule's finding on this payment, in a fixed order (the order of _CHECKS)."""
    hits = []
    for name, check in _CHECKS.items():
        params = rules.get(name)
        if params is None or not params.enabled:
            continue
        detail = check(params, facts)
        if detail is not None:
            code, why = detail
            hits.append(Hit(name, Outcome(params.action), code, why))
    return hits


Finding = tuple[ReasonCode, str] | None


def _money(minor: int, facts: Facts) -> str:
    return Money.from_minor(minor, facts.instruction.amount.currency).text()


def _amount(text: str, facts: Facts) -> int:
    """A configured amount in the payment currency's minor units (extra decimals cut, never rounded up)."""
    return _minor(text, facts.instruction.amount.currency)


@lru_cache(maxsize=1024)
def _minor(text: str, currency: str) -> int:
    return int(Decimal(text).scaleb(minor_units()[currency]))


def _allow_list(p: AllowList, f: Facts) -> Finding:
    if f.registered:
        return None
    return ReasonCode.RULE_PAYEE_NOT_ALLOWED, f"account {f.instruction.creditor.account} is not a registered counterparty"


def _block_list(p: BlockList, f: Facts) -> Finding:
    if not f.listed:
        return None
    hit = f.listed[0]
    said = (f"payee account {f.instruction.creditor.account}" if hit.by == "account"
            else f"payee name {f.instruction.creditor.name!r} matches {hit.name!r}")
    more = f" (and {len(f.listed) - 1} more)" if len(f.listed) > 1 else ""
    return ReasonCode.RULE_BLOCKED_COUNTERPARTY, f"{said} on block list {hit.list_name}{more}"


def _new_payee(p: NewPayee, f: Facts) -> Finding:
    ins = f.instruction
    if f.known_account or f.registered:
        return None
    if f.name_accounts:
        return (ReasonCode.RULE_PAYEE_ACCOUNT_CHANGED, f"{ins.creditor.name} was paid to account "
                f"{f.name_accounts[0]} before; this payment goes to {ins.creditor.account}")
    return ReasonCode.RULE_NEW_PAYEE, f"first payment to account {ins.creditor.account} ({ins.creditor.name})"


def _duplicate(p: Duplicate, f: Facts) -> Finding:
    x = f.duplicate_of
    if x is None or x.created < f.now - dt.timedelta(days=p.window_days):
        return None
    return (ReasonCode.RULE_PROBABLE_DUPLICATE, f"same payee account and amount as payment {x.payment_id} "
            f"(ClientRef {x.client_ref}) of {x.created.astimezone(f.now.tzinfo):%Y-%m-%d %H:%M}")


def _payee_daily_cap(p: PayeeDailyCap, f: Facts) -> Finding:
    ins = f.instruction
    cap, total = _amount(p.cap, f), f.payee_today + ins.amount.minor
    if total > cap:
        return (ReasonCode.RULE_CAP_EXCEEDED, f"payments to {ins.creditor.account} today would reach "
                f"{_money(total, f)}, over the cap {_money(cap, f)}")
    return None


def _velocity(p: Velocity, f: Facts) -> Finding:
    if p.max_count is not None and f.recent_count + 1 > p.max_count:
        return (ReasonCode.RULE_VELOCITY_EXCEEDED, f"{f.recent_count + 1} payments from the account within "
                f"{p.window_minutes} min, over {p.max_count}")
    if p.max_amount is not None:
        total = f.recent_amount + f.instruction.amount.minor
        if total > _amount(p.max_amount, f):
            return (ReasonCode.RULE_VELOCITY_EXCEEDED, f"{_money(total, f)} from the account within "
                    f"{p.window_minutes} min, over {p.max_amount}")
    return None


def _amount_anomaly(p: AmountAnomaly, f: Facts) -> Finding:
    ins = f.instruction
    if len(f.payee_amounts) < p.min_history:
        return None
    median = statistics.median(f.payee_amounts)
    if ins.amount.minor > p.factor * median:
        return (ReasonCode.RULE_AMOUNT_ANOMALY, f"{ins.amount.text()} is over {p.factor:g} times the median "
                f"{_money(int(median), f)} of {len(f.payee_amounts)} earlier payments to {ins.creditor.account}")
    return None


def _business_hours(p: BusinessHours, f: Facts) -> Finding:
    ins = f.instruction
    if ins.requested_date is not None and ins.requested_date > f.today:
        return None   # executed on its date, not now
    if p.weekdays_only and f.now.weekday() >= 5:
        return ReasonCode.RULE_OUTSIDE_WINDOW, f"{f.now:%A} is not a business day for {ins.urgency} payments"
    window = p.windows.get(ins.urgency)
    if window is None:
        return None
    start, end = _window(window)
    minute = f.now.hour * 60 + f.now.minute
    if not start <= minute < end:
        return (ReasonCode.RULE_OUTSIDE_WINDOW,
                f"{ins.urgency} payments are taken {window} (bank time); it is {f.now:%H:%M}")
    return None


def _cash_floor(p: CashFloor, f: Facts) -> Finding:
    # Available already has every accepted-but-unsettled outflow (future-dated ones too) held: it is the
    # lowest the account is projected to go without counting receipts that may not come.
    floor = _amount(p.floor, f)
    after = f.available - f.instruction.amount.minor
    if after < floor:
        return (ReasonCode.RULE_CASH_FLOOR, f"would leave {_money(after, f)} available on "
                f"{f.instruction.debtor_account}, below the floor {_money(floor, f)}")
    return None


# Each check takes its own RuleParams subclass, which a callable type cannot say per key: evaluate hands it
# the params that parse_params built with RULES[name], the class for the same name.
_CHECKS: dict[str, Callable[[Any, Facts], Finding]] = {
    "block_list": _block_list, "allow_list": _allow_list, "new_payee": _new_payee, "duplicate": _duplicate,
    "payee_daily_cap": _payee_daily_cap, "velocity": _velocity, "amount_anomaly": _amount_anomaly,
    "business_hours": _business_hours, "cash_floor": _cash_floor,
}
assert set(_CHECKS) == set(RULES)
