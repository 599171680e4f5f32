"""Reconciliation (reconcile/): the rule cascade on a known month, its properties, the open-item loaders, the
reports, `directlink reconcile` as a real process, and a real gateway's payments and receipts."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import shutil
import subprocess
import time
from decimal import Decimal
from functools import partial

import pytest
from conftest import OPERATING, SUPPLIER
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from processes import CLI, ROOT, env_with
from reconcile_scenario import EXPECTED, OWN, UNMATCHED_ITEMS, UNMATCHED_LINES, items, items_csv, statement

from adapters.base import AccountFacts
from adapters.swift import write_mt940
from domain.money import Money
from gateway import sandbox
from gateway.cli import gateway_payments
from gateway.protocol import client as dl
from reconcile.html_report import to_html
from reconcile.matcher import reconcile
from reconcile.model import CRDT, DBIT, OpenItem, StatementLine, Tolerances, lines_of
from reconcile.open_items import OpenItemsInvalid, read_csv, read_json
from reconcile.render import to_csv, to_json
from reconcile.report import build_report

FACTS = AccountFacts(OWN, "CNY", "演示贸易有限公司", "DirectLink Demo Bank")


def groups(result) -> set[tuple]:
    return {(m.rule, tuple(x.entry_id for x in m.lines), tuple(i.id for i in m.items)) for m in result.matches}


# ---- the known month --------------------------------------------------------------------------------------

def test_known_month_matches_each_group_by_its_expected_rule():
    result = reconcile(lines_of(statement()), items())
    assert groups(result) == EXPECTED
    assert {x.entry_id for x in result.unmatched_lines} == UNMATCHED_LINES
    assert {i.id for i in result.unmatched_items} == UNMATCHED_ITEMS
    by_rule = {m.rule + str(m.lines[0].entry_id): m for m in result.matches}
    # the fee-deducted receipt says by how much it fell short; exact rules have no difference
    assert by_rule["reference-text4"].difference == Decimal("-15.00")
    assert all(m.difference == 0 for m in result.matches if m.rule != "reference-text")
    assert "EndToEndId E2E-5001" in by_rule["exact-reference5"].note
    assert "91% alike" in by_rule["reference-text6"].note


def test_same_amount_from_another_counterparty_is_not_a_match():
    # Only the decoy (5,000.00 from 31000000) and the item it resembles (5,000.00 from 31008888, same day).
    month = statement()
    decoy = [x for x in lines_of(month) if x.entry_id == 8]
    item = [i for i in items() if i.id == "INV-8001"]
    result = reconcile(decoy, item, Tolerances(date_window_days=30, fee=Decimal("1000"), similarity=0.5))
    assert result.matches == () and len(result.unmatched_lines) == 1 and len(result.unmatched_items) == 1


def test_rules_can_be_narrowed_and_run_in_cascade_order_only():
    result = reconcile(lines_of(statement()), items(), rules=["exact-reference", "reversal"])
    assert {m.rule for m in result.matches} == {"exact-reference", "reversal"}
    with pytest.raises(ValueError, match="unknown rule"):
        reconcile([], [], rules=["fuzzy"])


def test_the_same_item_twice_is_refused():
    twice = [*items(), items()[0]]
    with pytest.raises(ValueError, match="appears twice"):
        reconcile(lines_of(statement()), twice)


# ---- properties -------------------------------------------------------------------------------------------

ACCOUNTS = ["31001111", "31002222", "31003333", ""]
REFS = ["INV-1001", "INV-1002", "INV-2026-0042", "PAY-7", "X1"]


@st.composite
def month(draw):
    amounts = st.sampled_from(["10.00", "20.00", "30.00", "50.00", "55.00", "100.00", "99.99"])
    lines = []
    for n in range(draw(st.integers(0, 12))):
        lines.append(StatementLine(
            OWN, n + 1, dt.date(2026, 11, draw(st.integers(1, 28))), draw(st.sampled_from([CRDT, DBIT])),
            Money(Decimal(draw(amounts)), "CNY"), draw(st.sampled_from(ACCOUNTS)), "payer",
            f"B{n}", draw(st.sampled_from([None, *REFS])), draw(st.sampled_from([None, *REFS])),
            draw(st.sampled_from(["", "INV-1001", "inv 2026 0024", "INV-1002 INV-1001", "fee"])),
            reversal=draw(st.booleans())))
    found = []
    for n in range(draw(st.integers(0, 12))):
        ref = draw(st.sampled_from(REFS))
        found.append(OpenItem(f"{ref}/{n}", ref, draw(st.sampled_from(ACCOUNTS)), Money(Decimal(draw(amounts)), "CNY"),
                              dt.date(2026, 11, draw(st.integers(1, 28))), draw(st.sampled_from([CRDT, DBIT]))))
    return lines, found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(month(), st.randoms(use_true_random=False))
def test_every_input_once_sums_agree_and_order_does_not_matter(data, rnd):
    lines, found = data
    tol = Tolerances(fee=Decimal("5"))
    result = reconcile(lines, found, tol)
    matched_lines = [x.key for m in result.matches for x in m.lines]
    matched_items = [i.key for m in result.matches for i in m.items]
    # at most once, and matched + unmatched = everything given
    assert len(matched_lines) == len(set(matched_lines)) and len(matched_items) == len(set(matched_items))
    assert sorted(matched_lines + [x.key for x in result.unmatched_lines]) == sorted(x.key for x in lines)
    assert sorted(matched_items + [i.key for i in result.unmatched_items]) == sorted(i.key for i in found)
    for m in result.matches:
        sides = [*m.lines, *m.items]
        assert len({x.amount.currency for x in sides}) == 1
        if m.rule == "reversal":
            assert not m.items and m.difference == 0 and {x.direction for x in m.lines} == {CRDT, DBIT}
            continue
        assert {x.direction for x in sides} == {m.lines[0].direction}, "directions agree"
        signed = sum((x.amount.amount for x in m.lines), Decimal(0)) - sum((i.amount.amount for i in m.items),
                                                                            Decimal(0))
        assert m.difference == (signed if m.lines[0].direction == CRDT else -signed)
        assert abs(m.difference) <= (tol.fee if m.rule == "reference-text" else 0)
    # the same inputs in another order: the same result
    shuffled_lines, shuffled_items = list(lines), list(found)
    rnd.shuffle(shuffled_lines)
    rnd.shuffle(shuffled_items)
    assert reconcile(shuffled_lines, shuffled_items, tol) == result


# ---- open items -------------------------------------------------------------------------------------------

HEADER = "reference,counterparty_account,amount,currency,due_date,direction\r\n"


@pytest.mark.parametrize("body, where, detail", [
    ("INV-1,3100,12.5x,CNY,2026-11-01,receipt\r\n", "line 2, field amount", "plain decimal"),
    ("INV-1,3100,12.345,CNY,2026-11-01,receipt\r\n", "line 2, field amount", "more than 2 decimals"),
    ("INV-1,3100,0,CNY,2026-11-01,receipt\r\n", "line 2, field amount", "more than zero"),
    ("INV-1,3100,1e3,CNY,2026-11-01,receipt\r\n", "line 2, field amount", "plain decimal"),
    ("INV-1,3100,12.50,XXX,2026-11-01,receipt\r\n", "line 2, field currency", "not accepted"),
    ("INV-1,3100,12.50,CNY,1 Nov,receipt\r\n", "line 2, field due_date", "not a date"),
    ("INV-1,3100,12.50,CNY,2026-11-01,sideways\r\n", "line 2, field direction", "CRDT/receipt"),
    (",3100,12.50,CNY,2026-11-01,receipt\r\n", "line 2, field reference", "empty"),
    ("INV-1,3100,12.50,CNY,2026-11-01\r\n", "line 2", "5 fields"),
    ("INV-1,3100,12.50,CNY,2026-11-01,receipt\r\nINV-1,3100,1.00,CNY,2026-11-02,receipt\r\n", "line 3",
     "repeats erp.csv line 2"),
])
def test_bad_csv_rows_name_file_line_and_field(body, where, detail):
    with pytest.raises(OpenItemsInvalid) as err:
        read_csv((HEADER + body).encode(), "erp.csv")
    assert err.value.where == f"erp.csv {where}" and detail in err.value.detail


def test_csv_header_semicolons_bom_gbk_and_an_id_column():
    text = "\ufeffReference;Counterparty Account;Amount;Currency;Due-Date;Direction;Id;Text\r\n" \
           "INV-1;3100 0001;1250.50;CNY;2026/11/01;Payment;A-1;货款\r\nINV-1;3100;9;CNY;20261102;CRDT;A-2;\r\n"
    loaded = read_csv(text.encode("utf-8"), "erp.csv")
    assert [(i.id, i.counterparty_account, i.amount, i.due_date, i.direction, i.text) for i in loaded] == [
        ("A-1", "31000001", Money(Decimal("1250.50"), "CNY"), dt.date(2026, 11, 1), DBIT, "货款"),
        ("A-2", "3100", Money(Decimal("9.00"), "CNY"), dt.date(2026, 11, 2), CRDT, "")]
    gbk = text.removeprefix("\ufeff").encode("gbk")
    with pytest.raises(OpenItemsInvalid, match="not utf-8"):
        read_csv(gbk, "erp.csv")
    assert read_csv(gbk, "erp.csv", encoding="gbk") == loaded
    with pytest.raises(OpenItemsInvalid, match=r"missing column.*due_date"):
        read_csv(b"reference,counterparty_account,amount,currency,direction\r\n", "erp.csv")


def test_json_open_items_amounts_are_exact_and_faults_are_pointed_at():
    doc = {"items": [{"reference": "INV-1", "counterparty_account": "3100", "amount": 0.1, "currency": "CNY",
                      "due_date": "2026-11-01", "direction": "receipt"}]}
    # 0.1 as a JSON number is read from its text, never through a float
    assert read_json(json.dumps(doc).encode())[0].amount == Money(Decimal("0.10"), "CNY")
    doc["items"][0]["amount"] = {"value": "1"}
    with pytest.raises(OpenItemsInvalid) as err:
        read_json(json.dumps(doc).encode(), "erp.json")
    assert err.value.where == "erp.json /items/0, field amount"
    del doc["items"][0]["amount"]
    with pytest.raises(OpenItemsInvalid, match=r"missing field.*amount"):
        read_json(json.dumps(doc).encode(), "erp.json")
    for bad in (b"", b"[", b"[1]", b'{"x": []}', b"[" * 100_000):
        with pytest.raises(OpenItemsInvalid):
            read_json(bad)


# ---- reports ----------------------------------------------------------------------------------------------

def _report(tmp_path):
    (tmp_path / "month.mt940").write_bytes(write_mt940(statement(), FACTS))
    (tmp_path / "erp.csv").write_bytes(items_csv())
    return build_report([tmp_path / "month.mt940"], tmp_path / "erp.csv")


def test_report_from_files_json_and_csv_agree(tmp_path):
    report = _report(tmp_path)
    doc = json.loads(to_json(report))
    section = doc["sections"][0]
    got = {(m["rule"], tuple(x["entry_id"] for x in m["lines"]), tuple(i["key"] for i in m["items"]))
           for m in section["matches"]}
    assert got == EXPECTED            # MT940 carries everything the rules need
    assert section["summary"]["unmatched_items"] == len(UNMATCHED_ITEMS)
    assert section["summary"]["differences_total"] == "-15.00"
    rows = list(csv.DictReader(io.StringIO(to_csv(report).decode("utf-8-sig"))))
    matched = {(r["group"], r["rule"]) for r in rows if r["status"] == "matched"}
    assert len(matched) == len(EXPECTED)
    assert sum(r["status"] == "unmatched" for r in rows) == len(UNMATCHED_LINES) + len(UNMATCHED_ITEMS)
    assert all(r["amount"] and Decimal(r["amount"]) > 0 for r in rows)


def test_hostile_names_are_escaped_in_html_and_defused_in_csv(tmp_path):
    report = _report(tmp_path)
    html = to_html(report).decode("utf-8")
    # MT940 folds "<" to "(": build the hostile case from the domain statement directly as well
    from reconcile.model import Period, Report, Section
    hostile = reconcile(lines_of(statement()), items())
    direct = to_html(Report((Period(OWN, "CNY", (dt.date(2026, 11, 1), dt.date(2026, 11, 30))),), ("<b>x</b>.xml",),
                            (Section("open items <i>", hostile),), ("<script>x</script> in a file",))).decode("utf-8")
    for page in (html, direct):
        assert "<script" not in page and "<b>x" not in page and "<i>" not in page
        etree.fromstring(page.removeprefix("<!DOCTYPE html>").encode(), etree.HTMLParser())
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; Decoy" in direct
    assert "Content-Security-Policy" in direct
    formula = StatementLine(OWN, 1, dt.date(2026, 11, 1), CRDT, Money(Decimal("1.00"), "CNY"), "1", "=HYPERLINK(1)",
                            "B1", None, None, "+cmd")
    rows = to_csv(Report((Period(OWN, "CNY", (dt.date(2026, 11, 1),) * 2),), ("s",),
                         (Section("s", reconcile([formula], [])),))).decode("utf-8-sig")
    assert "'=HYPERLINK(1)" in rows and "'+cmd" in rows


# ---- the command, as a real process -----------------------------------------------------------------------

def _run(*args, cwd):
    return subprocess.run([*CLI, "reconcile", *map(str, args)], cwd=cwd, capture_output=True, env=env_with(),
                          timeout=120)


def test_reconcile_command_writes_all_three_reports(tmp_path):
    (tmp_path / "month.mt940").write_bytes(write_mt940(statement(), FACTS))
    (tmp_path / "erp.csv").write_bytes(items_csv())
    common = ["--statement", tmp_path / "month.mt940", "--open-items", tmp_path / "erp.csv"]
    for suffix in ("json", "csv", "html"):
        done = _run(*common, "--out", tmp_path / f"report.{suffix}", cwd=ROOT)
        assert done.returncode == 0, done.stderr.decode()
        assert b"8 matches" in done.stderr and b"unmatched 2 statement entries, 4 items" in done.stderr
    doc = json.loads((tmp_path / "report.json").read_bytes())
    assert {(m["rule"], tuple(i["key"] for i in m["items"])) for m in doc["sections"][0]["matches"]} == \
        {(rule, refs) for rule, _, refs in EXPECTED}
    assert (tmp_path / "report.csv").read_bytes().startswith(b"\xef\xbb\xbfsection,status,group,rule")
    html = (tmp_path / "report.html").read_text("utf-8")
    assert "reference-text" in html and "INV-2026-6042" in html and "<script" not in html
    # unmatched items are a result, not an error -- unless a scheduler asks for it
    assert _run(*common, "--fail-on-unmatched", "--out", tmp_path / "r.json", cwd=ROOT).returncode == 1
    # bad input: exit 2 with the place named, and no report written
    (tmp_path / "bad.csv").write_bytes(HEADER.encode() + b"INV-1,3100,12.5x,CNY,2026-11-01,receipt\r\n")
    done = _run("--statement", tmp_path / "month.mt940", "--open-items", tmp_path / "bad.csv",
                "--out", tmp_path / "never.json", cwd=ROOT)
    assert done.returncode == 2 and b"bad.csv line 2, field amount" in done.stderr
    assert not (tmp_path / "never.json").exists()
    done = _run(*common, "--out", tmp_path / "report.pdf", cwd=ROOT)
    assert done.returncode == 2 and b".json, .csv or .html" in done.stderr
    (tmp_path / "cut.mt940").write_bytes(write_mt940(statement(), FACTS)[:-40])
    done = _run("--statement", tmp_path / "cut.mt940", "--open-items", tmp_path / "erp.csv", cwd=ROOT)
    assert done.returncode == 2 and b"cut.mt940 (mt940)" in done.stderr


# ---- against a real gateway -------------------------------------------------------------------------------

def test_gateway_statement_against_its_payments_and_the_erp(maker, gateway, home, tmp_path):
    """Internal payments and incoming credits on a real gateway (SQLite and PostgreSQL); the statement in
    camt.053 is matched against the gateway's own payments (exact) and against the ERP's open items."""
    for ref, amount in (("ERP-PAY-1", "1200.00"), ("ERP-PAY-2", "80.50")):
        payment = dl.payment(ref, OPERATING, amount, "ACME", SUPPLIER)
        payment.insert(1, dl.E.EndToEndId(f"E2E-{ref}"))          # the ERP's own EndToEndId
        assert maker.call(dl.payment_order(payment)).code == "OK"
    with gateway.engine.begin() as conn:
        for amount, payer, reference, e2e in (("5000.00", "31001111", "INV-1001 thank you", None),
                                              ("2985.00", "31002222", "Invoice INV-1002", "PAYER-E2E-9")):
            sandbox.credit(conn, account=OPERATING, amount=amount, payer_name="Payer <Co>", payer_account=payer,
                           payer_bank_code="102290012345", reference=reference, end_to_end_id=e2e,
                           now=gateway.clock(), zone=gateway.settings.zone,
                           own_cnaps_prefix=gateway.settings.own_cnaps_prefix)
    answer = maker.call(dl.statement_query(OPERATING, fmt="camt.053.001.08"))
    assert answer.code == "OK", answer.detail
    (tmp_path / "st.xml").write_bytes(etree.tostring(answer.body[0], xml_declaration=True, encoding="UTF-8"))
    today = gateway.clock().astimezone(gateway.settings.zone).date()
    (tmp_path / "erp.csv").write_text(HEADER + "\r\n".join([
        f"E2E-ERP-PAY-1,{SUPPLIER},1200.00,CNY,{today},payment",
        f"INV-1001,31001111,5000.00,CNY,{today},receipt",
        f"INV-1002,31002222,3000.00,CNY,{today},receipt",
        f"INV-1003,31003333,10.00,CNY,{today},receipt"]) + "\r\n")
    report = build_report([tmp_path / "st.xml"], tmp_path / "erp.csv",
                          payments=partial(gateway_payments.load, home.home))
    erp, ours = report.sections
    assert groups(erp.result) >= {("reference-text", (erp.result.matches[-1].lines[0].entry_id,), ("INV-1002",))}
    assert {(m.rule, m.items[0].id) for m in erp.result.matches} == {
        ("exact-reference", "E2E-ERP-PAY-1"), ("exact-reference", "INV-1001"), ("reference-text", "INV-1002")}
    assert [i.id for i in erp.result.unmatched_items] == ["INV-1003"]
    # the gateway's own payments: both found by exact reference, nothing of ours missing from the statement
    assert sorted(m.rule for m in ours.result.matches) == ["exact-reference", "exact-reference"]
    assert ours.result.unmatched_items == ()
    assert {m.lines[0].bank_ref for m in ours.result.matches} == {m.items[0].id for m in ours.result.matches}
    payments = gateway_payments.load(home.home, OPERATING)
    assert sorted(p.reference for p in payments) == ["ERP-PAY-1", "ERP-PAY-2"]


# ---- performance ------------------------------------------------------------------------------------------

def synthetic_month(n: int, seed: int = 7):
    """n receipts against n open items: most by reference, some by amount and account, some by text,
    some groups, and a few of each side left over."""
    rnd = random.Random(seed)
    lines, found = [], []
    for k in range(n):
        account = f"3100{rnd.randrange(n // 4 + 1):06d}"
        amount = Money(Decimal(rnd.randrange(10_000, 50_000_000)) / 100, "CNY")
        day = dt.date(2026, 11, rnd.randrange(1, 29))
        ref = f"INV-{k:06d}"
        kind = k % 10
        narrative = {0: f"payment {ref}", 1: "transfer", 2: f"re {ref[:-2]}{ref[-1]}{ref[-2]}",
                     3: "", 4: "", 5: f"{ref}", 6: "x", 7: "y", 8: "z", 9: "w"}[kind]
        e2e = ref if kind >= 5 else None
        lines.append(StatementLine(OWN, k + 1, day, CRDT, amount, account if kind != 2 else "39999999", "payer",
                                   f"B{k}", None, e2e, narrative))
        found.append(OpenItem(ref, ref, account, amount, day - dt.timedelta(days=rnd.randrange(0, 4)), CRDT))
    return lines, found


def test_a_busy_month_reconciles_in_seconds():
    lines, found = synthetic_month(5000)
    started = time.perf_counter()
    result = reconcile(lines, found)
    elapsed = time.perf_counter() - started
    assert len(result.matches) >= 4900
    assert all(m.lines[0].entry_id - 1 == int(m.items[0].id[4:]) for m in result.matches if len(m.items) == 1)
    assert elapsed < 10, f"{elapsed:.1f} s for 5,000 x 5,000"


# ---- statements of several messages or files without bank references (issue 25) -------------------------

def _plain_mt940(opening: str, closing: str, day: str, amounts: list[str]) -> str:
    """One message of another bank's MT940 whose entries carry no bank reference (//...)."""
    lines = "".join(f":61:{day}C{a}NTRFNONREF\r\n:86:Zahlung {a}\r\n" for a in amounts)
    return (f":20:STMT{day}\r\n:25:DE89370400440532013000\r\n:28C:1/1\r\n:60F:C{day}EUR{opening}\r\n"
            f"{lines}:62F:C{day}EUR{closing}\r\n-\r\n")


