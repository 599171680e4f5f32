"""The set-wise payment path (issue 7): a batch is decided payment by payment on facts kept in memory
(funds, daily totals, ClientRefs) and written together. It must decide exactly as accepting the payments
one by one would, leave no trace of a refused payment, and keep the audit chain intact."""
from __future__ import annotations

import concurrent.futures as cf
import datetime as dt

from conftest import OPERATING, PAYROLL, booked_total
from iso20022_helpers import outcomes
from sqlalchemy import func, select

from gateway import audit, directory, rulebook
from gateway.protocol import client as dl
from gateway.storage.tables import accounts, audit_log, holds, payment_events, payments

CNAPS = {"scheme": "CNAPS", "bank_code": "102290012345"}


def money(gateway, account):
    with gateway.engine.connect() as conn:
        booked, held = conn.execute(select(accounts.c.booked, accounts.c.held)
                                    .where(accounts.c.number == account)).one()
    return booked, held


def count(gateway, table):
    with gateway.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def chain_findings(gateway):
    with gateway.engine.connect() as conn:
        return audit.verify(conn)[1]


def test_funds_credited_earlier_in_the_batch_count_and_refusals_leave_no_trace(maker, gateway):
    with gateway.engine.begin() as conn:   # payroll without limits: only its funds (400,000.00) decide
        directory.set_grant(conn, "DEMO", "maker", PAYROLL, {"query", "pay"}, None, None,
                            dt.datetime.now(dt.UTC))

    def order():
        return dl.payment_order(
            dl.payment("B-1", PAYROLL, "300000.00", "Vendor", "31001", **CNAPS),       # 100,000 left
            dl.payment("B-2", PAYROLL, "150000.00", "Vendor", "31002", **CNAPS),       # short
            dl.payment("B-3", OPERATING, "100000.00", "Payroll", PAYROLL),             # settles: 200,000 left
            dl.payment("B-4", PAYROLL, "150000.00", "Vendor", "31004", **CNAPS),       # 50,000 left
            dl.payment("B-5", PAYROLL, "60000.00", "Vendor", "31005", **CNAPS),        # short
            dl.payment("B-1", PAYROLL, "300000.00", "Vendor", "31001", **CNAPS),       # B-1 again: the same one
            dl.payment("B-2", PAYROLL, "10000.00", "Vendor", "31002", **CNAPS))        # a refused ref, fixed: fits
    events_before = count(gateway, payment_events)

    trial = order()
    trial.set("dryRun", "true")
    assert [o[1] for o in outcomes(maker.call(trial))] == [
        "ACCEPTED", "REJECTED", "SETTLED", "ACCEPTED", "REJECTED", "ACCEPTED", "ACCEPTED"]
    assert count(gateway, payment_events) == events_before   # the trial kept nothing

    got = outcomes(maker.call(order()))
    assert [(o[1], o[3]) for o in got] == [
        ("ACCEPTED", None), ("REJECTED", "INSUFFICIENT_FUNDS"), ("SETTLED", None), ("ACCEPTED", None),
        ("REJECTED", "INSUFFICIENT_FUNDS"), ("ACCEPTED", None), ("ACCEPTED", None)]
    assert got[0][2] == got[5][2]                            # one payment for B-1, answered twice
    assert money(gateway, PAYROLL) == (500_000_00, 460_000_00)
    assert money(gateway, OPERATING) == (900_000_00, 0)
    assert booked_total(gateway.engine) == 0
    with gateway.engine.connect() as conn:
        stored = dict(conn.execute(select(payments.c.client_ref, payments.c.state)
                                   .where(payments.c.client_ref.like("B-%"))).all())
        open_holds = conn.execute(select(func.count()).select_from(holds)
                                  .where(holds.c.released_at.is_(None))).scalar()
    assert stored == {"B-1": "ACCEPTED", "B-2": "ACCEPTED", "B-3": "SETTLED", "B-4": "ACCEPTED"}
    assert open_holds == 3
    # Four created, one settled: five state changes on record, the refused payments none.
    assert count(gateway, payment_events) == events_before + 5
    assert chain_findings(gateway) == []


