"""The maker's daily total (gateway/maker_totals.py) counts exactly what summing the day's payments counts.

Seeded scripts store payments in every state, by two makers from two accounts, across quarter hours and
days, and count each as the gateway does when it accepts one; the total read from any instant (days that
begin on a quarter hour and days that do not) is compared with the sum over the payments table."""
from __future__ import annotations

import datetime as dt
import random

import pytest
from conftest import OPERATING, PAYROLL, SUPPLIER, database_before, snapshot
from sqlalchemy import func, insert, select

from domain.codes import PaymentState
from domain.states import RELEASED
from gateway import maker_totals
from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q, text
from gateway.storage.tables import maker_totals as totals_table
from gateway.storage.tables import payments
from gateway.storage.unit_of_work import UnitOfWork, transaction

QUARTER = dt.timedelta(minutes=15)


def a_payment(i: int, maker: str, account: str, amount: int, state: str, at: dt.datetime) -> dict:
    return dict(id=f"P{i:08d}", client_id="DEMO", client_ref=f"T-{i}", end_to_end_id=f"T-{i}", batch_id=None,
                debtor_account=account, amount=amount, currency="CNY", creditor_name="ACME",
                creditor_account=SUPPLIER, creditor_bank_scheme="INTERNAL", creditor_bank_code="",
                creditor_bank_name=None, purpose="x", remark=None, requested_date=at.date(), urgency="NORMAL",
                state=state, reason_code=None, reason_text=None, order_digest="d", content_hash="h", maker=maker,
                approvals_required=0, approvals_given=0, created_at=at, updated_at=at, sent_at=None, attempts=0,
                creditor_key=None, rule_hits=None)


def summed(conn, maker: str, account: str, since: dt.datetime) -> int:
    """The oracle: every payment of the maker from the account since `since` that was not taken back."""
    return conn.execute(select(func.coalesce(func.sum(payments.c.amount), 0)).where(
        payments.c.client_id == "DEMO", payments.c.maker == maker, payments.c.debtor_account == account,
        payments.c.created_at >= since, payments.c.state.not_in(RELEASED))).scalar()


@pytest.mark.parametrize("seed", range(3))
def test_the_running_total_is_the_sum_of_the_days_payments(gateway, seed):
    rnd = random.Random(seed)
    start = dt.datetime(2026, 11, 26, 15, 0, tzinfo=dt.UTC)
    states = [s.value for s in PaymentState]
    with gateway.engine.begin() as conn:
        for i in range(300):
            # Seconds into 30 hours, often right on or next to a quarter hour.
            seconds = rnd.choice([rnd.randrange(30 * 3600), rnd.randrange(120) * 900 + rnd.choice([-1, 0, 1])])
            at = start + dt.timedelta(seconds=max(seconds, 0), microseconds=rnd.choice([0, rnd.randrange(10**6)]))
            maker, account = rnd.choice(["maker", "checker"]), rnd.choice([OPERATING, PAYROLL])
            amount = rnd.randrange(1, 10**6)
            conn.execute(insert(payments), a_payment(i, maker, account, amount, rnd.choice(states), at))
            with UnitOfWork(conn) as uow:   # one row changed once a unit of work
                maker_totals.record(uow, "DEMO", maker, at, {account: amount})
    # Days in zones that begin them on the hour, on a half or three-quarter hour, and off the quarter hours;
    # and instants anywhere.
    offsets = [dt.timedelta(hours=8), dt.timedelta(hours=5, minutes=45), dt.timedelta(hours=-3, minutes=-30),
               dt.timedelta(hours=5, minutes=37, seconds=12), dt.timedelta(0)]
    checked = off_quarter = 0
    with gateway.engine.connect() as conn:
        for offset in offsets:
            zone = dt.timezone(offset)
            for day in range(3):
                local = dt.datetime.combine(start.astimezone(zone).date() + dt.timedelta(days=day), dt.time(),
                                            tzinfo=zone)
                for since in (local.astimezone(dt.UTC),
                              start + dt.timedelta(seconds=rnd.randrange(30 * 3600))):
                    off_quarter += (since - start) % QUARTER != dt.timedelta(0)
                    for maker in ("maker", "checker"):
                        for account in (OPERATING, PAYROLL):
                            got = maker_totals.used_today(conn, "DEMO", maker, account, since)
                            assert got == summed(conn, maker, account, since), (offset, since, maker, account)
                            checked += 1
        # The script went through what matters: payments taken back and returned ones among those counted,
        # days that do not begin on a quarter hour.
        taken_back = conn.execute(select(func.count()).where(payments.c.state.in_([s.value for s in RELEASED]))
                                  ).scalar()
        returned = conn.execute(select(func.count()).where(payments.c.state == "RETURNED")).scalar()
    assert checked == 5 * 3 * 2 * 4 and off_quarter >= 3 and taken_back > 10 and returned > 3


