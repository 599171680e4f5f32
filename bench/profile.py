"""Where a request's time goes: py-spy samples `directlink serve` while wrk loads it (as bench.request_path).

    python -m bench.profile --db sqlite --scenario payment [--seconds 5] [--top 25] [--out stacks.txt]

Prints the functions by inclusive share of the samples (wall time, idle threads left out) and by own share,
from py-spy's collapsed stacks (kept in --out for a flame graph). py-spy must be installed
(pip install py-spy) and allowed to read the server's memory (root, or ptrace_scope 0)."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

from bench.load import gateway, load_wrk, need_wrk
from bench.request_path import WARM_UP, balance_bodies, make_home, payment_bodies, pg_schema_url

IDLE = ("wait (threading.py", "_worker (concurrent", "select (selectors.py", "run_forever", "_run_once (asyncio",
        "worker (anyio", "get (queue.py", "run (threading.py")


def summarise(stacks: Path, top: int) -> None:
    inclusive, own = Counter(), Counter()
    total = 0
    for row in stacks.read_text().splitlines():
        stack, _, count = row.rpartition(" ")
        frames = stack.split(";")
        # A thread waiting for work, or the event loop waiting for the network, is not a request's time.
        if any(frames[-1].startswith(i) for i in IDLE):
            continue
        n = int(count)
        total += n
        for frame in set(frames):
            inclusive[_name(frame)] += n
        own[_name(frames[-1])] += n
    print(f"{total} busy samples")
    print("\nby inclusive share (the function and what it calls):")
    for name, n in inclusive.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print("\nby own share:")
    for name, n in own.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {name}")


def _name(frame: str) -> str:
    """'func (path/to/module.py:123)' -> 'func (module.py)'"""
    func, _, where = frame.partition(" (")
    return f"{func} ({Path(where.split(':')[0]).name})" if where else func


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--postgres", default=os.environ.get("DIRECTLINK_TEST_DATABASE_URL"))
    ap.add_argument("--scenario", choices=("balance", "payment"), default="payment")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--gil", action="store_true", help="only samples of the thread holding the GIL: the CPU "
                    "Python spends, not waits")
    ap.add_argument("--out", type=Path, help="keep py-spy's collapsed stacks here")
    args = ap.parse_args()
    need_wrk()
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    with tempfile.TemporaryDirectory() as tmp:
        home = make_home(Path(tmp), "p256", pg_schema_url(args.postgres) if args.db == "postgres" else None)
        make = balance_bodies if args.scenario == "balance" else payment_bodies
        bodies = make(home, int(2500 * (args.seconds + 1)) + WARM_UP)
        out = args.out or Path(tmp) / "stacks.txt"
        with gateway(str(home)) as gw:
            record = subprocess.Popen([spy, "record", "--pid", str(gw.proc.pid), "--format", "raw", "--threads",
                                       "--duration", str(int(args.seconds) + 1), "--rate", "200", "--output",
                                       str(out), "--nonblocking", *(["--gil"] if args.gil else [])], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True)
            result = load_wrk([gw.url], bodies, args.seconds, 16, WARM_UP, servers=[gw])
            _, err = record.communicate(timeout=60)
        print(f"{args.db} {args.scenario}: {result.throughput:.0f} req/s, p99 {result.pct(0.99):.1f} ms")
        if not out.exists():
            raise SystemExit(f"py-spy recorded nothing: {err.strip()[-300:]}")
        summarise(out, args.top)


if __name__ == "__main__":
    main()
