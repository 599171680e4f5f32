"""Several gateway processes on one PostgreSQL database (issue 7): exactly-once payments, replay detection,
daily limits and scheduled jobs hold across replicas. Real `directlink serve` processes, real HTTP."""
from __future__ import annotations

import concurrent.futures as cf
import os
import time

import pytest
from conftest import OPERATING, PAYROLL, SUPPLIER, booked_total
from lxml import etree
from processes import Servers
from sqlalchemy import func, select
from test_crash import operator, post_raw, verified

from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q, text
from gateway.setup import init_home
from gateway.storage.engine import make_engine
from gateway.storage.tables import job_runs, payments

pytestmark = pytest.mark.slow


@pytest.fixture
def pg_home(tmp_path, pg_url):
    """A gateway home on PostgreSQL only: replicas share one database (SQLite is one process by design)."""
    return init_home(tmp_path / "home", database_url=pg_url)


@pytest.fixture
def two(pg_home, tmp_path):
    servers = Servers(pg_home.home, tmp_path)
    try:
        yield [servers.start(DIRECTLINK_CLEARING_INTERVAL_SECONDS="1")[1] for _ in range(2)]
    finally:
        servers.stop_all()


def spread(bases, bodies, client):
    """Post body i to replica i % 2, all at once; return the verified answers in order."""
    with cf.ThreadPoolExecutor(len(bodies)) as pool:
        resps = list(pool.map(lambda ib: post_raw(bases[ib[0] % len(bases)], ib[1]), enumerate(bodies)))
    return [verified(client, b, r) for b, r in zip(bodies, resps)]


def payment_ids(answer):
    return [text(s.find(q("PaymentId"))) for s in answer.body.iterfind(q("PaymentStatus"))]


def test_concurrent_duplicates_on_different_replicas_make_one_payment(pg_home, two):
    maker = operator(pg_home)
    order = dl.payment_order(dl.payment("REP-1", OPERATING, "99.00", "ACME", SUPPLIER))
    answers = spread(two, [maker.request(order) for _ in range(12)], maker)
    assert all(a.code == "OK" for a in answers) and len({payment_ids(a)[0] for a in answers}) == 1
    engine = make_engine(pg_home.db_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(payments)).scalar() == 1
    assert booked_total(engine) == 0
    engine.dispose()


def test_the_same_bytes_on_both_replicas_act_once(pg_home, two):
    maker = operator(pg_home)
    body = maker.request(dl.payment_order(dl.payment("REP-2", OPERATING, "5.00", "ACME", SUPPLIER)))
    answers = spread(two, [body] * 8, maker)
    assert len({a.raw for a in answers}) == 1          # the one original answer, from either replica
    used = text(etree.fromstring(body).find(f"{q('Header')}/{q('MessageId')}"))
    other = maker.request(dl.balance_query(), message_id=used)
    replayed = verified(maker, other, post_raw(two[1], other))
    assert replayed.code == "REPLAY"


def test_the_same_query_bytes_on_both_replicas_get_one_answer(pg_home, two):
    """A read-only request claims its MessageId only at its end, with its answer: the twins that lose on the
    key run again and answer with the winner's bytes."""
    maker = operator(pg_home)
    body = maker.request(dl.balance_query(OPERATING))
    answers = spread(two, [body] * 8, maker)
    assert all(a.code == "OK" for a in answers) and len({a.raw for a in answers}) == 1


def test_parallel_payments_across_replicas_respect_the_daily_limit(pg_home, two):
    maker = operator(pg_home)
    bodies = [maker.request(dl.payment_order(dl.payment(f"REP-L{i}", PAYROLL, "50000.00", "ACME", SUPPLIER)))
              for i in range(10)]
    answers = spread(two, bodies, maker)
    states = [text(a.body.find(f"{q('PaymentStatus')}/{q('State')}")) for a in answers]
    assert states.count("SETTLED") == 6 and states.count("REJECTED") == 4   # 300,000.00 a day


def test_scheduled_jobs_run_once_per_due_time(pg_home, two):
    time.sleep(4.5)                                    # clearing is due every second in both replicas
    engine = make_engine(pg_home.db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(job_runs.c.due, job_runs.c.runner).where(job_runs.c.job == "clearing")).all()
    engine.dispose()
    dues = [r.due for r in rows]
    assert len(dues) >= 3 and len(dues) == len(set(dues))      # each due time claimed exactly once
    assert all(r.runner.split(":")[-1].isdigit() and int(r.runner.split(":")[-1]) != os.getpid() for r in rows)
