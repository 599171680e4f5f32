"""Benchmark: the gateway's own cost per request, without HTTP: `Gateway.handle` called in a loop.

    python -m bench.in_process [--db sqlite|pg] [--kind balance|payment] [--requests 1000] [--threads 1]
                               [--postgres URL]

Prints requests per second, milliseconds per request, the SQL statements a request runs (counted with a
`before_cursor_execute` listener) and how much of one core the process used. With --threads N the requests
are shared by N threads: where throughput stays flat as N grows, the requests wait for each other (a row
lock), and where the process sits at 100% of a core, the GIL limits. The same signed bodies as
bench.request_path, so the figures line up with it; 50 warm-up requests are not counted."""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, event

from bench.load import UNLIMITED
from bench.request_path import balance_bodies, make_home, payment_bodies, pg_schema_url
from gateway.app import build_gateway
from gateway.settings import Settings

WARM_UP = 50


def run(db: str, kind: str, requests: int, threads: int, postgres: str | None) -> str:
    os.environ.update(UNLIMITED)   # before the settings are read: abuse limits lifted, as for bench.request_path
    with tempfile.TemporaryDirectory() as tmp:
        home = make_home(Path(tmp), "p256", pg_schema_url(postgres) if db == "pg" else None)
        bodies = (payment_bodies if kind == "payment" else balance_bodies)(home, requests + WARM_UP)
        gateway = build_gateway(Settings.load(home))
        for body in bodies[:WARM_UP]:
            _check(gateway.handle(body))
        statements = [0]

        def count(*_args) -> None:
            statements[0] += 1

        event.listen(Engine, "before_cursor_execute", count)
        work, lock = iter(bodies[WARM_UP:]), threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    body = next(work, None)
                if body is None:
                    return
                _check(gateway.handle(body))

        started, cpu = time.perf_counter(), time.process_time()
        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        event.remove(Engine, "before_cursor_execute", count)
        gateway.engine.dispose()
    return (f"{db} {kind}, {threads} thread(s): {requests / seconds:.1f} req/s, {seconds / requests * 1000:.2f} ms "
            f"a request, {statements[0] / requests:.1f} statements a request, process at {cpu / seconds:.0%} of a core")


def _check(reply) -> None:
    if reply.status != 200:
        raise SystemExit(f"a request was answered {reply.status}: {reply.body[:300]!r}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=("sqlite", "pg"), default="sqlite")
    ap.add_argument("--kind", choices=("balance", "payment"), default="balance")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--postgres", default=os.environ.get("DIRECTLINK_TEST_DATABASE_URL"))
    args = ap.parse_args()
    if args.db == "pg" and not args.postgres:
        raise SystemExit("--db pg needs --postgres URL or DIRECTLINK_TEST_DATABASE_URL")
    print(run(args.db, args.kind, args.requests, args.threads, args.postgres))


if __name__ == "__main__":
    main()
