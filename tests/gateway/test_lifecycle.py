"""Approvals (maker-checker, bound to the OrderDigest) and cancellation before clearing."""
from __future__ import annotations

from conftest import OPERATING, SUPPLIER, booked_total, snapshot
from test_payments import balance, statuses

from gateway import directory
from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q, text


def external(client, ref, amount="250.00"):
    answer = client.call(dl.payment_order(dl.payment(ref, OPERATING, amount, "上海某某科技有限公司",
                                                     "31001234567890", scheme="CNAPS", bank_code="102290012345")))
    return statuses(answer)[0][3]


def test_maker_cancels_an_accepted_payment_and_the_hold_is_released(maker):
    pid = external(maker, "CAN-1")
    assert balance(maker, OPERATING) == ("1000000.00", "999750.00")
    answer = maker.call(dl.cancel(pid, "wrong invoice"))
    # the reason is the cancellation, with who cancelled it and why
    assert statuses(answer)[0][1:3] == ("CANCELLED", "CANCELLED_BY_CLIENT")
    assert balance(maker, OPERATING) == ("1000000.00", "1000000.00")
    # a retried cancel answers the same, and the reference stays bound to the cancelled payment
    assert statuses(maker.call(dl.cancel(pid)))[0][1] == "CANCELLED"
    again = maker.call(dl.payment_order(dl.payment("CAN-1", OPERATING, "250.00", "上海某某科技有限公司",
                                                   "31001234567890", scheme="CNAPS", bank_code="102290012345")))
    assert statuses(again)[0][1] == "CANCELLED"


def test_an_approver_may_cancel_a_viewer_may_not(maker, checker, viewer, gateway):
    pid = external(maker, "CAN-2")
    before = snapshot(gateway.engine)
    denied = viewer.call(dl.cancel(pid))
    assert (denied.status, denied.code) == (403, "PERMISSION_DENIED")
    assert snapshot(gateway.engine)["payments"] == before["payments"]
    assert statuses(checker.call(dl.cancel(pid)))[0][1] == "CANCELLED"


def test_settled_payment_is_not_cancellable(maker, gateway):
    pid = statuses(maker.call(dl.payment_order(dl.payment("CAN-3", OPERATING, "5.00", "ACME", SUPPLIER))))[0][3]
    before = snapshot(gateway.engine)
    answer = maker.call(dl.cancel(pid))
    assert answer.status == 200
    assert statuses(answer)[0][1:3] == ("SETTLED", "NOT_CANCELLABLE")
    after = snapshot(gateway.engine)
    assert (after["accounts"], after["payments"]) == (before["accounts"], before["payments"])


def test_cancel_of_an_unknown_payment_is_not_found(maker):
    answer = maker.call(dl.cancel("P20260101ABCDEF012345"))
    assert (answer.status, answer.code) == (404, "NOT_FOUND")


def big(client, ref, amount="250000.00", **kw):
    """A payment from the operating account over the demo's approval threshold (200,000.00)."""
    answer = client.call(dl.payment_order(dl.payment(ref, OPERATING, amount, "ACME", SUPPLIER, **kw)))
    return answer.body.find(q("PaymentStatus"))


def test_payment_over_the_threshold_waits_with_funds_held(maker):
    st = big(maker, "APP-1")
    assert text(st.find(q("State"))) == "PENDING_APPROVAL"
    assert (st.find(q("Approvals")).get("required"), st.find(q("Approvals")).get("given")) == ("1", "0")
    assert balance(maker, OPERATING) == ("1000000.00", "750000.00")


def test_checker_approves_exactly_what_the_maker_sent(maker, checker, gateway):
    st = big(maker, "APP-2")
    pid, digest = text(st.find(q("PaymentId"))), text(st.find(q("OrderDigest")))
    answer = checker.call(dl.approval(pid, digest))
    assert statuses(answer)[0][1:3] == ("SETTLED", None)     # internal: settles as soon as approved
    assert balance(maker, OPERATING) == ("750000.00", "750000.00")
    assert booked_total(gateway.engine) == 0
    assert statuses(checker.call(dl.approval(pid, digest)))[0][1] == "SETTLED"   # a retry changes nothing


