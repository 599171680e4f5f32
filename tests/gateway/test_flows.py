"""The running totals the fund-flow rules count with (gateway/flows.py) decide exactly as counting every
payment would. A seeded script drives single payments, batches, cancellations and a frozen gateway clock
across minute, window and day boundaries; before each request the expected decision of the velocity and
payee-cap rules is worked out by reading every payment back and counting in Python."""
from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
from conftest import OPERATING, PAYROLL, database_before
from sqlalchemy import select

from domain.codes import PaymentState
from domain.rules import LIVE
from gateway import flows, rulebook
from gateway.protocol import client as dl
from gateway.protocol import signing
from gateway.protocol.xmlsafe import q, text
from gateway.storage.tables import GONE_STATES, payment_flows, payments
from gateway.storage.unit_of_work import transaction

BANK = ZoneInfo("Asia/Shanghai")
WINDOW = dt.timedelta(minutes=7)
MAX_COUNT, MAX_AMOUNT, CAP = 5, 2000_00, 4000_00
PAYEES = [("上海某某科技有限公司", "31001234567890"), ("ACME Trading", "6222999900001111")]
DEBTORS = [OPERATING, PAYROLL]
# Steps of the clock: on and next to whole minutes and the window's length, and longer ones.
WAITS = [0, 1, 29, 59, 60, 61, 119, 120, 419, 420, 421, 900, 3600, 5 * 3600]


class Frozen:
    def __init__(self, at: dt.datetime):
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def expected(known: list, now: dt.datetime, debtor: str, payee: str, amount: int) -> set[str]:
    """What the two rules must say, counted payment by payment (known: every live payment so far)."""
    since, day_start = now - WINDOW, dt.datetime.combine(now.astimezone(BANK).date(), dt.time(), BANK)
    recent = [p for p in known if p["debtor"] == debtor and p["at"] >= since]
    today = sum(p["amount"] for p in known if p["payee"] == payee and p["at"] >= day_start)
    fired = set()
    if len(recent) + 1 > MAX_COUNT or sum(p["amount"] for p in recent) + amount > MAX_AMOUNT:
        fired.add("velocity")
    if today + amount > CAP:
        fired.add("payee_daily_cap")
    return fired


def live_payments(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(payments.c.id, payments.c.debtor_account, payments.c.creditor_account,
                                   payments.c.amount, payments.c.created_at, payments.c.state)).all()
    return [dict(id=r.id, debtor=r.debtor_account, payee=r.creditor_account, amount=r.amount, at=r.created_at,
                 state=r.state) for r in rows if PaymentState(r.state) in LIVE]


@pytest.mark.parametrize("seed", range(4))
def test_velocity_and_payee_cap_count_exactly_what_a_payment_by_payment_count_gives(gateway, home, seed):
    rnd = random.Random(seed)
    # 23:40 in the bank's zone on a coming day: the script crosses midnight and the payee's day.
    real = dt.datetime.now(dt.UTC)
    start = dt.datetime.combine(real.astimezone(BANK).date() + dt.timedelta(days=2), dt.time(23, 40), BANK)
    gateway.clock = clock = Frozen(start.astimezone(dt.UTC) + dt.timedelta(seconds=rnd.randrange(60)))
    with gateway.engine.begin() as conn:
        rulebook.set_rule(conn, "DEMO", "", "velocity", {"window_minutes": 7, "max_count": MAX_COUNT,
                                                          "max_amount": f"{MAX_AMOUNT / 100:.2f}"}, clock())
        rulebook.set_rule(conn, "DEMO", "", "payee_daily_cap", {"cap": f"{CAP / 100:.2f}"}, clock())
    demo = home.home / "demo"
    maker = dl.Client("http://unused", "DEMO", "maker", (demo / "maker.key.pem").read_bytes(),
                      (demo / "maker.cert.pem").read_bytes(), home.path(home.gateway_cert).read_bytes())

    def send(operation):
        body = maker.request(operation, created=clock())
        reply = gateway.handle(body)
        return dl.verify_answer(reply.status, reply.body, maker.gateway_cert, signing.digest_b64(body))

    seen: list[set[str]] = []
    cancelled = 0
    for step in range(100):
        action = rnd.choice(["pay", "pay", "pay", "batch", "wait", "wait", "cancel"])
        if action == "wait":
            clock.at += dt.timedelta(seconds=rnd.choice(WAITS))
            continue
        known = live_payments(gateway.engine)
        if action == "cancel":
            waiting = [p for p in known if p["state"] in ("ACCEPTED", "PENDING_APPROVAL")]
            if waiting:
                answer = send(dl.cancel(rnd.choice(waiting)["id"]))
                assert text(answer.body.find(q("PaymentStatus")).find(q("State"))) == "CANCELLED"
                cancelled += 1
            continue
        wanted, sent = [], []
        for i in range(rnd.randint(2, 4) if action == "batch" else 1):
            debtor, (name, payee), amount = rnd.choice(DEBTORS), rnd.choice(PAYEES), rnd.randrange(1, 9) * 100_00
            fired = expected(known, clock(), debtor, payee, amount)
            wanted.append(fired)
            if not fired:   # accepted: the next payment of the batch counts it
                known.append(dict(debtor=debtor, payee=payee, amount=amount, at=clock()))
            sent.append(dl.payment(f"F{seed}-{step}-{i}", debtor, f"{amount / 100:.2f}", name, payee,
                                   scheme="CNAPS", bank_code="102290012345"))
        answer = send(dl.payment_order(*sent))
        statuses = answer.body.findall(q("PaymentStatus"))
        got = [{r.get("name") for r in (st.find(q("Rules")) if st.find(q("Rules")) is not None else ())}
               for st in statuses]
        assert got == wanted, f"step {step} at {clock().astimezone(BANK)}"
        seen += got
    # The script went through the cases: accepted, each rule alone, and payments taken back.
    assert {frozenset(s) for s in seen} >= {frozenset(), frozenset({"velocity"}), frozenset({"payee_daily_cap"})}
    assert cancelled > 0


