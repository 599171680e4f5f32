"""Payments through the whole pipeline: settlement, holds, idempotency, limits, per-payment rejections."""
from __future__ import annotations

import concurrent.futures as cf

from conftest import OPERATING, PAYROLL, SUPPLIER, booked_total, snapshot

from gateway import directory
from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q, text


def statuses(answer):
    return [(text(s.find(q("ClientRef"))), text(s.find(q("State"))),
             (s.find(q("Reason")).get("code") if s.find(q("Reason")) is not None else None),
             text(s.find(q("PaymentId"))))
            for s in answer.body.iterfind(q("PaymentStatus"))]


def balance(client, account):
    b = client.call(dl.balance_query(account)).body.find(q("Balance"))
    return text(b.find(q("Booked"))), text(b.find(q("Available")))


def test_internal_payment_settles_at_once_and_books_both_sides(maker, gateway):
    answer = maker.call(dl.payment_order(dl.payment("P-1", OPERATING, "12500.00", "ACME", SUPPLIER)))
    assert answer.status == 200 and answer.code == "OK"
    [(ref, state, reason, pid)] = statuses(answer)
    assert (ref, state, reason) == ("P-1", "SETTLED", None) and pid.startswith("P")
    assert balance(maker, OPERATING) == ("987500.00", "987500.00")
    assert booked_total(gateway.engine) == 0


def test_external_payment_is_accepted_with_funds_held(maker, gateway):
    answer = maker.call(dl.payment_order(dl.payment(
        "P-2", OPERATING, "3800.50", "上海某某科技有限公司", "31001234567890", scheme="CNAPS",
        bank_code="102290012345")))
    assert statuses(answer)[0][1] == "ACCEPTED"
    assert balance(maker, OPERATING) == ("1000000.00", "996199.50")


def test_own_cnaps_prefix_counts_as_internal(maker):
    answer = maker.call(dl.payment_order(dl.payment("P-3", OPERATING, "1.00", "ACME", SUPPLIER,
                                                    scheme="CNAPS", bank_code="999100000001")))
    assert statuses(answer)[0][1] == "SETTLED"


def test_same_client_ref_same_content_returns_the_existing_payment(maker, gateway):
    order = dl.payment_order(dl.payment("P-4", OPERATING, "100.00", "ACME", SUPPLIER))
    first = statuses(maker.call(order))
    before = snapshot(gateway.engine)
    second = statuses(maker.call(order))          # a new message (new MessageId), the same ClientRef
    assert first == second
    after = snapshot(gateway.engine)
    assert after["accounts"] == before["accounts"] and after["payments"] == before["payments"]


def test_same_client_ref_different_content_is_duplicate_reference(maker, gateway):
    maker.call(dl.payment_order(dl.payment("P-5", OPERATING, "100.00", "ACME", SUPPLIER)))
    before = snapshot(gateway.engine)
    answer = maker.call(dl.payment_order(dl.payment("P-5", OPERATING, "101.00", "ACME", SUPPLIER)))
    assert statuses(answer)[0][1:3] == ("REJECTED", "DUPLICATE_REFERENCE")
    after = snapshot(gateway.engine)
    assert after["accounts"] == before["accounts"] and after["payments"] == before["payments"]


def test_each_payment_of_a_batch_stands_alone(maker):
    answer = maker.call(dl.payment_order(
        dl.payment("B-1", OPERATING, "10.00", "ACME", SUPPLIER),
        dl.payment("B-2", OPERATING, "NaN", "ACME", SUPPLIER),
        dl.payment("B-3", OPERATING, "10.00", "ACME", "12345", scheme="CNAPS", bank_code="12345"),
        dl.payment("B-4", OPERATING, "10.00", "ACME", SUPPLIER),
        batch_id="BATCH-1"))
    assert [s[1:3] for s in statuses(answer)] == [
        ("SETTLED", None), ("REJECTED", "AMOUNT_INVALID"), ("REJECTED", "BANK_CODE_INVALID"), ("SETTLED", None)]
    assert text(answer.body.find(q("BatchId"))) == "BATCH-1"


def test_single_limit(maker, gateway):
    before = snapshot(gateway.engine)
    answer = maker.call(dl.payment_order(dl.payment("L-1", OPERATING, "500000.01", "ACME", SUPPLIER)))
    assert statuses(answer)[0][1:3] == ("REJECTED", "LIMIT_SINGLE")
    assert snapshot(gateway.engine)["accounts"] == before["accounts"]


def test_daily_limit_counts_todays_payments(maker):
    # maker's payroll grant: single 100,000, daily 300,000
    refs = [f"D-{i}" for i in range(4)]
    answers = [statuses(maker.call(dl.payment_order(dl.payment(r, PAYROLL, "100000.00", "ACME", SUPPLIER))))[0]
               for r in refs]
    assert [a[1:3] for a in answers] == [("SETTLED", None)] * 3 + [("REJECTED", "LIMIT_DAILY")]


