"""The accept decisions (gateway/acceptance.py) without a database: every branch, the order in which the
checks refuse, and that the facts costing database work are read only when a check gets that far."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.codes import Grant, PaymentState, ReasonCode
from domain.errors import PaymentRejected
from domain.models import SubmittedPayment, build_instruction
from domain.rules import Hit, Outcome, RuleRejected
from gateway.acceptance import Decision, Facts, decide, retried
from gateway.directory import AccountGrant, ApprovalTiers
from gateway.ledger import Locked
from gateway.payment_record import PaymentRecord

DEBTOR, PAYEE = "6222000000000001", "6222000000000002"
NOW = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)
HOLD = Hit("new_payee", Outcome.HOLD, ReasonCode.RULE_NEW_PAYEE, "first payment to this payee")
REJECT = Hit("block_list", Outcome.REJECT, ReasonCode.RULE_BLOCKED_COUNTERPARTY, "payee is on the block list")


def instruction(amount="100.00", currency="CNY", internal=False, ref="R-1"):
    return build_instruction(client_ref=ref, debtor_account=DEBTOR, amount=amount, currency=currency,
                             creditor_name="ACME Trading", creditor_account=PAYEE,
                             bank_scheme="INTERNAL" if internal else "CNAPS",
                             bank_code="" if internal else "102290012345", bank_name=None, purpose="goods")


def grant(rights=(Grant.PAY,), currency="CNY", single=None, daily=None):
    return AccountGrant(DEBTOR, "Operating", currency, frozenset(rights), single, daily)


class Reader:
    """A fact read on demand, counting the reads."""

    def __init__(self, value):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


def facts(**changed) -> Facts:
    base = dict(operator="alice", grant=grant(), internal=False, creditor=None, tiers=ApprovalTiers(()),
                available=1_000_000, judge=Reader([]), used_today=Reader(0))
    return Facts(**{**base, **changed})


def refusal(ins, f) -> tuple[ReasonCode, str]:
    with pytest.raises(PaymentRejected) as caught:
        decide(ins, f)
    return caught.value.reason, caught.value.detail


# ---- accepted ----------------------------------------------------------------------------------------------

def test_a_payment_nothing_objects_to_is_accepted_with_its_funds_held():
    assert decide(instruction(), facts()) == Decision(PaymentState.ACCEPTED, approvals_required=0, hits=[],
                                                      held=False, why="accepted, funds held")


def test_a_tier_the_amount_reaches_makes_it_wait_for_approvals():
    tiers = ApprovalTiers((("", "CNY", 10_000, 1), (DEBTOR, "CNY", 50_000, 2), ("", "USD", 0, 3)))
    assert decide(instruction("99.99"), facts(tiers=tiers)).state == PaymentState.ACCEPTED
    waits = decide(instruction("100.00"), facts(tiers=tiers))
    assert (waits.state, waits.approvals_required, waits.why) == (
        PaymentState.PENDING_APPROVAL, 1, "waits for 1 approval(s), funds held")
    assert decide(instruction("500.00"), facts(tiers=tiers)).approvals_required == 2


def test_a_rule_that_holds_needs_one_approver_at_least():
    held = decide(instruction(), facts(judge=Reader([HOLD])))
    assert (held.state, held.approvals_required, held.held, held.hits) == (
        PaymentState.PENDING_APPROVAL, 1, True, [HOLD])
    assert held.why == ("held by rules (RULE_NEW_PAYEE: first payment to this payee); "
                        "waits for 1 approval(s), funds held")
    tiers = ApprovalTiers((("", "CNY", 0, 2),))
    assert decide(instruction(), facts(judge=Reader([HOLD]), tiers=tiers)).approvals_required == 2


def test_within_the_bank_the_creditor_must_be_a_customers_account_in_the_currency():
    ins = instruction(internal=True)
    ours = Locked(PAYEE, "OTHER", "Payee Ltd", "CNY", 0, 0)
    assert decide(ins, facts(internal=True, creditor=ours)).state == PaymentState.ACCEPTED
    assert refusal(ins, facts(internal=True, creditor=None)) == (
        ReasonCode.ACCOUNT_INVALID, f"creditor account {PAYEE} is not an account of this bank")
    books = dataclasses.replace(ours, client_id=None)   # one of the bank's own books: nobody's to pay into
    assert refusal(ins, facts(internal=True, creditor=books))[0] == ReasonCode.ACCOUNT_INVALID
    usd = dataclasses.replace(ours, currency="USD")
    assert refusal(ins, facts(internal=True, creditor=usd)) == (
        ReasonCode.CURRENCY_NOT_ALLOWED, f"creditor account {PAYEE} is in USD")


def test_to_another_bank_the_creditor_is_not_looked_at():
    assert decide(instruction(), facts(internal=False, creditor=None)).state == PaymentState.ACCEPTED


# ---- refused, one check at a time -----------------------------------------------------------------------------

def test_the_grant_refuses_in_its_own_order():
    ins = instruction("100.00")
    assert refusal(ins, facts(grant=None)) == (ReasonCode.ACCOUNT_INVALID, f"unknown debtor account {DEBTOR}")
    assert refusal(ins, facts(grant=grant(rights=(Grant.QUERY, Grant.APPROVE), currency="USD"))) == (
        ReasonCode.PERMISSION_DENIED, f"operator alice may not pay from {DEBTOR}")
    assert refusal(ins, facts(grant=grant(currency="USD", single=1))) == (
        ReasonCode.CURRENCY_NOT_ALLOWED, f"account {DEBTOR} is in USD, not CNY")
    assert refusal(ins, facts(grant=grant(single=9_999))) == (
        ReasonCode.LIMIT_SINGLE, "100.00 is over the single-payment limit 99.99")
    assert decide(ins, facts(grant=grant(single=10_000))).state == PaymentState.ACCEPTED


def test_a_rejecting_rule_refuses_with_every_hit_attached():
    with pytest.raises(RuleRejected) as caught:
        decide(instruction(), facts(judge=Reader([HOLD, REJECT])))
    assert caught.value.reason == ReasonCode.RULE_BLOCKED_COUNTERPARTY and caught.value.hits == (HOLD, REJECT)


def test_the_daily_limit_counts_what_the_maker_paid_today():
    assert refusal(instruction("30.00"), facts(grant=grant(daily=10_000), used_today=Reader(7_001))) == (
        ReasonCode.LIMIT_DAILY, "today's payments would reach 100.01, over the daily limit 100.00")


def test_the_funds_must_cover_the_amount():
    assert refusal(instruction("100.00"), facts(available=9_999)) == (
        ReasonCode.INSUFFICIENT_FUNDS, f"available balance of {DEBTOR} is less than 100.00")


@given(amount=st.integers(1, 10**12), daily=st.integers(0, 10**12), used=st.integers(0, 10**12))
def test_the_daily_limit_is_reached_not_passed(amount, daily, used):
    ins = instruction(f"{amount // 100}.{amount % 100:02d}")
    f = facts(grant=grant(daily=daily), used_today=Reader(used), available=amount)
    if used + amount > daily:
        assert refusal(ins, f)[0] == ReasonCode.LIMIT_DAILY
    else:
        assert decide(ins, f).state == PaymentState.ACCEPTED


@given(amount=st.integers(1, 10**12), available=st.integers(-10**6, 10**12))
def test_the_funds_may_be_spent_to_the_last_fen(amount, available):
    ins = instruction(f"{amount // 100}.{amount % 100:02d}")
    if available < amount:
        assert refusal(ins, facts(available=available))[0] == ReasonCode.INSUFFICIENT_FUNDS
    else:
        assert decide(ins, facts(available=available)).state == PaymentState.ACCEPTED


# ---- which refusal wins, and which facts are read --------------------------------------------------------------

def test_a_grant_refusal_wins_and_nothing_costly_is_read():
    judge, used = Reader([REJECT]), Reader(10**9)
    everything_wrong = facts(grant=grant(rights=(), daily=1), internal=True, creditor=None, available=0,
                             judge=judge, used_today=used)
    assert refusal(instruction(internal=True), everything_wrong)[0] == ReasonCode.PERMISSION_DENIED
    assert (judge.calls, used.calls) == (0, 0)


def test_the_creditor_is_refused_before_the_rules_are_judged():
    judge = Reader([REJECT])
    assert refusal(instruction(internal=True), facts(internal=True, judge=judge))[0] == ReasonCode.ACCOUNT_INVALID
    assert judge.calls == 0


def test_a_rejecting_rule_wins_over_the_limit_and_the_funds_which_are_not_read():
    used = Reader(10**9)
    with pytest.raises(RuleRejected):
        decide(instruction(), facts(grant=grant(daily=1), available=0, judge=Reader([REJECT]), used_today=used))
    assert used.calls == 0


def test_the_daily_limit_wins_over_the_funds():
    assert refusal(instruction(), facts(grant=grant(daily=1), available=0))[0] == ReasonCode.LIMIT_DAILY


def test_each_costly_fact_is_read_once_and_the_days_use_only_under_a_daily_limit():
    judge, used = Reader([]), Reader(0)
    decide(instruction(), facts(judge=judge, used_today=used))
    assert (judge.calls, used.calls) == (1, 0)
    decide(instruction(), facts(grant=grant(daily=10**9), judge=judge, used_today=used))
    assert (judge.calls, used.calls) == (2, 1)


# ---- a ClientRef stored already ---------------------------------------------------------------------------------

def stored(ins) -> PaymentRecord:
    return PaymentRecord(
        id="P20261125ABCDEF012345", client_id="DEMO", client_ref=ins.client_ref, end_to_end_id=ins.e2e,
        batch_id=None, debtor_account=DEBTOR, amount=ins.amount.minor, currency="CNY", creditor_name="ACME Trading",
        creditor_account=PAYEE, creditor_bank_scheme="CNAPS", creditor_bank_code="102290012345",
        creditor_bank_name=None, purpose="goods", remark=None, requested_date=NOW.date(), urgency="NORMAL",
        state="ACCEPTED", reason_code=None, reason_text=None, order_digest="d", content_hash=ins.content_hash(),
        maker="alice", approvals_required=0, approvals_given=0, created_at=NOW, updated_at=NOW, sent_at=None,
        attempts=0, creditor_key="acmetrading", rule_hits=None)


def test_a_retry_is_answered_with_the_stored_payment_to_whoever_may_see_its_account():
    ins = instruction()
    record = stored(ins)
    assert retried(record, SubmittedPayment("R-1", ins, order_digest="d"), visible=True) is record
    with pytest.raises(PaymentRejected) as caught:
        retried(record, SubmittedPayment("R-1", ins, order_digest="d"), visible=False)
    assert (caught.value.reason, caught.value.detail) == (ReasonCode.ACCOUNT_INVALID,
                                                          f"unknown debtor account {DEBTOR}")


def test_a_clientref_reused_for_another_payment_is_a_duplicate_even_unseen():
    changed = instruction("100.01")
    for visible in (True, False):
        with pytest.raises(PaymentRejected) as caught:
            retried(stored(instruction()), SubmittedPayment("R-1", changed, order_digest="d"), visible=visible)
        assert (caught.value.reason, caught.value.detail) == (
            ReasonCode.DUPLICATE_REFERENCE, "ClientRef R-1 was used before for a different payment")