def test_entries_without_bank_references_are_numbered_across_messages_and_files(tmp_path):
    from reconcile import statement_files

    first = _plain_mt940("100,00", "130,00", "261124", ["10,00", "20,00"])
    second = _plain_mt940("130,00", "160,00", "261125", ["10,00", "20,00"])
    (tmp_path / "both.mt940").write_text(first + second)
    (tmp_path / "a.mt940").write_text(first)
    (tmp_path / "b.mt940").write_text(second)
    for paths in ([tmp_path / "both.mt940"], [tmp_path / "a.mt940", tmp_path / "b.mt940"]):
        st = statement_files.read_all(paths)
        result = reconcile(lines_of(st), [])            # crashed: statement line (..., 1, '') appears twice
        assert len(result.unmatched_lines) == 4
        assert [e.entry_id for e in st.entries] == [1, 2, 3, 4]
        assert [e.bank_ref for e in st.entries] == ["", "", "", ""]


def test_a_chf_statement_reconciles_against_chf_open_items():
    from pathlib import Path

    from reconcile import statement_files
    sample = Path(__file__).parent.parent / "adapters" / "statements" / "postfinance_chf.sta"
    st = statement_files.read_all([sample])
    items_ = read_csv(b"reference,counterparty_account,amount,currency,due_date,direction\n"
                      b"261125CH00000002,,850.00,CHF,2026-11-25,receipt\n")
    result = reconcile(lines_of(st), items_)
    assert [(m.rule, [x.amount.amount for x in m.lines]) for m in result.matches] == \
        [("exact-reference", [Decimal("850.00")])]