def test_insufficient_funds_changes_nothing(maker, gateway, clock):
    with gateway.engine.begin() as conn:   # lift the limits so that only the balance (400,000) binds
        directory.set_grant(conn, "DEMO", "maker", PAYROLL, {"query", "pay"}, None, None, clock())
    before = snapshot(gateway.engine)
    answer = maker.call(dl.payment_order(dl.payment("F-9", PAYROLL, "400000.01", "ACME", SUPPLIER)))
    assert statuses(answer)[0][1:3] == ("REJECTED", "INSUFFICIENT_FUNDS")
    after = snapshot(gateway.engine)
    assert (after["accounts"], after["payments"], after["holds"]) == \
           (before["accounts"], before["payments"], before["holds"])


def test_rejected_client_ref_can_be_used_again_once_fixed(maker):
    bad = maker.call(dl.payment_order(dl.payment("R-1", OPERATING, "1.001", "ACME", SUPPLIER)))
    assert statuses(bad)[0][2] == "AMOUNT_INVALID"
    good = maker.call(dl.payment_order(dl.payment("R-1", OPERATING, "1.00", "ACME", SUPPLIER)))
    assert statuses(good)[0][1] == "SETTLED"


def test_payment_to_unknown_internal_account_is_account_invalid(maker):
    answer = maker.call(dl.payment_order(dl.payment("U-1", OPERATING, "1.00", "X", "6222999999999999")))
    assert statuses(answer)[0][1:3] == ("REJECTED", "ACCOUNT_INVALID")


def test_paying_from_an_account_without_grant_looks_unknown(maker):
    answer = maker.call(dl.payment_order(dl.payment("U-2", SUPPLIER, "1.00", "X", OPERATING)))
    assert statuses(answer)[0][1:3] == ("REJECTED", "ACCOUNT_INVALID")


def test_currency_must_match_the_account(maker):
    answer = maker.call(dl.payment_order(dl.payment("C-1", OPERATING, "1.00", "X", SUPPLIER, currency="USD")))
    assert statuses(answer)[0][1:3] == ("REJECTED", "CURRENCY_NOT_ALLOWED")
    answer = maker.call(dl.payment_order(dl.payment("C-2", OPERATING, "1.00", "X", SUPPLIER, currency="XXX")))
    assert statuses(answer)[0][1:3] == ("REJECTED", "CURRENCY_NOT_ALLOWED")


def test_concurrent_duplicates_yield_one_payment(maker, gateway):
    order = dl.payment_order(dl.payment("CC-1", OPERATING, "777.00", "ACME", SUPPLIER))
    bodies = [maker.request(order) for _ in range(8)]          # 8 distinct messages, one ClientRef
    with cf.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(maker.post, bodies))
    ids = {statuses(a)[0][3] for a in answers}
    assert len(ids) == 1 and all(statuses(a)[0][1] == "SETTLED" for a in answers)
    assert balance(maker, OPERATING)[0] == "999223.00"
    assert booked_total(gateway.engine) == 0


def test_parallel_payments_never_exceed_the_daily_limit(maker, gateway):
    # payroll daily limit 300,000 (funds 400,000): ten parallel payments of 50,000 -> exactly six may pass
    bodies = [maker.request(dl.payment_order(dl.payment(f"PL-{i}", PAYROLL, "50000.00", "ACME", SUPPLIER)))
              for i in range(10)]
    with cf.ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(maker.post, bodies))
    outcomes = sorted(statuses(a)[0][1] for a in answers)
    assert outcomes.count("SETTLED") == 6
    assert sorted(statuses(a)[0][2] for a in answers if statuses(a)[0][1] == "REJECTED") == ["LIMIT_DAILY"] * 4
    assert balance(maker, PAYROLL) == ("100000.00", "100000.00")
    assert booked_total(gateway.engine) == 0


def test_status_query_by_client_ref_and_payment_id(maker):
    pid = statuses(maker.call(dl.payment_order(dl.payment("S-1", OPERATING, "5.00", "ACME", SUPPLIER))))[0][3]
    answer = maker.call(dl.status_query("S-1", payment_ids=(pid,)))
    got = statuses(answer)
    assert [g[3] for g in got] == [pid, pid] and got[0][1] == "SETTLED"
    assert answer.body.find(f"{q('PaymentStatus')}/{q('OrderDigest')}") is not None


def test_status_query_for_unknown_payment_is_not_found(maker):
    answer = maker.call(dl.status_query("NEVER-SENT"))
    assert (answer.status, answer.code) == (404, "NOT_FOUND")
