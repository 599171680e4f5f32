"""Abuse limits: per-client (and per-operator) rate, shared by the replicas on PostgreSQL, and concurrency
(RATE_LIMITED + Retry-After); process-wide OVERLOADED."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import OPERATING, SUPPLIER, snapshot
from fastapi.testclient import TestClient

from gateway.app import build_gateway, create_app
from gateway.limits import InFlight, RateLimiter, SharedRateLimiter
from gateway.protocol import client as dl
from gateway.server import background
from gateway.setup import init_home
from gateway.storage.engine import make_engine, migrate


class Ticks:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_bucket_refills_at_the_configured_rate():
    ticks = Ticks()
    limiter = RateLimiter(rate=2.0, burst=2, max_concurrent=10, clock=ticks)
    assert limiter.acquire("A") is None and limiter.acquire("A") is None
    assert limiter.acquire("A") == 1          # empty: wait a second
    assert limiter.acquire("B") is None       # other clients are not affected
    ticks.now += 0.5
    assert limiter.acquire("A") is None       # one token back after half a second at 2/s


def test_concurrency_cap_per_client():
    limiter = RateLimiter(rate=1000, burst=1000, max_concurrent=2, clock=Ticks())
    assert limiter.acquire("A") is None and limiter.acquire("A") is None
    assert limiter.acquire("A") == 1
    limiter.release("A")
    assert limiter.acquire("A") is None


def test_in_flight_cap():
    cap = InFlight(1)
    assert cap.enter() and not cap.enter()
    cap.leave()
    assert cap.enter()


def test_rate_limited_request_changes_nothing_and_can_be_retried(maker, gateway):
    ticks = Ticks()
    gateway.limiter = RateLimiter(rate=1.0, burst=1, max_concurrent=4, clock=ticks)
    assert maker.call(dl.balance_query()).code == "OK"
    body = maker.request(dl.payment_order(dl.payment("RL-1", OPERATING, "1.00", "ACME", SUPPLIER)))
    before = snapshot(gateway.engine)
    resp = maker.http.post("/v1/messages", content=body)
    answer = dl.verify_answer(resp.status_code, resp.content, maker.gateway_cert, None)
    assert (resp.status_code, answer.code, resp.headers["Retry-After"]) == (429, "RATE_LIMITED", "1")
    assert snapshot(gateway.engine) == before
    ticks.now += 1.0
    assert maker.post(body).code == "OK"      # the same MessageId goes through once there is room


def test_forged_requests_do_not_spend_a_clients_budget(maker, gateway, http):
    gateway.limiter = RateLimiter(rate=0.001, burst=1, max_concurrent=4, clock=Ticks())
    forged = maker.request(dl.balance_query(OPERATING)).replace(OPERATING.encode(), b"6222000000000002")
    for _ in range(5):   # signed content altered: SIG_INVALID, before any budget is spent
        assert http.post("/v1/messages", content=forged).status_code == 401
    assert maker.call(dl.balance_query()).code == "OK"


def test_overloaded_when_the_process_is_full(gateway, maker):
    gateway.settings = gateway.settings.model_copy(update={"max_in_flight": 0})
    with TestClient(create_app(gateway)) as full:
        resp = full.post("/v1/messages", content=maker.request(dl.balance_query()))
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
    assert dl.verify_answer(503, resp.content, maker.gateway_cert, None).code == "OVERLOADED"


@pytest.mark.parametrize("threads", [2, None])
def test_requests_run_on_at_most_worker_threads_at_once(gateway, maker, threads):
    """worker_threads bounds how many requests the process runs at once (unset: 4 on PostgreSQL; on SQLite
    one, on the request thread); the others wait their turn and are answered all the same."""
    gateway.settings = gateway.settings.model_copy(update={"worker_threads": threads})
    cap = threads or (4 if gateway.engine.dialect.name == "postgresql" else 1)
    running, most, lock, full = [0], [0], threading.Lock(), threading.Event()
    handle = gateway.handle_deferred

    def counted(body, fresh=False):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            if running[0] >= cap:
                full.set()
        try:
            full.wait(timeout=10)   # until as many run as may: then one more would show
            time.sleep(0.05)
            return handle(body, fresh)
        finally:
            with lock:
                running[0] -= 1

    gateway.handle_deferred = counted
    bodies = [maker.request(dl.balance_query()) for _ in range(8)]
    with background(create_app(gateway)) as url, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda body: httpx.post(f"{url}/v1/messages", content=body, timeout=30), bodies))
    assert [a.status_code for a in answers] == [200] * 8
    assert most[0] == cap


def test_the_message_route_counts_each_answer_and_other_methods_are_not_allowed(maker, http):
    """POST /v1/messages is served past the framework's routing (gateway/app.py): its answers are still
    counted in /metrics, and another method on the path still gets 405 from the framework."""
    def answered(code: str) -> float:
        line = f'directlink_requests_total{{code="{code}"}} '
        return next((float(ln.removeprefix(line)) for ln in http.get("/metrics").text.splitlines()
                     if ln.startswith(line)), 0.0)

    assert maker.call(dl.balance_query(OPERATING)).code == "OK"
    assert maker.call(dl.balance_query("6222999999999999")).code == "NOT_FOUND"
    assert (answered("OK"), answered("NOT_FOUND")) == (1.0, 1.0)
    assert http.get("/v1/messages").status_code == 405


def test_an_operator_limit_refuses_that_operator_only_and_keeps_the_clients_token():
    limiter = RateLimiter(rate=0.001, burst=3, max_concurrent=10, clock=Ticks(), operator_rate=0.001,
                          operator_burst=1)
    assert limiter.acquire("C", "maker") is None
    assert limiter.acquire("C", "maker") == 1000   # the operator's bucket is empty (refills at 0.001/s)
    assert limiter.acquire("C", "viewer") is None  # another operator of the client: its own bucket
    assert limiter.acquire("C") is None            # the refusal above gave the client's token back
    assert limiter.acquire("C") == 1000


def test_replicas_share_the_buckets_on_postgresql(pg_url):
    """Two limiters on one database, as two replicas: together they grant the bucket once, where two
    in-memory limiters grant it twice over (the control)."""
    engine = make_engine(pg_url)
    migrate(engine)
    try:
        replicas = [SharedRateLimiter(rate=0.001, burst=5, max_concurrent=100, engine=engine) for _ in range(2)]
        granted = [r.acquire("C") is None for _ in range(5) for r in replicas]   # 10 tries, alternating
        assert granted.count(True) == 5 and granted[:5] == [True] * 5
        assert replicas[1].acquire("D") is None        # another client: a bucket of its own
        alone = [RateLimiter(rate=0.001, burst=5, max_concurrent=100) for _ in range(2)]
        assert [r.acquire("C") is None for _ in range(5) for r in alone].count(True) == 10
    finally:
        engine.dispose()


def test_two_gateways_on_one_postgresql_database_answer_rate_limited_together(pg_url, tmp_path):
    """Requests signed by one client, sent alternately to two gateways on one database: the client's
    burst is spent across both, and then both answer RATE_LIMITED with Retry-After."""
    settings = init_home(tmp_path / "home", database_url=pg_url)
    limited = settings.model_copy(update={"rate_limit_per_second": 0.01, "rate_limit_burst": 3})
    replicas = [build_gateway(limited) for _ in range(2)]
    demo = settings.home / "demo"
    maker = dl.Client("http://testserver", "DEMO", "maker", (demo / "maker.key.pem").read_bytes(),
                      (demo / "maker.cert.pem").read_bytes(), settings.path(settings.gateway_cert).read_bytes())
    try:
        replies = [replicas[i % 2].handle(maker.request(dl.balance_query())) for i in range(6)]
        assert [r.status for r in replies] == [200, 200, 200, 429, 429, 429]
        assert all(r.headers.get("Retry-After") for r in replies[3:])
    finally:
        for gw in replicas:
            gw.engine.dispose()
