"""Benchmark: the signed request path against a trivial FastAPI endpoint, loaded by wrk.

    python -m bench.request_path --db sqlite        # or --db postgres (DIRECTLINK_TEST_DATABASE_URL or --postgres)
                                 [--seconds 3] [--rounds 2] [--sm2]

One uvicorn worker each, `wrk -t1 -c16` on loopback, the baseline (bench/baseline_app.py: reads the body,
answers a small XML) in the same run. Requests are signed (ECDSA P-256, as `directlink init` makes keys) and
unique, all before the clock starts; the abuse limits are lifted (bench/load.py, UNLIMITED). For each of
BalanceQuery and a single-payment PaymentOrder (committed durably) it prints requests a second, the ratio to
the baseline, p50/p99 latency, and the server's CPU milliseconds a request (from /proc/PID/stat).

The baseline and the gateway are loaded in turn, --rounds times each, both servers up throughout: a slow
spell of a shared machine then falls on both, and the ratio is the median of the rounds'. wrk is installed
with apt-get where it is missing (bench/load.py, need_wrk); the benchmark stops if it cannot be.

Targets (issue 23): SQLite BalanceQuery >= 0.20 of the baseline, PaymentOrder >= 0.08; PostgreSQL 0.15 and
0.06; p99 under 50 ms for both. --sm2 adds a BalanceQuery signed with SM2/SM3 keys (the Chinese profile,
spec section 3), measured the same way, without a target of its own."""
from __future__ import annotations

import argparse
import atexit
import os
import secrets
import statistics
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.load import Result, baseline, gateway, load_wrk, need_wrk
from gateway.protocol import client as dl
from gateway.setup import DEMO_ACCOUNTS, init_home

TARGETS = {("sqlite", "BalanceQuery"): 0.20, ("sqlite", "PaymentOrder"): 0.08,
           ("postgres", "BalanceQuery"): 0.15, ("postgres", "PaymentOrder"): 0.06}
P99_MS = 50
CONNECTIONS = 16
WARM_UP = 400
# Bodies signed for each second of a gateway run: more than it answers (wrk would start the bodies over, and
# the gateway answer those from its store, cheaper: the run says INVALID then).
PER_SECOND = 2500


def make_home(root: Path, key_type: str, database_url: str | None) -> Path:
    home = root / f"home-{key_type}-{secrets.token_hex(3)}"
    init_home(home, key_type=key_type, database_url=database_url)
    return home


def signer(home: Path) -> dl.Client:
    demo = home / "demo"
    return dl.Client("http://unused", "DEMO", "maker", (demo / "maker.key.pem").read_bytes(),
                     (demo / "maker.cert.pem").read_bytes(), (home / "certs/gateway.cert.pem").read_bytes())


def balance_bodies(home: Path, n: int) -> list[bytes]:
    c = signer(home)
    return [c.request(dl.balance_query(DEMO_ACCOUNTS["operating"])) for _ in range(n)]


def payment_bodies(home: Path, n: int) -> list[bytes]:
    c = signer(home)
    return [c.request(dl.payment_order(dl.payment(f"B-{i:07d}", DEMO_ACCOUNTS["operating"], "0.01", "ACME",
                                                  DEMO_ACCOUNTS["supplier"]))) for i in range(n)]


def pg_schema_url(base: str) -> str:
    """The URL of a new schema of its own on the server at `base`: every run starts on an empty database.
    The schema is dropped when the benchmark exits, so runs do not pile up in a shared database."""
    schema = f"bench_{secrets.token_hex(4)}"
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    atexit.register(_drop_schema, base, schema)
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def _drop_schema(base: str, schema: str) -> None:
    engine = create_engine(base)
    try:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))   # a server still up would hold it forever
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    except Exception as err:  # noqa: BLE001 - at exit: say so and leave it, never hide the run's figures
        print(f"could not drop schema {schema}: {err}")
    finally:
        engine.dispose()


