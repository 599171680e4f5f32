"""Cancelling payments not yet sent for clearing; approval requests while no policy asks for approval."""
from __future__ import annotations

from conftest import OPERATING, SUPPLIER, snapshot
from gateway import client as dl
from gateway.xmlsafe import q, text
from test_payments import balance, statuses


def external(client, ref, amount="250.00"):
    answer = client.call(dl.payment_order(dl.payment(ref, OPERATING, amount, "上海某某科技有限公司",
                                                     "31001234567890", scheme="CNAPS", bank_code="102290012345")))
    return statuses(answer)[0][3]


def test_maker_cancels_an_accepted_payment_and_the_hold_is_released(maker):
    pid = external(maker, "CAN-1")
    assert balance(maker, OPERATING) == ("1000000.00", "999750.00")
    answer = maker.call(dl.cancel(pid, "wrong invoice"))
    assert statuses(answer)[0][1:3] == ("CANCELLED", None)
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


def test_approval_without_a_pending_payment(maker, checker, viewer):
    pid = external(maker, "APP-1")
    digest = text(maker.call(dl.status_query("APP-1")).body.find(f"{q('PaymentStatus')}/{q('OrderDigest')}"))
    assert viewer.call(dl.approval(pid, digest)).code == "PERMISSION_DENIED"
    answer = checker.call(dl.approval(pid, digest))
    assert (answer.status, answer.code) == (404, "NOT_FOUND") and "not waiting for approval" in answer.detail