def test_the_gone_states_are_exactly_those_outside_the_live_ones():
    """The partial indexes and the reads that subtract payments which left the live states share this text."""
    spelt = {s.strip(" '") for s in GONE_STATES.partition("(")[2].rstrip(")").split(",")}
    assert spelt == {s.value for s in set(PaymentState) - LIVE}


def test_windows_start_on_whole_minutes_and_the_request_counts_its_own_unless_read_already():
    at = dt.datetime(2026, 11, 25, 10, 0, 30, tzinfo=dt.UTC)
    whole = dt.datetime(2026, 11, 25, 10, 1, tzinfo=dt.UTC)
    params, counts_own = flows.window("d", at, whole)
    assert params == {"d_since": at, "d_whole": whole, "d_minute": int(whole.timestamp()) // 60} and counts_own
    assert flows.window("d", whole, whole)[0]["d_whole"] == whole
    assert not flows.window("d", at, at)[1]   # the window starts in this very minute: the part-minute read has them


def test_the_daily_job_drops_only_totals_no_window_reaches(gateway):
    from gateway import jobs
    now = gateway.clock()
    with transaction(gateway.engine) as uow:
        for at in (now - flows.HORIZON - dt.timedelta(minutes=2), now - flows.HORIZON + dt.timedelta(minutes=2), now):
            pending = flows.Pending()
            pending.add(OPERATING, "31001234567890", "CNY", 100)
            flows.record(uow, "DEMO", at, pending)
    assert jobs.purge_flows(gateway) == 2    # the oldest minute, on both sides
    with gateway.engine.connect() as conn:
        kept = sorted(conn.execute(select(payment_flows.c.minute).where(payment_flows.c.side == "D")).scalars())
    assert kept == [flows.minute_of(now - flows.HORIZON + dt.timedelta(minutes=2)), flows.minute_of(now)]


def test_the_upgrade_counts_the_payments_already_made(tmp_path):
    """A database with payments before revision 0008 gets their running totals on upgrade."""
    from gateway.storage.engine import migrate
    recent = dt.datetime.now(dt.UTC).replace(second=10, microsecond=0) - dt.timedelta(hours=1)
    old = recent - dt.timedelta(days=30)
    engine = database_before(tmp_path, "0007", [(recent, 100, "ACCEPTED", "m"), (recent, 250, "CANCELLED", "m"),
                                                (old, 999, "SETTLED", "m")])
    migrate(engine)
    with engine.connect() as conn:
        rows = conn.execute(select(payment_flows).order_by(payment_flows.c.side)).all()
    minute = flows.minute_of(recent)
    # Counted as created, the cancelled one too (it is taken out when read); the old one is beyond every window.
    assert [tuple(r) for r in rows] == [("C", "C", "P1", minute, "CNY", 2, 350), ("D", "C", "D1", minute, "CNY", 2, 350)]