def cpu_ms(result: Result) -> float:
    """The server's CPU milliseconds a request over the measured part (load_wrk read /proc/PID/stat)."""
    return (result.server_cores or 0) / result.throughput * 1000


def line(name: str, r: Result) -> str:
    return (f"  {name:<30} {r.throughput:8.0f} req/s   p50 {r.pct(0.50):6.1f} ms   p99 {r.pct(0.99):6.1f} ms   "
            f"CPU {cpu_ms(r):5.2f} ms/request")


def run(db: str, database_url: str | None, seconds: float, rounds: int, sm2: bool = False) -> list[str]:
    """The scenarios on one database; returns the verdicts that missed their target."""
    scenarios = [("BalanceQuery", "p256", balance_bodies), ("PaymentOrder", "p256", payment_bodies)]
    if sm2:
        scenarios.append(("BalanceQuery, SM2/SM3", "sm2", balance_bodies))
    print(f"\n--- {db}: wrk -t1 -c{CONNECTIONS}, {rounds} round(s) of {seconds:g} s each, 1 uvicorn worker, "
          f"P-256 keys, {os.cpu_count()} cores")
    missed = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, key_type, make in scenarios:
            home = make_home(Path(tmp), key_type, pg_schema_url(database_url) if database_url else None)
            per_round = int(PER_SECOND * seconds) + WARM_UP
            bodies = make(home, per_round * rounds)   # each round has bodies of its own, its warm-up's too
            refs, gots = [], []
            with baseline() as base, gateway(str(home)) as gw:
                for k in range(rounds):
                    part = bodies[k * per_round:(k + 1) * per_round]
                    refs.append(load_wrk([base.url], part, seconds, CONNECTIONS, WARM_UP, servers=[base]))
                    gots.append(load_wrk([gw.url], part, seconds, CONNECTIONS, WARM_UP, servers=[gw]))
            target = TARGETS.get((db, name))
            ratios = [g.throughput / r.throughput for r, g in zip(refs, gots)]
            ratio = statistics.median(ratios)
            for k, (r, g) in enumerate(zip(refs, gots)):
                print(line(f"baseline, round {k + 1}", r))
                print(line(f"{name}, round {k + 1}", g))
            p99 = max(g.pct(0.99) for g in gots)
            verdict = ("no target" if target is None else
                       "meets" if ratio >= target and p99 < P99_MS else "BELOW")
            if any(g.requests > per_round - WARM_UP for g in gots):
                verdict = "INVALID: the run used every body and wrk started over (raise PER_SECOND)"
            elif not all(g.all_ok for g in gots):
                verdict = f"INVALID: not every answer was 200 (see {gw.log.name})"
            print(f"  {name}: ratio {ratio:.3f} (rounds {', '.join(f'{x:.3f}' for x in ratios)}), "
                  f"p99 {p99:.1f} ms, CPU {statistics.median(cpu_ms(g) for g in gots):.2f} ms/request "
                  + (f"(target ratio >= {target:.2f}, p99 < {P99_MS} ms: {verdict})" if target is not None
                     else f"({verdict})"))
            if verdict not in ("meets", "no target"):
                missed.append(f"{db} {name}: {verdict}")
    return missed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--postgres", default=os.environ.get("DIRECTLINK_TEST_DATABASE_URL"),
                    help="the PostgreSQL URL for --db postgres (a schema of its own is made and dropped)")
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--rounds", type=int, default=2, help="baseline and gateway loaded in turn, this many times")
    ap.add_argument("--sm2", action="store_true", help="also a BalanceQuery signed with SM2/SM3 keys")
    args = ap.parse_args()
    if args.db == "postgres" and not args.postgres:
        ap.error("--db postgres needs --postgres URL or DIRECTLINK_TEST_DATABASE_URL")
    need_wrk()
    missed = run(args.db, args.postgres if args.db == "postgres" else None, args.seconds, args.rounds, args.sm2)
    print("\nall targets met" if not missed else "\nmissed: " + "; ".join(missed))


if __name__ == "__main__":
    main()
