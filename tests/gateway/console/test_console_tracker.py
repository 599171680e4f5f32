"""The payments tracker in Chromium: a search finds the right payments (payee in Chinese, pinyin or by
account; state; amount; date; reference), keyset pages walk thousands of payments without a gap or a repeat,
a payment's page shows its whole history, and the CSV and XLSX exports read back with a formula-looking
payee neutralised. On SQLite: the tracker only reads."""
from __future__ import annotations

import csv
import datetime as dt
import io
import statistics
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import openpyxl
import pytest
from sqlalchemy import func, insert, select

from adapters.spreadsheet import plain
from console.console_kit import shot
from domain.names import key
from gateway.clearing import Clearing
from gateway.protocol import client as dl
from gateway.setup import DEMO_ACCOUNTS
from gateway.storage.tables import audit_log, payments

OPERATING = DEMO_ACCOUNTS["operating"]
NS = "{urn:directlink:v1}"
BULK = 3000


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'gateway.db'}"


def pay(maker, ref: str, amount: str, payee: str, account: str = "6222000000009001", **kw) -> tuple[str, str, str]:
    status = maker.call(dl.payment_order(dl.payment(ref, OPERATING, amount, payee, account, **kw))).body.find(
        NS + "PaymentStatus")
    return status.findtext(NS + "PaymentId"), status.findtext(NS + "OrderDigest"), status.findtext(NS + "State")


def bulk(console, model_id: str, n: int = BULK) -> None:
    """n payments written straight into the payments table, shaped as the real one (a fast path of the real
    table; the tracker reads nothing else): spread over 30 days, amounts 1.00-n.00, payees 'Supplier NNNN'."""
    with console.gateway.engine.begin() as conn:
        model = conn.execute(select(payments).where(payments.c.id == model_id)).one()._asdict()
        start = model["created_at"] - dt.timedelta(days=30)
        rows = []
        for i in range(n):
            name = f"Supplier {i:04d}"
            rows.append({**model, "id": f"BULK{i:08d}", "client_ref": f"BULK-{i:05d}", "end_to_end_id": f"E2E{i:08d}",
                         "amount": (i + 1) * 100, "creditor_name": name, "creditor_key": key(name),
                         "creditor_account": f"62170000{i:08d}", "state": "SETTLED",
                         "created_at": start + dt.timedelta(minutes=13 * i), "updated_at": model["updated_at"]})
        conn.execute(insert(payments), rows)


def sign_in(console, operator: str, lang: str = "en"):
    page = console.page(lang)
    console.enrol(page, operator)
    page.goto(f"{console.url}/console/signin")
    page.fill("#client", "DEMO")
    page.fill("#operator", operator)
    page.click("#signin-form button")
    page.wait_for_url(lambda u: u.endswith(("/console/inbox", "/console/balances")))
    return page


def found(page) -> list[str]:
    return page.eval_on_selector_all("#found tbody tr td:nth-child(2) div", "ds => ds.map(d => d.textContent)")


def search(page, url: str, **fields) -> list[str]:
    page.goto(f"{url}/console/payments")
    for name, value in fields.items():
        if name == "state":
            page.select_option("#f-state", value)
        else:
            page.fill(f"#f-{name}", value)
    page.press("#f-ref", "Enter")   # the keyboard submits the search
    page.wait_for_load_state()
    return found(page)


