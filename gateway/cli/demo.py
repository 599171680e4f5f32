"""`directlink demo`: a readable end-to-end story on the embedded default, with nothing to set up."""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import sys
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

from lxml import etree

from gateway import rulebook, sandbox
from gateway.app import build_gateway, create_app
from gateway.clearing import Clearing
from gateway.console import keys
from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q, text
from gateway.server import background
from gateway.settings import ClearingFaults
from gateway.setup import DEMO_ACCOUNTS, init_home
from reconcile.report import build_report


def _say(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 72 - len(title)))


def _balances(c: dl.Client) -> None:
    answer = c.call(dl.balance_query())
    for b in answer.body.iterfind(q("Balance")):
        print(f"  {text(b.find(q('Account')))}  booked {text(b.find(q('Booked'))):>14} "
              f"available {text(b.find(q('Available'))):>14} {text(b.find(q('Currency')))}")


def _statuses(answer: dl.Answer) -> list[str]:
    if answer.body is None:   # the whole request was refused
        print(f"  HTTP {answer.status} {answer.code}: {answer.detail}")
        return []
    ids = []
    for s in answer.body.iterfind(q("PaymentStatus")):
        reason = s.find(q("Reason"))
        why = f"  {reason.get('code')}: {text(reason)}" if reason is not None else ""
        pid = text(s.find(q("PaymentId"))) or "-"
        ids.append(pid)
        print(f"  {text(s.find(q('ClientRef'))):<14} {pid:<22} {text(s.find(q('State'))):<10}{why}")
    return ids


def _fund_flow_rules(gateway, maker: dl.Client, home: Path) -> None:
    _say("Fund-flow rules: caught before money moves")
    op = DEMO_ACCOUNTS["operating"]
    now = dt.datetime.now(dt.UTC)
    (home / "watch.csv").write_text("name,account\n东方红贸易有限公司,\n", "utf-8")
    with gateway.engine.begin() as conn:
        rulebook.set_rule(conn, "DEMO", "", "duplicate", {"window_days": 7}, now)
        rulebook.load_block_list(conn, home / "watch.csv", "watch", "", now)
    print("  rules: probable duplicates (7 days) for every DEMO account; block list 'watch': 东方红贸易有限公司")
    print("  invoice 0002 paid again under a new reference, and a payee on the block list written in pinyin:")

    def cnaps(ref: str, amount: str, name: str, account: str) -> etree._Element:
        return dl.payment(ref, op, amount, name, account, scheme="CNAPS", bank_code="102290012345")
    batch = [cnaps("INV-2026-0002B", "3800.50", "上海某某科技有限公司", "31001234567890"),
             cnaps("INV-2026-0005", "5600.00", "Dong Fang Hong Mao Yi You Xian Gong Si", "6217000011112222")]
    print("  first as a dry run (dryRun=\"true\": decided exactly, nothing kept):")
    _statuses(maker.call(dl.payment_order(*batch, dry_run=True)))
    print("  then for real; the held one waits for an approver, who sees every rule that fired:")
    answer = maker.call(dl.payment_order(*batch))
    _statuses(answer)
    for rule in answer.body.iterfind(f"{q('PaymentStatus')}/{q('Rules')}/{q('Rule')}"):
        print(f"    rule {rule.get('name')} ({rule.get('outcome')}): {text(rule)}")

    _say("CashPositionQuery: where the operating account is heading, day by day")
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    expected = ((op, (today + dt.timedelta(days=2)).isoformat(), "CRDT", "20000.00", "CNY"),)
    pos = maker.call(dl.cash_position(op, days=3, expected=expected)).body.find(q("AccountPosition"))
    print(f"  booked {text(pos.find(q('Booked')))}  available {text(pos.find(q('Available')))}  "
          f"unsettled outflows {text(pos.find(q('Unsettled')))}")
    for day in pos.iterfind(q("Day")):
        print(f"  {day.get('date')}  out {text(day.find(q('Outflows'))):>10}  expected in "
              f"{text(day.find(q('ExpectedIn'))):>10}  projected {text(day.find(q('Projected'))):>12}")