def test_the_maker_may_not_approve_and_a_stale_digest_is_refused(maker, checker, gateway):
    st = big(maker, "APP-3")
    pid, digest = text(st.find(q("PaymentId"))), text(st.find(q("OrderDigest")))
    with gateway.engine.begin() as conn:   # let the maker hold 'approve' too: still not on its own payment
        directory.set_grant(conn, "DEMO", "maker", OPERATING, {"query", "pay", "approve"}, None, None,
                            gateway.clock())
    before = snapshot(gateway.engine)
    assert statuses(maker.call(dl.approval(pid, digest)))[0][1:3] == ("PENDING_APPROVAL", "APPROVAL_BY_MAKER")
    stale = "A" * 43 + "="
    assert statuses(checker.call(dl.approval(pid, stale)))[0][1:3] == \
        ("PENDING_APPROVAL", "APPROVAL_DIGEST_MISMATCH")
    assert snapshot(gateway.engine)["payments"] == before["payments"]


def test_one_reject_ends_it_and_releases_the_funds(maker, checker):
    st = big(maker, "APP-4")
    pid, digest = text(st.find(q("PaymentId"))), text(st.find(q("OrderDigest")))
    answer = checker.call(dl.approval(pid, digest, "REJECT"))
    assert statuses(answer)[0][1:3] == ("REJECTED", "APPROVAL_REJECTED")
    assert balance(maker, OPERATING) == ("1000000.00", "1000000.00")
    # the reference stays bound to the rejected payment
    assert statuses(maker.call(dl.status_query("APP-4")))[0][1] == "REJECTED"


def test_two_approvals_need_two_distinct_approvers(maker, checker, viewer, gateway, clock):
    with gateway.engine.begin() as conn:
        directory.set_approval_policy(conn, "DEMO", OPERATING, "200000.00", 2, clock())
        directory.set_grant(conn, "DEMO", "viewer", OPERATING, {"query", "approve"}, None, None, clock())
    st = big(maker, "APP-5")
    pid, digest = text(st.find(q("PaymentId"))), text(st.find(q("OrderDigest")))
    once = checker.call(dl.approval(pid, digest)).body.find(q("PaymentStatus"))
    assert text(once.find(q("State"))) == "PENDING_APPROVAL" and once.find(q("Approvals")).get("given") == "1"
    twice = checker.call(dl.approval(pid, digest)).body.find(q("PaymentStatus"))
    assert twice.find(q("Approvals")).get("given") == "1"                 # the same approver counts once
    assert statuses(viewer.call(dl.approval(pid, digest)))[0][1] == "SETTLED"


def test_approval_limit_of_the_approver(maker, checker, gateway, clock):
    with gateway.engine.begin() as conn:
        directory.set_grant(conn, "DEMO", "checker", OPERATING, {"query", "approve"}, None, None, clock(),
                            approve_limit="240000.00")
    st = big(maker, "APP-6")
    answer = checker.call(dl.approval(text(st.find(q("PaymentId"))), text(st.find(q("OrderDigest")))))
    assert statuses(answer)[0][1:3] == ("PENDING_APPROVAL", "LIMIT_SINGLE")


def test_only_approvers_may_decide(maker, viewer):
    st = big(maker, "APP-7")
    answer = viewer.call(dl.approval(text(st.find(q("PaymentId"))), text(st.find(q("OrderDigest")))))
    assert (answer.status, answer.code) == (403, "PERMISSION_DENIED")


def test_a_pending_payment_can_be_cancelled(maker):
    pid = text(big(maker, "APP-8").find(q("PaymentId")))
    assert statuses(maker.call(dl.cancel(pid)))[0][1] == "CANCELLED"
    assert balance(maker, OPERATING) == ("1000000.00", "1000000.00")


def test_client_wide_and_account_tiers_both_apply_the_stricter_wins(maker, gateway, clock):
    with gateway.engine.begin() as conn:
        directory.set_approval_policy(conn, "DEMO", "", "50000.00", 2, clock())            # client-wide, CNY
        directory.set_approval_policy(conn, "DEMO", "", "1.00", 3, clock(), currency="USD")  # other currency
    st = big(maker, "TIER-1", "60000.00")          # under the account's 200,000 tier, over the client's
    assert st.find(q("Approvals")).get("required") == "2"
    st = big(maker, "TIER-2", "250000.00")         # account tier (1) and client tier (2): 2
    assert st.find(q("Approvals")).get("required") == "2"
