"""Benchmark: what the fund-flow rules stage adds to the payment path (issue 8: under 10%).

    python -m bench.rules_overhead [--payments 600] [--payees 20] [--postgres URL]

One gateway in-process (no HTTP, so the comparison is not drowned in transport noise), the full signed
path of a single-payment PaymentOrder: parse, XSD, signature, MessageId, checks, rules, hold, audit,
signed answer, durable commit. Every rule is declared on the operating account, with parameters that let
the payments through (so every rule runs to the end) and the payee registered; the payroll account has
none. Requests alternate between the two accounts one by one, so both see the same machine, the same
database and the same growing history, and the ratio of their median latencies is the rules' cost.
A 1,000-entry block list is loaded for the client: its lookup runs on both sides (it applies to every
account), so its own cost is timed apart and printed too.
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from bench.request_path import pg_schema_url
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


PAYEES = 1   # set by --payees: how many suppliers the payments are spread over
HISTORY = 20_000   # settled payments of the past weeks in the database before the run


def payee(i: int) -> tuple[str, str]:
    return (PAYEE, PAYEE_ACCOUNT) if i % PAYEES == 0 else (f"供应商{i % PAYEES:03d}有限公司", f"3100123400{i % PAYEES:04d}")


def signed_orders(c: dl.Client, n: int, tag: str, account: str) -> list[bytes]:
    # Amounts differ so that no payment is a probable duplicate of another: every one is accepted.
    return [c.request(dl.payment_order(dl.payment(
        f"{tag}-{i}", DEMO_ACCOUNTS[account], f"{10 + next(_serial) / 100:.2f}", *payee(i),
        scheme="CNAPS", bank_code=PAYEE_BANK))) for i in range(n)]


def handle(gw, body: bytes) -> float:
    start = time.perf_counter()
    reply = gw.handle(body)
    took = time.perf_counter() - start
    if reply.status != 200 or b"ACCEPTED" not in reply.body:
        answer = reply.body.decode()
        raise SystemExit(f"unexpected answer: {answer[answer.find('<Result'):answer.find('<ds:Signature')]}")
    return took * 1000


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


def run(database_url: str | None, payments: int) -> tuple[float, float, float, float]:
    root = Path(tempfile.mkdtemp(prefix="dl-rules-"))
    home = root / "home"
    init_home(home, key_type="p256", database_url=database_url)
    settings = Settings.load(home, rate_limit_per_second=1e9, rate_limit_burst=10**9)
    gw = build_gateway(settings)
    demo = home / "demo"
    c = dl.Client("http://unused", "DEMO", "maker", (demo / "maker.key.pem").read_bytes(),
                  (demo / "maker.cert.pem").read_bytes(), (home / "certs/gateway.cert.pem").read_bytes())
    block_list = root / "blocked.csv"
    block_list.write_text("name,account\n" + "".join(f"黑名单公司{i:04d}有限公司,62229{i:011d}\n" for i in range(1000)),
                          "utf-8")
    configure(gw, block_list)
    for body in signed_orders(c, 50, "WARM-P", "payroll") + signed_orders(c, 50, "WARM-O", "operating"):
        handle(gw, body)
    seed_history(gw)
    off, on = [], []
    for start in range(0, payments, 100):   # signed in slices: each stays inside the freshness window
        pairs = zip(signed_orders(c, 100, f"OFF{start}", "payroll"), signed_orders(c, 100, f"ON{start}", "operating"))
        for plain, ruled in pairs:
            off.append(handle(gw, plain))
            on.append(handle(gw, ruled))
    lookup = block_list_lookup_us(gw)
    gw.engine.dispose()
    return statistics.median(off), statistics.median(on), statistics.quantiles(on, n=100)[98], lookup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=600)
    parser.add_argument("--payees", type=int, default=20,
                        help="suppliers the payments go to (1: every payment to one payee, the worst case)")
    parser.add_argument("--postgres", help="also run on this PostgreSQL URL (a fresh schema is used)")
    args = parser.parse_args()
    global PAYEES
    PAYEES = args.payees
    targets = [("SQLite", None)]
    if args.postgres:
        targets.append(("PostgreSQL", pg_schema_url(args.postgres)))
    print(f"{'database':<12} {'no rules p50 ms':>16} {'all rules p50 ms':>17} {'p99 ms':>7} {'overhead':>9}"
          f"  {'block-list lookup':>18}   target: overhead < 10%")
    for name, url in targets:
        off, on, on_p99, lookup = run(url, args.payments)
        print(f"{name:<12} {off:>16.2f} {on:>17.2f} {on_p99:>7.2f} {(on / off - 1) * 100:>8.1f}%"
              f"  {lookup:>15.0f} us")


if __name__ == "__main__":
    main()