def test_search_pages_history_and_exports(console):
    maker, checker = console.xml("maker"), console.xml("checker")
    huawei, _, state = pay(maker, "TR-HW", "1200.00", "华为技术有限公司")
    assert state == "SETTLED"
    formula, _, _ = pay(maker, "TR-FX", "77.00", '=HYPERLINK("http://evil.example/","x")')
    held, digest, state = pay(maker, "TR-BIG", "250000.00", "深圳某某电子有限公司", "4000123412341234",
                              scheme="CNAPS", bank_code="102290012345")
    assert state == "PENDING_APPROVAL"
    checker.call(dl.approval(held, digest))
    Clearing(console.gateway.engine, console.gateway.settings, console.gateway.clock).run_once()
    bulk(console, huawei)

    page = sign_in(console, "viewer")   # query grants only: the tracker is in its navigation
    assert page.locator("nav a[href='/console/payments']").count() == 1
    url = console.url
    assert search(page, url, payee="华为") == [huawei]
    assert search(page, url, payee="Hua Wei") == [huawei]          # pinyin, spaced
    assert search(page, url, payee="huaweijishu") == [huawei]
    assert search(page, url, payee="4000 1234 1234 1234") == [held]  # an account, grouped
    assert search(page, url, state="SETTLED", min="200000", max="300000") == [held]
    assert search(page, url, min="1", max="3") == ["BULK00000002", "BULK00000001", "BULK00000000"]
    assert search(page, url, ref="TR-F") == [formula]
    today = dt.datetime.now(console.gateway.settings.zone).date().isoformat()   # the bank's day
    assert set(search(page, url, **{"from": today, "to": today})) == {huawei, formula, held}   # the bulk is older

    # Every page, walked by its "next" link: each visible payment once, newest first, no gap, no repeat.
    seen, times, next_url, last = [], [], f"{url}/console/payments", ""
    while next_url:
        page.goto(next_url)
        last = next_url
        seen += found(page)
        link = page.locator("#next-page")
        next_url = url + link.get_attribute("href") if link.count() else ""
    for target in [f"{url}/console/payments", last] * 5:   # the server's time for the first and the last page
        started = time.perf_counter()
        assert page.request.get(target).status == 200
        times.append(time.perf_counter() - started)
    with console.gateway.engine.connect() as conn:
        visible = conn.execute(select(func.count()).select_from(payments)
                               .where(payments.c.client_id == "DEMO")).scalar()
    assert len(seen) == len(set(seen)) == visible == BULK + 3
    assert seen[-1] == "BULK00000000"
    first, deepest = statistics.median(times[0::2]), statistics.median(times[1::2])
    assert first < 0.2 and deepest < 0.2, times   # the last page as fast as the first: no OFFSET
    print(f"\n{len(seen) // 50 + 1} pages of 50 over {visible} payments: first page {first * 1000:.1f} ms, "
          f"last page {deepest * 1000:.1f} ms (median of 5 GETs each)")

    # The exports of the current search read back: the formula-looking payee is text in both.
    search(page, url, ref="TR-")
    shot(page, "payments-en")
    with page.expect_download() as got:
        page.click("#export-csv")
    text = Path(got.value.path()).read_text(encoding="utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][0] == "PaymentId" and {r[0] for r in table[1:]} == {huawei, formula, held}
    [cell] = [r[4] for r in table[1:] if r[0] == formula]
    assert cell.startswith("'=") and plain(cell) == '=HYPERLINK("http://evil.example/","x")'
    with page.expect_download() as got:
        page.click("#export-xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(Path(got.value.path()).read_bytes())).active
    cells = {r[0].value: r for r in sheet.iter_rows(min_row=2)}
    assert set(cells) == {huawei, formula, held}
    payee = cells[formula][4]
    assert payee.value == '=HYPERLINK("http://evil.example/","x")' and payee.data_type == "s" and payee.quotePrefix
    assert not [c for row in sheet.iter_rows() for c in row if c.data_type == "f"]
    assert cells[held][6].value == 250000 and cells[held][8].value == "SETTLED"
    assert parse_qs(urlparse(page.get_attribute("#export-xlsx", "href")).query) == {"reference": ["TR-"]}
    with console.gateway.engine.connect() as conn:
        exported = conn.execute(select(audit_log.c.operator_id, audit_log.c.detail)
                                .where(audit_log.c.code == "PAYMENTS_EXPORTED").order_by(audit_log.c.id)).all()
    assert [(r.operator_id, r.detail.split(",")[0]) for r in exported] == [("viewer", "csv of 3 payment(s)"),
                                                                           ("viewer", "xlsx of 3 payment(s)")]

    # One payment's history: approval, clearing answer, states, and its status report.
    page.goto(f"{url}/console/payments/{held}")
    assert page.inner_text("#state").startswith("SETTLED")
    assert [r.split("\t")[1:3] for r in page.inner_text("#approvals tbody").splitlines()] == [["checker", "APPROVE"]]
    assert "SETTLED" in page.inner_text("#clearing")
    states = page.inner_text("#events tbody")
    assert "PENDING_APPROVAL" in states and "SETTLED" in states
    assert f"<PaymentId>{held}</PaymentId>" in page.inner_text("#report")
    shot(page, "payment-en")
    # A payment of an account the operator may not query is not found.
    assert page.goto(f"{url}/console/payments/NO-SUCH").status == 404


def test_a_bad_search_is_named_and_changes_nothing(console):
    page = sign_in(console, "viewer", "zh")
    answer = page.goto(f"{console.url}/console/payments?amount_min=abc")
    assert answer.status == 400 and "amount_min" in page.inner_text("#bad-search")
    assert page.goto(f"{console.url}/console/payments?after=garbage").status == 400
    assert page.goto(f"{console.url}/console/payments?amount_max=1e30").status == 400   # beyond any amount
    assert page.goto(f"{console.url}/console/payments?state=LOST").status == 400
    assert page.request.get(f"{console.url}/console/payments/export.csv?date_from=2026-13-01").status == 400
    page.goto(f"{console.url}/console/payments")
    assert page.inner_text("h1") == "付款查询"


def test_every_page_of_part_two_in_chinese_by_default(console):
    page = sign_in(console, "viewer", "zh")
    heads = {}
    for name in ("payments", "statements", "audit", "delivery"):
        page.goto(f"{console.url}/console/{name}")
        heads[name] = page.inner_text("h1")
    assert heads == {"payments": "付款查询", "statements": "账户对账单", "audit": "审计记录查询", "delivery": "通知投递状态"}
    shot(page, "delivery-zh")
    page.goto(f"{console.url}/console/statements")
    shot(page, "statement-zh")