# ---- files of several accounts; --account; --lenient (issue 25) ------------------------------------------

def _two_accounts_mt940() -> str:
    """Two accounts in one MT940 file (as banks send a company's accounts together); neither gives bank
    references, so only the account tells their entries apart."""
    first = _plain_mt940("100,00", "130,00", "261124", ["10,00", "20,00"])
    other = first.replace("DE89370400440532013000", "DE02120300000000202051").replace("Zahlung", "Payment")
    return first + other


def test_a_file_of_several_accounts_gives_one_section_per_account(tmp_path):
    (tmp_path / "two.mt940").write_text(_two_accounts_mt940())
    (tmp_path / "erp.csv").write_bytes(b"reference,counterparty_account,amount,currency,due_date,direction\n"
                                       b"Payment 20,,20.00,EUR,2026-11-24,receipt\n"
                                       b"Zahlung 10,,10.00,EUR,2026-11-24,receipt\n"
                                       b"NEVER-PAID,,99.00,EUR,2026-11-24,receipt\n")
    report = build_report([tmp_path / "two.mt940"], tmp_path / "erp.csv")
    assert [p.account for p in report.accounts] == ["DE89370400440532013000", "DE02120300000000202051"]
    first, second, rest = report.sections
    assert first.account == "DE89370400440532013000" and second.account == "DE02120300000000202051"
    # each item settled once, on the account it arrived on; the item nobody paid is listed once, at the end
    for section in (first, second):
        assert {x.account for m in section.result.matches for x in m.lines} == {section.account}
        assert {x.account for x in section.result.unmatched_lines} <= {section.account}
        assert not section.result.unmatched_items
    settled = [(m.lines[0].account, i.id) for s in (first, second) for m in s.result.matches for i in m.items]
    assert sorted(settled) == [("DE02120300000000202051", "Payment 20"), ("DE89370400440532013000", "Zahlung 10")]
    assert [i.id for i in rest.result.unmatched_items] == ["NEVER-PAID"]
    doc = json.loads(to_json(report))
    assert [a["account"] for a in doc["accounts"]] == [p.account for p in report.accounts]
    assert [s["account"] for s in doc["sections"]] == [first.account, second.account, ""]
    # --account keeps one; an account not in the files is refused with the ones there are
    one = build_report([tmp_path / "two.mt940"], tmp_path / "erp.csv", account="DE02 1203 0000 0000 2020 51")
    assert [p.account for p in one.accounts] == ["DE02120300000000202051"] and len(one.sections) == 1
    done = _run("--statement", tmp_path / "two.mt940", "--open-items", tmp_path / "erp.csv", "--account", "X1",
                cwd=ROOT)
    assert done.returncode == 2 and b"'X1' is not in the statement files" in done.stderr


