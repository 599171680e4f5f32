"""Clearing of payments to other banks: settled, failed, unknown (asked, never re-sent under a new
reference), lost and sent again under the same PaymentId, returned; several passes racing."""
from __future__ import annotations

import concurrent.futures as cf
import datetime as dt

import pytest
from conftest import OPERATING, booked_total
from sqlalchemy import func, select
from test_payments import balance, statuses

from domain.codes import PaymentState as S
from gateway import transitions
from gateway.clearing import Clearing
from gateway.protocol import client as dl
from gateway.settings import ClearingFaults
from gateway.storage.tables import entries, payment_events, sim_clearing
from gateway.storage.unit_of_work import transaction


def clearing(gateway, **faults) -> Clearing:
    settings = gateway.settings.model_copy(update={"clearing_faults": ClearingFaults(**faults)})
    return Clearing(gateway.engine, settings, gateway.clock)


def external(maker, ref, amount="1000.00"):
    answer = maker.call(dl.payment_order(dl.payment(ref, OPERATING, amount, "上海某某科技有限公司",
                                                    "31001234567890", scheme="CNAPS", bank_code="102290012345")))
    return statuses(answer)[0][3]


def state(maker, ref):
    return statuses(maker.call(dl.status_query(ref)))[0][1:3]


def debits_of(gateway, pid):
    with gateway.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(entries).where(
            entries.c.payment_id == pid, entries.c.account == OPERATING, entries.c.direction == "DBIT")).scalar()


def test_settles_and_books_the_debit_once(maker, gateway):
    pid = external(maker, "CLR-1")
    assert clearing(gateway).run_once()["settled"] == 1
    assert state(maker, "CLR-1") == ("SETTLED", None)
    assert balance(maker, OPERATING) == ("999000.00", "999000.00")
    assert clearing(gateway).run_once() == {}          # nothing left to do, nothing done twice
    assert debits_of(gateway, pid) == 1 and booked_total(gateway.engine) == 0


def test_failure_releases_the_funds(maker, gateway):
    external(maker, "FAIL-1")
    clearing(gateway, scripted={"FAIL-*": "FAILED"}).run_once()
    assert state(maker, "FAIL-1") == ("FAILED", "CLEARING_FAILED")
    assert balance(maker, OPERATING) == ("1000000.00", "1000000.00")


def test_unknown_is_resolved_by_asking_never_by_resending(maker, gateway):
    pid = external(maker, "UNK-1")
    job = clearing(gateway, scripted={"UNK-*": "UNKNOWN"})
    assert job.run_once()["unknown"] == 1
    assert state(maker, "UNK-1") == ("UNKNOWN", None)
    assert balance(maker, OPERATING) == ("1000000.00", "999000.00")   # still held
    # the ERP retries the same ClientRef: it is told UNKNOWN, and nothing is sent again
    again = maker.call(dl.payment_order(dl.payment("UNK-1", OPERATING, "1000.00", "上海某某科技有限公司",
                                                   "31001234567890", scheme="CNAPS", bank_code="102290012345")))
    assert statuses(again)[0][1] == "UNKNOWN"
    assert job.run_once()["resolved_settled"] == 1
    assert state(maker, "UNK-1") == ("SETTLED", None)
    with gateway.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(sim_clearing)).scalar() == 1
    assert debits_of(gateway, pid) == 1


def test_lost_instruction_is_sent_again_under_the_same_payment_id(maker, gateway):
    pid = external(maker, "LOST-1")
    job = clearing(gateway, scripted={"LOST-*": "LOST"})
    job.run_once()
    assert state(maker, "LOST-1")[0] == "UNKNOWN"
    assert job.run_once()["resent"] == 1
    assert state(maker, "LOST-1")[0] == "SETTLED"
    with gateway.engine.connect() as conn:
        moves = [r.to_state for r in conn.execute(select(payment_events.c.to_state).where(
            payment_events.c.payment_id == pid).order_by(payment_events.c.id))]
    assert moves == ["ACCEPTED", "PROCESSING", "UNKNOWN", "PROCESSING", "SETTLED"]
    assert debits_of(gateway, pid) == 1