def test_daily_limit_is_exact_within_one_batch(maker, gateway):
    # operating: daily limit 800,000.00 for the maker; below 200,000.00 no approval is needed.
    amounts = ["150000.00"] * 5 + ["100000.00", "50000.00", "0.01"]
    got = outcomes(maker.call(dl.payment_order(*[
        dl.payment(f"D-{i}", OPERATING, a, "Vendor", f"3100{i}", **CNAPS) for i, a in enumerate(amounts)])))
    assert [(o[1], o[3]) for o in got] == [("ACCEPTED", None)] * 5 + [
        ("REJECTED", "LIMIT_DAILY"), ("ACCEPTED", None), ("REJECTED", "LIMIT_DAILY")]
    assert money(gateway, OPERATING) == (1_000_000_00, 800_000_00)
    assert chain_findings(gateway) == []


def test_concurrent_twins_from_different_accounts_yield_one_payment(maker, gateway):
    # The accounts' locks do not order these two: the ClientRef's unique key does, and the loser's
    # transaction runs again and finds the winner's payment (a different one: DUPLICATE_REFERENCE).
    for round_ in range(4):
        ref = f"TW-{round_}"
        bodies = [maker.request(dl.payment_order(dl.payment(ref, account, "1000.00", "Vendor", "31009", **CNAPS)))
                  for account in (OPERATING, PAYROLL)]
        with cf.ThreadPoolExecutor(2) as pool:
            answers = [outcomes(a)[0] for a in pool.map(maker.post, bodies)]
        assert sorted((o[1], o[3]) for o in answers) == [("ACCEPTED", None), ("REJECTED", "DUPLICATE_REFERENCE")]
    with gateway.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(payments)
                            .where(payments.c.client_ref.like("TW-%"))).scalar() == 4
    assert money(gateway, OPERATING)[1] + money(gateway, PAYROLL)[1] == 4 * 1000_00
    assert chain_findings(gateway) == []


def test_concurrent_payments_to_one_payee_from_two_accounts_respect_its_cap_and_duplicates(maker, gateway):
    # The payee's daily cap and the duplicate rule count the payee's payments over all the client's
    # accounts; two requests from two accounts lock different account rows, so the payee is locked too.
    now = dt.datetime.now(dt.UTC)
    with gateway.engine.begin() as conn:
        rulebook.set_rule(conn, "DEMO", "", "payee_daily_cap", {"cap": "1500.00"}, now)
    for round_ in range(4):
        payee = f"3100900{round_}"
        bodies = [maker.request(dl.payment_order(dl.payment(f"CAP-{round_}-{account[-1]}", account, "1000.00",
                                                            "Vendor", payee, **CNAPS)))
                  for account in (OPERATING, PAYROLL)]
        with cf.ThreadPoolExecutor(2) as pool:
            answers = [outcomes(a)[0] for a in pool.map(maker.post, bodies)]
        assert sorted((o[1], o[3]) for o in answers) == [("ACCEPTED", None), ("REJECTED", "RULE_CAP_EXCEEDED")]


def test_a_payment_settled_as_it_is_accepted_keeps_the_trail_of_accepted_then_settled(maker, gateway):
    """Stored SETTLED straight away, it still has both steps on record, in order: two events, two audit
    records, one hold (released in the same instant), and the chain intact."""
    got = outcomes(maker.call(dl.payment_order(dl.payment("AT-ONCE-1", OPERATING, "12.34", "Payroll", PAYROLL))))
    assert [o[1] for o in got] == ["SETTLED"]
    pid = got[0][2]
    with gateway.engine.connect() as conn:
        events = conn.execute(select(payment_events.c.from_state, payment_events.c.to_state, payment_events.c.reason)
                              .where(payment_events.c.payment_id == pid).order_by(payment_events.c.id)).all()
        records = conn.execute(select(audit_log.c.from_state, audit_log.c.to_state)
                               .where(audit_log.c.payment_id == pid).order_by(audit_log.c.seq)).all()
        hold = conn.execute(select(holds.c.amount, holds.c.placed_at, holds.c.released_at)
                            .where(holds.c.payment_id == pid)).all()
    assert [(e.from_state, e.to_state) for e in events] == [(None, "ACCEPTED"), ("ACCEPTED", "SETTLED")]
    assert events[1].reason == "settled within the bank"
    assert [tuple(r) for r in records] == [(None, "ACCEPTED"), ("ACCEPTED", "SETTLED")]
    assert len(hold) == 1 and hold[0].amount == 1234 and hold[0].released_at == hold[0].placed_at
    assert chain_findings(gateway) == []