def _receipts_and_reconciliation(gateway, settings, maker: dl.Client, home: Path) -> None:
    _say("Receipts from other banks (directlink sandbox credit)")
    op = DEMO_ACCOUNTS["operating"]
    now = dt.datetime.now(dt.UTC)
    receipts = [("8800.00", "北京某某商贸有限公司", "6228480012345678", "AR-1001"),
                ("12000.00", "Hangzhou Example Trading Co", "3301999900001111", "PAYMENT AR1002 AR1003"),
                ("4985.00", "深圳某某电子有限公司", "4000123412341234", "AR 1004 bank fee deducted")]
    with gateway.engine.begin() as conn:
        for amount, payer, account, reference in receipts:
            sandbox.credit(conn, account=op, amount=amount, payer_name=payer, payer_account=account,
                           reference=reference, now=now, zone=settings.zone, own_cnaps_prefix=settings.own_cnaps_prefix)
            print(f"  +{amount:>9} from {payer} ({account}), reference {reference!r}")

    _say("Reconciliation: the MT940 statement against the ERP's open receivables")
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    (home / "open-items.csv").write_text(
        "reference,counterparty_account,amount,currency,due_date,direction,counterparty_name\n"
        f"AR-1001,6228480012345678,8800.00,CNY,{today},CRDT,北京某某商贸有限公司\n"
        f"AR-1002,3301999900001111,7000.00,CNY,{today},CRDT,Hangzhou Example Trading Co\n"
        f"AR-1003,3301999900001111,5000.00,CNY,{today},CRDT,Hangzhou Example Trading Co\n"
        f"AR-1004,4000123412341234,5000.00,CNY,{today},CRDT,深圳某某电子有限公司\n"
        f"AR-1005,6222333344445555,1500.00,CNY,{today},CRDT,Not Yet Paid Ltd\n", "utf-8")
    doc = maker.call(dl.statement_query(op, fmt="mt940")).body
    (home / "statement.mt940").write_bytes(base64.b64decode(text(doc)))
    report = build_report([home / "statement.mt940"], home / "open-items.csv")
    result = report.sections[0].result
    for m in result.matches:
        refs = ", ".join(i.reference for i in m.items)
        print(f"  {m.rule:<22} {', '.join(str(line.amount.amount) for line in m.lines):>10}  <- {refs}")
    print(f"  unmatched open items: {', '.join(i.reference for i in result.unmatched_items) or 'none'}; "
          f"{len(result.unmatched_lines)} statement entries are not receivables of this list")
    print("  `directlink reconcile --statement statement.mt940 --open-items open-items.csv --out report.html`\n"
          "  writes the same as a report treasury staff open in a browser.")


def _console(gateway, url: str) -> None:
    """The treasury console of this gateway, and a link for 'checker' to register a security key there. On a
    terminal the gateway stays up until Enter is pressed, so that the link can be tried."""
    _say("The treasury console: approvals signed with a security key, balances, cash position")
    with gateway.engine.begin() as conn:
        token, expires = keys.new_enrolment(conn, "DEMO", "checker", dt.datetime.now(dt.UTC), hours=1)
    address = url.replace("127.0.0.1", "localhost")   # a security key is bound to a host name, not an address
    print(f"  console: {address}/console/")
    print(f"  enrolment link for DEMO/checker (once, until {expires:%H:%M} UTC): {address}/console/enrol/{token}")
    print("  open it, register a passkey or security key, sign in as DEMO / checker: the held payment waits there")
    if sys.stdin is not None and sys.stdin.isatty():
        with contextlib.suppress(EOFError, KeyboardInterrupt):
            input("  press Enter to stop the gateway ")


