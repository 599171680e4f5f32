"""Benchmark: what formats by declaration cost against a hand-written adapter.

    python -m bench.declared_formats [--payments 1000] [--runs 5]

Reads a batch of N payments in the Kingdee JSON format (hand-written, adapters/kingdee), in Yonyou JSON
(the declared engine, adapters/yonyou/yonyou.toml) and in the GBK fixed-width example (declared); writes a
statement of N entries in each declared statement format; times a format lookup through the registry with
a folder of declared mappings (what every DocumentSubmit and Format query pays) and without; and times
the conformance kit run of `directlink adapters add` on each example. Best of --runs, milliseconds.
"""
from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]


def best(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    n, runs = args.payments, args.runs

    from adapters import kingdee, registry
    from adapters.base import AccountFacts, PaymentFile
    from adapters.declared import load
    from adapters.kingdee.samples import write_json
    from adapters.kit_mapping import check
    from adapters.kit_samples import _statement
    from domain.models import BankCode, Party, SubmittedPayment, build_instruction

    def payment(i: int) -> SubmittedPayment:
        ref = f"B-{i:08d}"
        return SubmittedPayment(ref, build_instruction(
            client_ref=ref, debtor_account="6222000000000001", amount=f"{i % 9000 + 1}.{i % 100:02d}",
            currency="CNY", creditor_name="上海陶喆朱镕基贸易有限公司", creditor_account="31001234567890",
            bank_scheme="CNAPS", bank_code="102290012345", bank_name="中国工商银行上海分行", purpose="货款",
            remark="十一月货款"), where="b")

    batch = PaymentFile("BENCH-1", tuple(payment(i) for i in range(n)), dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    yonyou = load(ROOT / "adapters" / "yonyou" / "yonyou.toml")
    treasury = load(ROOT / "config" / "formats" / "treasury-fixed.toml")
    csv = load(ROOT / "config" / "formats" / "bank-csv.toml")
    files = {
        "kingdee.json (hand-written)": (kingdee.ADAPTER.payment_readers["kingdee.json"], write_json(batch)),
        "yonyou.json (declared)": (yonyou.adapter.payment_readers["yonyou.json"],
                                   yonyou.payment_writers["yonyou.json"](batch)),
        "treasury.fixed GBK (declared)": (treasury.adapter.payment_readers["treasury.fixed"],
                                          treasury.payment_writers["treasury.fixed"](batch)),
        "bankcsv.csv GB18030 (declared)": (csv.adapter.payment_readers["bankcsv.csv"],
                                           csv.payment_writers["bankcsv.csv"](batch)),
    }
    print(f"reading {n} payments (best of {runs}):")
    for name, (read, data) in files.items():
        assert len(read(data).transactions) == n
        print(f"  {name:34} {best(lambda read=read, data=data: read(data), runs):8.1f} ms  ({len(data)} bytes)")

    party = Party("上海陶喆朱镕基贸易有限公司", "31001234567890", BankCode("CNAPS", "102290012345"))
    st = _statement("CNY", "100000000.00", [("DBIT" if i % 3 else "CRDT", f"{i % 900 + 1}.00", party, False)
                                            for i in range(n)])
    facts = AccountFacts(st.account, "CNY", "上海某某科技有限公司", "DirectLink Demo Bank")
    print(f"writing a statement of {n} entries:")
    for name, d in (("kingdee.statement.json (hand-written)", None), ("yonyou.statement.json", yonyou),
                    ("treasury.statement.fixed", treasury), ("bankcsv.statement.csv", csv)):
        if d is None:
            write = kingdee.ADAPTER.statement_writers["kingdee.statement.json"]
        else:
            write = next(iter(d.adapter.statement_writers.values()))
        print(f"  {name:38} {best(lambda write=write: write(st, facts), runs):8.1f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for f in ("treasury-fixed.toml", "bank-csv.toml"):
            (folder / f).write_bytes((ROOT / "config" / "formats" / f).read_bytes())
        registry.payment_reader("treasury.fixed", folder)
        k = 2000
        with_folder = best(lambda: [registry.payment_reader("treasury.fixed", folder) for _ in range(k)], runs)
        installed = best(lambda: [registry.payment_reader("kingdee.json") for _ in range(k)], runs)
        print(f"format lookup: {with_folder / k * 1000:.1f} µs with a folder of 2 mappings, "
              f"{installed / k * 1000:.1f} µs installed only")
    for d in (treasury, csv):
        print(f"conformance kit on {d.mapping.name}: {best(lambda d=d: check(d, registry.installed()), 1):.0f} ms")


if __name__ == "__main__":
    main()
