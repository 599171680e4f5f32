"""Benchmark: the signed request path against a trivial FastAPI baseline, one uvicorn worker each,
16 concurrent clients on loopback, on SQLite and (if reachable) PostgreSQL.

    python -m bench.request_path [--requests 3000] [--postgres URL]

Targets (issue 7): BalanceQuery with P-256 keys >= 0.5 of the baseline's throughput, with RSA-2048 >= 0.35;
a durably committed single PaymentOrder >= 0.3. Requests are signed before the clock starts, so the
client's signing does not count against the gateway.

The baseline and the gateway are loaded in turn, --rounds times each (default 3), both servers up
throughout: a slow spell of a shared machine then falls on both, and the ratio reported is the median of
the rounds' ratios (each round's is printed too)."""
from __future__ import annotations

import argparse
import atexit
import os
import secrets
import statistics
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.load import Result, baseline, gateway, load
from gateway.protocol import client as dl
from gateway.setup import DEMO_ACCOUNTS, init_home

WARM_UP = 200
TARGETS = {"BalanceQuery, ECDSA P-256": 0.5, "BalanceQuery, RSA-2048": 0.35, "BalanceQuery, SM2/SM3": 0.35,
           "PaymentOrder (1 payment), P-256": 0.3}


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


def run(db: str, database_url: str | None, n: int, rounds: int = 3) -> None:
    print(f"\n--- {db}: {n} requests per scenario in {rounds} rounds, 16 concurrent clients, 1 worker, "
          f"{os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scenarios = [("BalanceQuery, ECDSA P-256", "p256", balance_bodies),
                     ("BalanceQuery, RSA-2048", "rsa", balance_bodies),
                     ("BalanceQuery, SM2/SM3", "sm2", balance_bodies),
                     ("PaymentOrder (1 payment), P-256", "p256", payment_bodies)]
        for name, key_type, make in scenarios:
            url = pg_schema_url(database_url) if database_url else None
            home = make_home(root, key_type, url)
            per_round = -(-n // rounds)
            bodies = make(home, (per_round + WARM_UP) * rounds)   # each round warms up on bodies of its own
            refs, gots = [], []
            with baseline() as base, gateway(str(home)) as gw:
                spent = {base: 0.0, gw: 0.0}   # server CPU seconds over every request sent, warm-ups too
                for k in range(rounds):
                    part = bodies[k * (per_round + WARM_UP):(k + 1) * (per_round + WARM_UP)]
                    for server, results in ((base, refs), (gw, gots)):
                        before = server.cpu_seconds()
                        results.append(load(server.url, part, warmup=WARM_UP))
                        spent[server] += (server.cpu_seconds() or 0) - (before or 0)
                sent = rounds * (per_round + WARM_UP)
            ref, got = Result.merged(refs), Result.merged(gots)
            ratios = [g.throughput / r.throughput for r, g in zip(refs, gots)]
            ratio = statistics.median(ratios)
            print(ref.line("  baseline (same bodies)"))
            print(got.line(f"  {name}"))
            verdict = "meets" if ratio >= TARGETS[name] else "BELOW"
            if not (got.all_ok and ref.all_ok):
                verdict = f"INVALID, not every answer was 200: see {gw.log.name}"
            print(f"  ratio {ratio:.3f}, the median of the rounds' {', '.join(f'{r:.2f}' for r in ratios)} "
                  f"(target {TARGETS[name]:.2f}: {verdict})")
            if spent[gw]:
                print(f"  server CPU a request: baseline {spent[base] / sent * 1000:.2f} ms, "
                      f"gateway {spent[gw] / sent * 1000:.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--postgres", default=os.environ.get("DIRECTLINK_TEST_DATABASE_URL"))
    ap.add_argument("--rounds", type=int, default=3, help="baseline and gateway loaded in turn, this many times")
    args = ap.parse_args()
    if args.rounds < 1 or args.requests < args.rounds:
        ap.error("--rounds must be at least 1 and at most --requests")
    run("SQLite", None, args.requests, args.rounds)
    if args.postgres:
        run("PostgreSQL", args.postgres, args.requests, args.rounds)


if __name__ == "__main__":
    main()
