"""Benchmark: what the fund-flow rules stage adds to a payment (issue 23: under 10% on PostgreSQL).

    python -m bench.rules_overhead --db postgres [--seconds 3] [--rounds 2] [--payees 20] [--postgres URL]

`directlink serve` (one uvicorn worker, abuse limits lifted) loaded by wrk (-t1 -c16) with signed single
PaymentOrders to another bank, the full path: parse, XSD, signature, MessageId, checks, rules, hold, audit,
signed answer, durable commit. Every rule is declared on the operating account, with parameters that let
the payments through (so every rule runs to the end) and the payee registered; the payroll account has
none. The two sides are loaded in turn, --rounds times each, on one database with 20,000 settled payments
of the past weeks; the rules' cost is how much fewer payments a second the ruled side makes (the median of
the rounds'), and the CPU a payment beside it. A 1,000-entry block list is loaded for the client: its lookup
runs on both sides (it applies to every account), so its own cost is timed apart and printed too.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from bench.load import Result, gateway, load_wrk, need_wrk
from bench.request_path import CONNECTIONS, PER_SECOND, WARM_UP, cpu_ms, line, pg_schema_url
from domain import names
from gateway import rule_facts, rulebook
from gateway.app import build_gateway
from gateway.protocol import client as dl
from gateway.settings import Settings
from gateway.setup import DEMO_ACCOUNTS, init_home
from gateway.storage import tables

PAYEE, PAYEE_ACCOUNT, PAYEE_BANK = "上海某某科技有限公司", "31001234567890", "102290012345"
ALL_RULES = {
    "allow_list": {}, "new_payee": {}, "duplicate": {"window_days": 7},
    "payee_daily_cap": {"cap": "100000000.00"}, "velocity": {"window_minutes": 60, "max_count": 1000000},
    "amount_anomaly": {"factor": 5}, "business_hours": {}, "cash_floor": {"floor": "1000.00"},
}


_serial = iter(range(10**9))


TARGET = 0.10
PAYEES = 1   # set by --payees: how many suppliers the payments are spread over
HISTORY = 20_000   # settled payments of the past weeks in the database before the run


def payee(i: int) -> tuple[str, str]:
    return (PAYEE, PAYEE_ACCOUNT) if i % PAYEES == 0 else (f"供应商{i % PAYEES:03d}有限公司", f"3100123400{i % PAYEES:04d}")


def signed_orders(c: dl.Client, n: int, tag: str, account: str) -> list[bytes]:
    # Amounts differ so that no payment is a probable duplicate of another: every one is accepted.
    return [c.request(dl.payment_order(dl.payment(
        f"{tag}-{i}", DEMO_ACCOUNTS[account], f"{10 + next(_serial) / 100:.2f}", *payee(i),
        scheme="CNAPS", bank_code=PAYEE_BANK))) for i in range(n)]


def configure(gw, block_list: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    with gw.engine.begin() as conn:
        for rule, params in ALL_RULES.items():
            rulebook.set_rule(conn, "DEMO", DEMO_ACCOUNTS["operating"], rule, params, now)
        for i in range(PAYEES):
            rulebook.add_counterparty(conn, "DEMO", *payee(i), now)
        rulebook.load_block_list(conn, block_list, "bench", "", now)


def seed_history(gw, n: int = HISTORY) -> None:
    """A live database, not a new one: n settled payments of the past weeks (older than every rule's window),
    to the same payees from both accounts, written directly. Then what autovacuum keeps on a live PostgreSQL
    database: statistics (with a table analysed while nearly empty, it plans scans of the whole table) and
    the visibility map (index-only scans of old rows do not visit the table)."""
    now = dt.datetime.now(dt.UTC)
    rows = []
    for i in range(n):
        name, account = payee(i)
        at = now - dt.timedelta(days=9 + i % 30, seconds=i)
        rows.append(dict(
            id=f"H{i:019d}", client_id="DEMO", client_ref=f"HIST-{i}", end_to_end_id=f"HIST-{i}", batch_id=None,
            debtor_account=DEMO_ACCOUNTS["operating" if i % 2 else "payroll"], amount=1000 + i % 1000,
            currency="CNY", creditor_name=name, creditor_account=account, creditor_bank_scheme="CNAPS",
            creditor_bank_code=PAYEE_BANK, creditor_bank_name=None, purpose="history", remark=None,
            requested_date=at.date(), urgency="NORMAL", state="SETTLED", reason_code=None, reason_text=None,
            order_digest="-", content_hash="-", maker="maker", approvals_required=0, approvals_given=0,
            created_at=at, updated_at=at, sent_at=at, attempts=1, creditor_key=names.key(name), rule_hits=None))
    with gw.engine.begin() as conn:
        conn.execute(insert(tables.payments), rows)
    if gw.engine.dialect.name == "postgresql":
        with gw.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")


def block_list_lookup_us(gw, n: int = 2000) -> float:
    from domain.models import build_instruction
    ins = build_instruction(client_ref="X", end_to_end_id=None, debtor_account=DEMO_ACCOUNTS["payroll"],
                            amount="10.00", currency="CNY", creditor_name=PAYEE, creditor_account=PAYEE_ACCOUNT,
                            bank_scheme="CNAPS", bank_code=PAYEE_BANK, bank_name=None, purpose="x", remark=None,
                            requested_date=None, urgency="NORMAL")
    with gw.engine.connect() as conn:
        rule_facts.listed(conn, "DEMO", ins)
        start = time.perf_counter()
        for _ in range(n):
            rule_facts.listed(conn, "DEMO", ins)
        return (time.perf_counter() - start) / n * 1e6


def run(database_url: str | None, seconds: float, rounds: int) -> tuple[list[Result], list[Result], float]:
    """wrk on the served gateway, in turn: payments from the payroll account (no rules) and from the
    operating account (every rule), --rounds times each. Returns both sides' results and the block-list
    lookup's microseconds."""
    root = Path(tempfile.mkdtemp(prefix="dl-rules-"))
    home = root / "home"
    init_home(home, key_type="p256", database_url=database_url)
    gw = build_gateway(Settings.load(home, rate_limit_per_second=1e9, rate_limit_burst=10**9))
    demo = home / "demo"
    c = dl.Client("http://unused", "DEMO", "maker", (demo / "maker.key.pem").read_bytes(),
                  (demo / "maker.cert.pem").read_bytes(), (home / "certs/gateway.cert.pem").read_bytes())
    block_list = root / "blocked.csv"
    block_list.write_text("name,account\n" + "".join(f"黑名单公司{i:04d}有限公司,62229{i:011d}\n" for i in range(1000)),
                          "utf-8")
    configure(gw, block_list)
    seed_history(gw)
    lookup = block_list_lookup_us(gw)
    gw.engine.dispose()
    per_round = int(PER_SECOND * seconds) + WARM_UP
    off, on = [], []
    with gateway(str(home)) as served:
        for k in range(rounds):   # signed just before each round: every body stays inside the freshness window
            for side, account, results in (("OFF", "payroll", off), ("ON", "operating", on)):
                bodies = signed_orders(c, per_round, f"{side}{k}", account)
                results.append(load_wrk([served.url], bodies, seconds, CONNECTIONS, WARM_UP, servers=[served]))
    return off, on, lookup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--postgres", default=os.environ.get("DIRECTLINK_TEST_DATABASE_URL"),
                        help="the PostgreSQL URL for --db postgres (a schema of its own is made and dropped)")
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--payees", type=int, default=20,
                        help="suppliers the payments go to (1: every payment to one payee, the worst case)")
    args = parser.parse_args()
    if args.db == "postgres" and not args.postgres:
        parser.error("--db postgres needs --postgres URL or DIRECTLINK_TEST_DATABASE_URL")
    need_wrk()
    global PAYEES
    PAYEES = args.payees
    off, on, lookup = run(pg_schema_url(args.postgres) if args.db == "postgres" else None, args.seconds, args.rounds)
    print(f"\n--- {args.db}: single payments, wrk -t1 -c{CONNECTIONS}, {args.rounds} round(s) of {args.seconds:g} s "
          f"a side, 1 uvicorn worker, P-256 keys, {os.cpu_count()} cores")
    for k, (a, b) in enumerate(zip(off, on)):
        print(line(f"no rules, round {k + 1}", a))
        print(line(f"every rule, round {k + 1}", b))
    overhead = statistics.median(a.throughput / b.throughput - 1 for a, b in zip(off, on))
    cpu = statistics.median(cpu_ms(b) / cpu_ms(a) - 1 for a, b in zip(off, on))
    verdict = "meets" if overhead < TARGET else "BELOW"
    if not all(r.all_ok for r in off + on):
        verdict = "INVALID: not every answer was 200"
    print(f"  the rules take {overhead * 100:.1f}% more time a payment (req/s), {cpu * 100:.1f}% more CPU; "
          f"block-list lookup {lookup:.0f} us (target < {TARGET * 100:.0f}%: {verdict})")


if __name__ == "__main__":
    main()
