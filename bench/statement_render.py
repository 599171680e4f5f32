"""Benchmark: rendering one statement of 100,000 entries as camt.053 and as MT940.

    python -m bench.statement_render [--entries 100000] [--runs 3]

Target (issue 7): at least 50,000 entries per second, streamed, with peak memory under 200 MB.

Each rendering runs in a fresh interpreter, so its peak resident size (getrusage ru_maxrss) is that
rendering's alone: the interpreter, the imports, the Statement with all its entries, and the writer.
The output streams into a file as byte chunks (what an export or a socket would take), never held whole.
Entries are built before the clock starts; the time is the writer's: chunks produced and written."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

TARGET_RATE = 50_000
TARGET_PEAK_MB = 200
FORMATS = ("camt.053.001.08", "camt.053.001.02", "mt940")


def statement(n: int):
    """A realistic statement: Chinese and Latin names, both directions, references, some reversals."""
    from domain.models import BankCode, Party, Statement, StatementEntry
    from domain.money import Money

    start = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.UTC)
    balance = opening = 5_000_000_00
    entries = []
    for i in range(1, n + 1):
        credit = i % 3 == 0
        amount = 1_00 + (i * 7919) % 900_000_00
        balance += amount if credit else -amount
        if balance < 0:   # keep the account in credit, as the ledger would
            credit, balance = True, balance + 2 * amount
        booked = start + dt.timedelta(seconds=i * 7)
        bank = BankCode("CNAPS", f"10{i % 10_000:010d}") if i % 4 else BankCode("INTERNAL", "")
        party = Party("上海某某贸易有限公司" if i % 2 else "ACME Supplies (Shanghai) Co., Ltd.",
                      f"62220{i:011d}", bank)
        entries.append(StatementEntry(
            entry_id=i, booked=booked, value_date=(booked + dt.timedelta(hours=8)).date(),
            direction="CRDT" if credit else "DBIT", amount=Money.from_minor(amount, "CNY"),
            balance_after=Money.from_minor(balance, "CNY"), counterparty=party,
            bank_ref=f"P20261102{i:012X}", narrative=f"货款 Invoice INV-{i:08d} 第{i % 12 + 1}期",
            client_ref=None if credit else f"ERP-{i:010d}", end_to_end_id=f"E2E-{i:010d}",
            reversal=i % 997 == 0 and credit))
    last = entries[-1]
    return Statement(account="6222000000000001", currency="CNY", opening=Money.from_minor(opening, "CNY"),
                     opening_date=entries[0].value_date, closing=last.balance_after,
                     closing_date=last.value_date, entries=tuple(entries), next_cursor=f"{n:012d}",
                     complete=True)


def _stream(fmt: str):
    """The streaming writer of a format: a function (statement, facts) -> iterator of byte chunks."""
    if fmt == "mt940":
        from adapters.swift import stream_mt940
        return stream_mt940
    from adapters.iso20022 import camt
    version = {"camt.053.001.08": camt.CAMT053_08, "camt.053.001.02": camt.CAMT053_02}[fmt]
    return lambda st, facts: camt.stream(st, facts, version)


def child(fmt: str, n: int) -> None:
    """Render once in this process and print one JSON line of figures."""
    from adapters.base import AccountFacts
    st = statement(n)
    facts = AccountFacts(st.account, st.currency, "演示贸易有限公司", "DirectLink Demo Bank", "DLNKCNSHXXX",
                         created=dt.datetime(2026, 11, 3, 0, 0, tzinfo=dt.UTC))
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write = _stream(fmt)
    size = chunks = 0
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        for chunk in write(st, facts):
            out.write(chunk)
            size += len(chunk)
            chunks += 1
        seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"format": fmt, "entries": n, "seconds": seconds, "bytes": size, "chunks": chunks,
                      "peak_mb": peak_mb, "before_mb": before_mb}))


def run_child(fmt: str, n: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.statement_render", "--child", fmt, "--entries", str(n)],
                         check=True, capture_output=True, text=True, cwd=os.getcwd())
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.entries)
        return
    print(f"--- statement rendering, {args.entries} entries, {args.runs} runs each, {os.cpu_count()} cores, "
          f"{dt.date.today()}")
    for fmt in FORMATS:
        runs = [run_child(fmt, args.entries) for _ in range(args.runs)]
        rates = sorted(r["entries"] / r["seconds"] for r in runs)
        peaks = sorted(r["peak_mb"] for r in runs)
        ok = rates[0] >= TARGET_RATE and peaks[-1] < TARGET_PEAK_MB
        print(f"  {fmt:<16} {rates[0]:8.0f}-{rates[-1]:.0f} entries/s   peak {peaks[0]:.0f}-{peaks[-1]:.0f} MB "
              f"(of which {runs[0]['before_mb']:.0f} MB before writing: interpreter and the statement)   "
              f"{runs[0]['bytes'] / 1e6:.1f} MB in {runs[0]['chunks']} chunks   "
              f"target >= {TARGET_RATE} entries/s and < {TARGET_PEAK_MB} MB: {'meets' if ok else 'BELOW'}")


if __name__ == "__main__":
    main()
