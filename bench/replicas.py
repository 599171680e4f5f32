"""Benchmark: payment throughput of one gateway process against two on one PostgreSQL database.

    python -m bench.replicas [--requests 3000] [--postgres URL]

Target (issue 7): two replicas reach at least 1.5 times one replica's payment throughput, where the
machine's cores allow it. The run prints the core count: the two replicas, PostgreSQL and the load
generator share them, so on a 2-core machine the target cannot be reached (one replica already keeps
both cores busy with the load generator and the database).

Both runs use the same home, configuration and keys (as replicas do), signed single payments
(ECDSA P-256) from 16 concurrent clients, spread evenly over the replicas' URLs (the load balancer)."""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from bench.load import gateway, load
from bench.request_path import make_home, payment_bodies, pg_schema_url

TARGET = 1.5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--postgres", default=os.environ.get("DIRECTLINK_TEST_DATABASE_URL"))
    args = ap.parse_args()
    if not args.postgres:
        raise SystemExit("replicas need PostgreSQL: pass --postgres URL or set DIRECTLINK_TEST_DATABASE_URL")
    print(f"--- PaymentOrder (1 payment), one vs two replicas on PostgreSQL, 16 concurrent clients, "
          f"{os.cpu_count()} cores")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for replicas in (1, 2):
            home = make_home(Path(tmp), "p256", pg_schema_url(args.postgres))
            bodies = payment_bodies(home, args.requests + 200)
            servers = [gateway(str(home)) for _ in range(replicas)]
            try:
                results[replicas] = load([s.url for s in servers], bodies)
            finally:
                for s in servers:
                    s.stop()
            print(results[replicas].line(f"  {replicas} replica(s)"))
    ratio = results[2].throughput / results[1].throughput
    verdict = "meets" if ratio >= TARGET else "BELOW"
    if not all(r.all_ok for r in results.values()):
        verdict = "INVALID, not every answer was 200: see the servers' logs in /tmp/directlink-bench-*.log"
    print(f"  two replicas / one: {ratio:.2f} (target {TARGET:.1f} where the cores allow it: {verdict}; "
          f"{os.cpu_count()} cores for 2 gateways, PostgreSQL and the load generator)")


if __name__ == "__main__":
    main()