def test_return_books_a_reversing_credit(maker, gateway):
    external(maker, "RET-1")
    clearing(gateway, scripted={"RET-*": "RETURNED"}).run_once()
    assert state(maker, "RET-1") == ("RETURNED", "CLEARING_RETURNED")
    assert balance(maker, OPERATING) == ("1000000.00", "1000000.00")
    last = maker.call(dl.statement_query(OPERATING, after="000000000002")).body.find(dl.q("Entry"))
    assert dl.text(last.find(dl.q("Reversal"))) == "true" and dl.text(last.find(dl.q("Direction"))) == "CRDT"
    assert booked_total(gateway.engine) == 0


def test_processing_without_answer_times_out_to_unknown(maker, gateway, clock):
    pid = external(maker, "TO-1")
    job = clearing(gateway)
    with transaction(gateway.engine) as uow:   # as if a crash struck right after marking it PROCESSING
        transitions.move(uow, payment_id=pid, client="DEMO", before=S.ACCEPTED, after=S.PROCESSING,
                         actor="test", why="crash simulated", now=clock(), sent_at=clock(), attempts=1)
    assert job.run_once() == {}                     # not yet timed out
    clock.offset = dt.timedelta(seconds=gateway.settings.clearing_timeout_seconds + 1)
    done = job.run_once()
    assert done["timed_out"] == 1 and state(maker, "TO-1")[0] == "UNKNOWN"
    job.run_once()                                  # asks clearing: never received, so sent again
    assert state(maker, "TO-1")[0] == "SETTLED" and debits_of(gateway, pid) == 1


def test_future_dated_payment_waits(maker, gateway):
    maker.call(dl.payment_order(dl.payment("FUT-1", OPERATING, "1.00", "X", "31001234567890", scheme="CNAPS",
                                           bank_code="102290012345",
                                           requested_date=dt.date.today() + dt.timedelta(days=3))))
    assert clearing(gateway).run_once() == {}
    assert state(maker, "FUT-1")[0] == "ACCEPTED"


def test_parallel_passes_settle_each_payment_once(maker, gateway):
    pids = [external(maker, f"PAR-{i}", "10.00") for i in range(12)]
    jobs = [clearing(gateway, unknown_rate=0.3, seed=i) for i in range(4)]
    with cf.ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            list(pool.map(lambda j: j.run_once(), jobs))
    for pid in pids:
        assert debits_of(gateway, pid) <= 1
    for _ in range(3):
        clearing(gateway).run_once()
    assert all(debits_of(gateway, pid) == 1 for pid in pids)
    assert balance(maker, OPERATING) == ("999880.00", "999880.00")
    assert booked_total(gateway.engine) == 0


@pytest.mark.parametrize("outcome", ["SETTLED", "FAILED", "RETURNED"])
def test_cancel_after_sending_is_refused(maker, gateway, outcome):
    pid = external(maker, "CX-1")
    clearing(gateway, scripted={"CX-*": outcome}).run_once()
    assert statuses(maker.call(dl.cancel(pid)))[0][2] == "NOT_CANCELLABLE"


def test_future_dated_internal_payment_is_booked_on_its_day(maker, gateway, clock):
    day = dt.date.today() + dt.timedelta(days=2)
    answer = maker.call(dl.payment_order(dl.payment("FUTI-1", OPERATING, "7.00", "ACME", "6222000000009001",
                                                    requested_date=day)))
    assert statuses(answer)[0][1] == "ACCEPTED"
    assert clearing(gateway).run_once() == {}
    clock.offset = dt.timedelta(days=3)
    assert clearing(gateway).run_once()["settled_internal"] == 1
    with gateway.engine.connect() as conn:   # the creditor was credited once, and the books balance
        credits = conn.execute(select(func.count()).select_from(entries).where(
            entries.c.account == "6222000000009001", entries.c.direction == "CRDT")).scalar()
    assert credits == 1 and booked_total(gateway.engine) == 0