def test_lenient_reads_an_inconsistent_file_and_says_so_first(tmp_path):
    good = _plain_mt940("100,00", "130,00", "261124", ["10,00", "20,00"])
    (tmp_path / "bad.mt940").write_text(good.replace(":62F:C261124EUR130,00", ":62F:C261124EUR131,00"))
    (tmp_path / "erp.csv").write_bytes(b"reference,counterparty_account,amount,currency,due_date,direction\n"
                                       b"Zahlung 10,,10.00,EUR,2026-11-24,receipt\n")
    common = ["--statement", tmp_path / "bad.mt940", "--open-items", tmp_path / "erp.csv"]
    done = _run(*common, "--out", tmp_path / "never.html", cwd=ROOT)
    assert done.returncode == 2 and b"does not add up" in done.stderr and len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "never.html").exists()
    for suffix in ("html", "json", "csv"):
        done = _run(*common, "--lenient", "--out", tmp_path / f"r.{suffix}", cwd=ROOT)
        assert done.returncode == 0, done.stderr.decode()
        assert done.stderr.startswith(b"inconsistent (read with --lenient): bad.mt940 (mt940) line 1: does not add up")
    html = (tmp_path / "r.html").read_text("utf-8")
    assert html.index("The statement files are inconsistent") < html.index("Statement file(s)") < html.index("<h2>open")
    assert "but the closing balance says 131.00" in html
    doc = json.loads((tmp_path / "r.json").read_bytes())
    assert next(iter(doc)) == "inconsistencies" and "does not add up" in doc["inconsistencies"][0]
    assert len(doc["sections"][0]["matches"]) == 1
    rows = list(csv.reader(io.StringIO((tmp_path / "r.csv").read_text("utf-8-sig"))))
    assert rows[1][:2] == ["statement files", "inconsistent"] and "does not add up" in rows[1][13]