def run(home: Path | None = None) -> int:
    """Initialise a throw-away home, serve it on a free port, and walk through the main operations."""
    with tempfile.TemporaryDirectory(prefix="directlink-demo-") as tmp:
        home = home or Path(tmp)
        _say(f"Setting up a gateway in {home}")
        settings = init_home(home)
        print("  keys, configuration, SQLite database, client DEMO with operators maker, checker, viewer")
        gateway = build_gateway(settings)
        gw_cert = settings.path(settings.gateway_cert).read_bytes()

        def operator(name: str) -> dl.Client:
            return dl.Client(url, "DEMO", name, (home / "demo" / f"{name}.key.pem").read_bytes(),
                             (home / "demo" / f"{name}.cert.pem").read_bytes(), gw_cert)

        with background(create_app(gateway)) as url:
            print(f"  serving protocol v1 at {url}/v1/messages; every answer below was signature-verified")
            maker = operator("maker")
            _say("AccountQuery as 'maker': the accounts it holds grants on")
            for info in maker.call(dl.account_query()).body.iterfind(q("AccountInfo")):
                grants = ",".join(text(g) for g in info.iterfind(q("Grant")))
                print(f"  {text(info.find(q('Account')))}  {text(info.find(q('Name')))}  [{grants}]  "
                      f"single limit {text(info.find(q('SingleLimit')))}")
            _say("BalanceQuery")
            _balances(maker)

            _say("PaymentOrder: a batch of three, each stands alone")
            op, payroll, supplier = DEMO_ACCOUNTS["operating"], DEMO_ACCOUNTS["payroll"], DEMO_ACCOUNTS["supplier"]
            batch = dl.payment_order(
                dl.payment("INV-2026-0001", op, "12500.00", "ACME Supplies (Shanghai) Co., Ltd.", supplier,
                           purpose="货款 invoice 0001"),
                dl.payment("INV-2026-0002", op, "3800.50", "上海某某科技有限公司", "31001234567890",
                           scheme="CNAPS", bank_code="102290012345", bank_name="工商银行上海分行",
                           purpose="服务费"),
                dl.payment("INV-2026-0003", payroll, "1e3", "Someone", supplier),
                batch_id="BATCH-DEMO-1")
            answer = maker.call(batch)
            print(f"  result {answer.code}")
            _statuses(answer)
            print("  (internal payments settle at once; the CNAPS one waits for clearing with funds held;\n"
                  "   '1e3' is not an amount, so that payment alone is REJECTED)")

            _say("The same batch again (a retry after a lost answer): nothing is paid twice")
            _statuses(maker.call(batch))

            _say("Maker-checker: 250,000.00 is over the operating account's approval threshold")
            big = maker.call(dl.payment_order(dl.payment("INV-2026-0100", op, "250000.00",
                                                         "ACME Supplies (Shanghai) Co., Ltd.", supplier)))
            [pid] = _statuses(big)
            digest = text(big.body.find(f"{q('PaymentStatus')}/{q('OrderDigest')}"))
            print("  the maker holds no 'approve' grant (and could never approve its own payment anyway):")
            _statuses(maker.call(dl.approval(pid, digest)))
            print("  'checker' approves exactly what was sent (quoting its OrderDigest):")
            _statuses(operator("checker").call(dl.approval(pid, digest)))

            _say("Clearing to other banks (simulated; one payee account was closed)")
            maker.call(dl.payment_order(dl.payment("INV-2026-0004", op, "990.00", "已注销公司",
                                                   "31009999999999", scheme="CNAPS", bank_code="103100000026",
                                                   purpose="尾款")))
            faults = ClearingFaults(scripted={"INV-2026-0004": "FAILED"})
            done = Clearing(gateway.engine, settings.model_copy(update={"clearing_faults": faults}),
                            gateway.clock).run_once()
            print(f"  clearing pass: {dict(done)}")
            _statuses(maker.call(dl.status_query("INV-2026-0002", "INV-2026-0004")))

            _say("Balances now: every settlement is booked, failed payments released their funds")
            _balances(maker)

            _say(f"StatementQuery on {op}, one entry a page, by cursor")
            cursor, page = "", 1
            while True:
                st = maker.call(dl.statement_query(op, after=cursor, limit=1)).body
                for e in st.iterfind(q("Entry")):
                    party = e.find(q("Counterparty"))
                    name = text(party.find(q("Name"))) if party is not None else ""
                    print(f"  page {page}  #{text(e.find(q('EntryId')))} {text(e.find(q('Direction')))} "
                          f"{text(e.find(q('Amount'))):>12}  balance {text(e.find(q('BalanceAfter'))):>12}  {name}")
                cursor = text(st.find(q("NextCursor")))
                if text(st.find(q("Complete"))) == "true":
                    break
                page += 1

            _say("The same statement as an ERP imports it: MT940 (camt.053, BAI2, Kingdee too)")
            doc = maker.call(dl.statement_query(op, fmt="mt940")).body
            for line in base64.b64decode(text(doc)).decode("ascii").splitlines()[:9]:
                print(f"  {line}")
            print("  ...")

            _fund_flow_rules(gateway, maker, home)
            _receipts_and_reconciliation(gateway, settings, maker, home)

            _say("'viewer' may look but not pay")
            denied = operator("viewer").call(dl.payment_order(
                dl.payment("VIEW-1", op, "1.00", "ACME", supplier)))
            _statuses(denied)
            _console(gateway, url)
        gateway.engine.dispose()
    print("\nDone. `directlink init DIR` keeps such a gateway; `directlink serve` runs it.")
    return 0
