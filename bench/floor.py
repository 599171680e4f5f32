"""The floor under a signed BalanceQuery in one Python process: what the protocol makes every request do before
it touches any state, timed step by step, against what the baseline's HTTP costs, loaded by wrk in the same
run. It answers "how high could the ratio go here if everything else cost nothing?".

    python -m bench.floor [--seconds 3]

The steps are the gateway's own functions on a real signed request (the same bodies as bench.request_path),
each the best of three runs of 2,000 calls, on one thread, the process otherwise idle: hardened parse, the
claims and the schema; the signature's shape and its verification with the pinned certificate (the lean
verifier: exclusive C14N twice, SHA-256, ECDSA P-256); reading the verified header; and the answer, a
one-account BalanceReport rendered and signed (C14N twice, ECDSA). Left out, so the floor is lower than any
real request: the replay guard's read, the balance's read, the stored answer, the audit record and the commit,
the thread hop and the interpreter's switching. The ceiling is one request per (baseline CPU a request + the
steps) of one core, over the baseline's requests a second."""
from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import timeit
from pathlib import Path

from bench.load import baseline, load_wrk, need_wrk
from bench.request_path import balance_bodies, cpu_ms, make_home
from domain.codes import ResultCode
from domain.models import Balance
from domain.money import Money
from gateway.app import build_gateway
from gateway.pipeline import _claims
from gateway.protocol import messages, signing, xmlsafe
from gateway.settings import Settings
from gateway.setup import DEMO_ACCOUNTS

ROUNDS = 2000


def best_us(call) -> float:
    call()
    return min(timeit.repeat(call, number=ROUNDS, repeat=3)) / ROUNDS * 1e6


def steps(home: Path, body: bytes) -> dict[str, float]:
    gateway = build_gateway(Settings.load(home))
    try:
        cert = gateway.signer.certificate   # replaced below by the maker's, as the registry pins it
        cert = signing.keyinfo_certificate(signing.signature_element(xmlsafe.parse(body, 10**6))) or cert
        limit, zone, now = gateway.settings.max_body_bytes, gateway.settings.zone, dt.datetime.now(dt.UTC)

        def read() -> None:
            root = xmlsafe.parse(body, limit)
            _claims(root)
            xmlsafe.validate(root)
            signing.check_profile(signing.signature_element(root))

        root = xmlsafe.parse(body, limit)
        verified = signing.verify(root, cert)
        report = [Balance(DEMO_ACCOUNTS["operating"], "CNY", Money.from_minor(123456, "CNY"),
                          Money.from_minor(123456, "CNY"), now)]

        def answer() -> None:
            gateway.signer.sign(messages.render_response(
                message_id="GW-20261208000000-000000000000", created=messages.stamp(now, zone), in_reply_to="M-1",
                request_digest=signing.digest_b64(body), code=ResultCode.OK, detail="processed",
                answer=messages.render_balance_report(report, zone)))

        return {"parse, claims, schema, signature's shape": best_us(read),
                "verify (lean: C14N, SHA-256, ECDSA P-256)": best_us(lambda: signing.verify(root, cert)),
                "verified header": best_us(lambda: messages.header(verified.signed)),
                "answer rendered and signed": best_us(answer)}
    finally:
        gateway.engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3)
    args = ap.parse_args()
    need_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        home = make_home(Path(tmp), "p256", None)
        bodies = balance_bodies(home, 3000)   # the baseline reads bodies of the real size (wrk reuses them)
        timed = steps(home, bodies[0])
    with baseline() as server:
        base = load_wrk([server.url], bodies, args.seconds, 16, 400, servers=[server])
    http_us = cpu_ms(base) * 1000
    total = http_us + sum(timed.values())
    print(f"baseline: {base.throughput:.0f} req/s, {http_us:.0f} us of CPU a request (wrk -t1 -c16)")
    for name, us in timed.items():
        print(f"  {name:45s} {us:6.0f} us")
    print(f"  {'floor: the baseline plus these steps':45s} {total:6.0f} us")
    print(f"ceiling: {1e6 / total:.0f} req/s, a ratio of {1e6 / total / base.throughput:.3f} to the baseline "
          f"(everything else free); the targets ask 0.20 (SQLite) and 0.15 (PostgreSQL)")


if __name__ == "__main__":
    main()