def test_a_statement_in_a_declared_format_reconciles_from_the_command_line(tmp_path):
    """A bank's CSV statement declared by a mapping (config/formats/bank-csv.toml) is read by `reconcile`
    when the folder of mappings is named, or is that of --home; without it, the format is unknown and the
    message lists the formats there are."""
    formats = tmp_path / "formats"
    formats.mkdir()
    shutil.copy(ROOT / "config" / "formats" / "bank-csv.toml", formats)
    statement = ROOT / "config" / "formats" / "bank-csv.golden" / "statement-basic" / "statement.bankcsv.statement.csv"
    (tmp_path / "erp.csv").write_text(HEADER + "REF-1,6222000000009001,12500.00,CNY,2026-11-25,payment\r\n"
                                               "REF-5,12345,250.00,CNY,2026-11-25,receipt\r\n", "utf-8")
    common = ["--statement", statement, "--open-items", tmp_path / "erp.csv", "--format", "bankcsv.statement.csv"]
    done = _run(*common, "--formats", formats, "--out", tmp_path / "report.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    doc = json.loads((tmp_path / "report.json").read_bytes())
    assert sorted(i["key"] for m in doc["sections"][0]["matches"] for i in m["items"]) == ["REF-1", "REF-5"]
    unknown = _run(*common, cwd=tmp_path)
    assert unknown.returncode == 2 and b"no reader for 'bankcsv.statement.csv'" in unknown.stderr
    assert _run(*common, "--formats", tmp_path / "nowhere", cwd=tmp_path).returncode == 2
    not_home = _run(*common, "--home", tmp_path, cwd=tmp_path)
    assert not_home.returncode == 2 and b"is not a gateway home" in not_home.stderr
    # A gateway home's own formats folder, where `directlink adapters add` puts mappings, is the default.
    from gateway.setup import init_home
    home = init_home(tmp_path / "home", "p256").home
    (home / "formats").mkdir(exist_ok=True)
    shutil.copy(formats / "bank-csv.toml", home / "formats")
    done = _run(*common, "--home", home, "--out", tmp_path / "with-home.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert b"gateway payments" in done.stderr
