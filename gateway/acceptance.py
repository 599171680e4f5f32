"""The accept decisions: whether a payment is accepted, in which state and why, or the error that refuses it.

Plain functions over the facts that gateway/payments.py gathers under the accounts' locks, so that every
branch is tested without a database (tests/gateway/test_acceptance.py). The checks run in a fixed order and
the first refusal wins, which the tests pin: the operator's grant on the debtor account, the creditor account
if it is one of this bank's, the rules, the daily limit, the funds.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from domain.codes import Grant, PaymentState, ReasonCode
from domain.errors import PaymentRejected
from domain.models import PaymentInstruction, SubmittedPayment
from domain.rules import Hit, Outcome, RuleRejected, outcome_of
from gateway import rule_facts
from gateway.directory import AccountGrant, ApprovalTiers
from gateway.ledger import Locked
from gateway.payment_record import PaymentRecord


# Facts and Decision are not frozen: one of each is built per payment, and a frozen dataclass takes more
# than twice as long to build (a 10,000-payment file builds 10,000).
@dataclass(slots=True)
class Facts:
    """One payment's facts as they stand when it is decided: under the accounts' locks, after the batch's
    payments before it. Two of them cost database work, so they come as readers that decide calls only once
    its checks get that far, each at most once: the rules are judged only for a payment its grant and
    creditor admit, and the maker's use of today's limit is read only under a grant with a daily limit."""

    operator: str                       # the maker, named when a grant refuses
    grant: AccountGrant | None          # the maker's grant on the debtor account; None: not one of theirs
    internal: bool                      # the creditor's bank is this bank
    creditor: Locked | None             # the creditor account as locked (read only when internal)
    tiers: ApprovalTiers
    available: int                      # the debtor account's balance less its holds, minor units
    judge: Callable[[], Sequence[Hit]]  # the rules that fire on the payment
    used_today: Callable[[], int]       # what the maker has paid from the debtor account today, minor units


@dataclass(slots=True)
class Decision:
    """An accepted payment: the state it is created in, and why (its creation's event and audit record)."""

    state: PaymentState                 # PENDING_APPROVAL or ACCEPTED
    approvals_required: int
    hits: Sequence[Hit]                 # rules that fired, none of them rejecting
    held: bool                          # a rule holds it for an approver
    why: str


def retried(stored: PaymentRecord, p: SubmittedPayment, visible: bool) -> PaymentRecord:
    """A payment whose ClientRef is stored already: the stored one if it is the same payment, answered as a
    retry. `visible`: the operator holds some grant on its debtor account."""
    if stored.content_hash != p.instruction.content_hash():
        raise PaymentRejected(ReasonCode.DUPLICATE_REFERENCE,
                              f"ClientRef {p.client_ref} was used before for a different payment")
    if not visible:
        # Retries are answered before the grant checks (a maker who lost 'pay' still learns its payment
        # exists), but only to operators who may see the account at all.
        raise PaymentRejected(ReasonCode.ACCOUNT_INVALID, f"unknown debtor account {stored.debtor_account}")
    return stored


def decide(ins: PaymentInstruction, facts: Facts) -> Decision:
    """Accept a new payment, or raise the PaymentRejected (a RuleRejected for the rules) that refuses it."""
    grant = _granted(ins, facts.grant, facts.operator)
    if facts.internal:
        _creditor_fits(ins, facts.creditor)
    hits = list(facts.judge())
    outcome = outcome_of(hits)
    if outcome == Outcome.REJECT:
        raise RuleRejected(hits)
    held = outcome == Outcome.HOLD
    required = facts.tiers.required(ins.debtor_account, ins.amount.currency, ins.amount.minor)
    if held:
        required = max(required, 1)   # a rule's hold is released by an approver, like a threshold
    if grant.daily_limit is not None:
        _within_daily_limit(ins, grant, facts.used_today())
    if facts.available < ins.amount.minor:
        raise PaymentRejected(ReasonCode.INSUFFICIENT_FUNDS,
                              f"available balance of {ins.debtor_account} is less than {ins.amount.text()}")
    why = f"waits for {required} approval(s), funds held" if required else "accepted, funds held"
    if held:
        why = f"held by rules ({rule_facts.summary(hits)}); {why}"
    state = PaymentState.PENDING_APPROVAL if required else PaymentState.ACCEPTED
    return Decision(state, required, hits, held, why)


def _granted(ins: PaymentInstruction, grant: AccountGrant | None, operator: str) -> AccountGrant:
    if grant is None:
        # Unknown and not-granted accounts look the same: an operator never learns of others' accounts.
        raise PaymentRejected(ReasonCode.ACCOUNT_INVALID, f"unknown debtor account {ins.debtor_account}")
    if Grant.PAY not in grant.grants:
        raise PaymentRejected(ReasonCode.PERMISSION_DENIED,
                              f"operator {operator} may not pay from {ins.debtor_account}")
    if ins.amount.currency != grant.currency:
        raise PaymentRejected(ReasonCode.CURRENCY_NOT_ALLOWED, f"account {ins.debtor_account} is in "
                                                               f"{grant.currency}, not {ins.amount.currency}")
    if grant.single_limit is not None and ins.amount.minor > grant.single_limit:
        raise PaymentRejected(ReasonCode.LIMIT_SINGLE,
                              f"{ins.amount.text()} is over the single-payment limit "
                              f"{grant.money(grant.single_limit).text()}")
    return grant


def _creditor_fits(ins: PaymentInstruction, account: Locked | None) -> None:
    if account is None or account.client_id is None:
        raise PaymentRejected(ReasonCode.ACCOUNT_INVALID,
                              f"creditor account {ins.creditor.account} is not an account of this bank")
    if account.currency != ins.amount.currency:
        raise PaymentRejected(ReasonCode.CURRENCY_NOT_ALLOWED,
                              f"creditor account {ins.creditor.account} is in {account.currency}")


def _within_daily_limit(ins: PaymentInstruction, grant: AccountGrant, used: int) -> None:
    if used + ins.amount.minor > grant.daily_limit:
        raise PaymentRejected(ReasonCode.LIMIT_DAILY,
                              f"today's payments would reach {grant.money(used + ins.amount.minor).text()}, "
                              f"over the daily limit {grant.money(grant.daily_limit).text()}")