def test_a_cancelled_payment_frees_its_amount_and_a_settled_one_does_not(maker, gateway):
    # The maker's payroll grant: daily 300,000. Two payments for tomorrow, waiting; one settled now.
    tomorrow = gateway.clock().date() + dt.timedelta(days=2)

    def pay(ref, amount, when=None):
        answer = maker.call(dl.payment_order(dl.payment(ref, PAYROLL, amount, "ACME", SUPPLIER, requested_date=when)))
        st = answer.body.find(q("PaymentStatus"))
        reason = st.find(q("Reason"))
        code = reason.get("code") if reason is not None else None
        return text(st.find(q("State"))), code, text(st.find(q("PaymentId")))

    def books():
        with gateway.engine.connect() as conn:
            counted = sorted(tuple(r) for r in conn.execute(select(totals_table)))
        taken = snapshot(gateway.engine)
        return counted, taken["accounts"], taken["payments"], taken["holds"]

    first, second = pay("M-1", "100000.00", tomorrow), pay("M-2", "100000.00", tomorrow)
    assert pay("M-3", "100000.00")[0] == "SETTLED"
    assert [first[0], second[0]] == ["ACCEPTED", "ACCEPTED"]
    before = books()
    assert pay("M-4", "0.01")[:2] == ("REJECTED", "LIMIT_DAILY")
    assert books() == before        # refused: nothing written, the totals neither
    answer = maker.call(dl.cancel(first[2]))
    assert text(answer.body.find(q("PaymentStatus")).find(q("State"))) == "CANCELLED"
    assert pay("M-5", "100000.00")[0] == "SETTLED"   # the cancelled payment's 100,000 is free again
    assert pay("M-6", "0.01")[:2] == ("REJECTED", "LIMIT_DAILY")


def test_the_daily_job_drops_totals_before_yesterday(gateway):
    from gateway import jobs
    now = gateway.clock()
    with transaction(gateway.engine) as uow:
        for at in (now - maker_totals.HORIZON - QUARTER, now - maker_totals.HORIZON + QUARTER, now):
            maker_totals.record(uow, "DEMO", "maker", at, {OPERATING: 100})
    assert jobs.purge_flows(gateway) == 1
    with gateway.engine.connect() as conn:
        kept = sorted(conn.execute(select(totals_table.c.quarter)).scalars())
    assert kept == [maker_totals.quarter_of(now - maker_totals.HORIZON + QUARTER), maker_totals.quarter_of(now)]


def test_the_upgrade_counts_the_payments_already_made(tmp_path):
    """A database with payments before revision 0009 gets the makers' totals on upgrade, taken-back ones too
    (they are taken out when read); payments older than any business day are not counted."""
    from gateway.storage.engine import migrate
    recent = dt.datetime.now(dt.UTC).replace(second=10, microsecond=0) - dt.timedelta(hours=1)
    old = recent - dt.timedelta(days=3)
    engine = database_before(tmp_path, "0008", [(recent, 100, "ACCEPTED", "m"), (recent, 250, "CANCELLED", "m"),
                                                (recent, 70, "SETTLED", "n"), (old, 999, "SETTLED", "m")])
    migrate(engine)
    quarter = maker_totals.quarter_of(recent)
    with engine.connect() as conn:
        rows = conn.execute(select(totals_table).order_by(totals_table.c.maker)).all()
        assert [tuple(r) for r in rows] == [("C", "m", "D1", quarter, 350), ("C", "n", "D1", quarter, 70)]
        assert maker_totals.used_today(conn, "C", "m", "D1", recent - dt.timedelta(hours=5)) == 100
