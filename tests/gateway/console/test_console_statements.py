"""Statements in Chromium: the entries of a day with a running balance that adds up and ends on the ledger's
balance, and every download read by an independent parser (mt-940, pycamt, bai2) or as JSON. SQLite: the
page only reads."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import mt940
import pytest
from bai2 import bai2
from pycamt.parser import Camt053Parser
from sqlalchemy import select

from console.console_kit import shot
from console.test_console_tracker import OPERATING, pay, sign_in
from gateway.storage.tables import accounts


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'gateway.db'}"


def amount(text: str) -> Decimal:
    return Decimal(text.replace(",", "")) if text.strip() else Decimal(0)


def download(page, fmt: str) -> bytes:
    with page.expect_download() as got:
        page.click(f"#downloads a[data-format='{fmt}']")
    return Path(got.value.path()).read_bytes()


def test_a_day_with_its_running_balance_and_every_format(console):
    maker = console.xml("maker")
    for n, (value, payee) in enumerate((("1200.00", "华为技术有限公司"), ("35.50", "=cmd|' /C calc'!A0"),
                                        ("8000.00", "上海某某科技有限公司"))):
        assert pay(maker, f"ST-{n}", value, payee)[2] == "SETTLED"
    page = sign_in(console, "viewer")
    page.click("nav a[href='/console/statements']")
    page.select_option("#f-account", OPERATING)
    page.click("#show")
    rows = page.eval_on_selector_all("#entries tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.innerText))")
    assert len(rows) >= 3
    running = amount(page.inner_text("#opening"))
    for row in rows:   # the running balance is the opening plus every credit less every debit before it
        running += amount(row[5]) - amount(row[4])
        assert amount(row[6]) == running, row
    with console.gateway.engine.connect() as conn:
        booked = conn.execute(select(accounts.c.booked).where(accounts.c.number == OPERATING)).scalar()
    assert amount(page.inner_text("#closing")) == running == Decimal(booked).scaleb(-2)
    debits = sum(amount(r[4]) for r in rows)
    assert amount(page.inner_text("#debits")) == debits >= Decimal("9235.50")
    shot(page, "statement-en")

    today = dt.datetime.now(console.gateway.settings.zone).date()
    formats = page.eval_on_selector_all("#downloads a", "as => as.map(a => a.dataset.format)")
    assert {"mt940", "bai2", "camt.053.001.02", "camt.053.001.08", "kingdee.statement.json"} <= set(formats)
    files = {fmt: download(page, fmt) for fmt in formats}   # every one downloads
    assert all(files.values())
    found = [t.data["amount"].amount for t in mt940.parse(files["mt940"].decode("utf-8"))]
    assert sorted(-a for a in found if a < 0)[-3:] == sorted([Decimal("35.50"), Decimal("1200.00"), Decimal("8000.00")])[-3:]
    camt = Camt053Parser(files["camt.053.001.08"])
    assert Decimal(camt.get_statement_info()[0]["ClosingBalance"]) == running
    assert {(t["Amount"], t["CreditDebitIndicator"]) for t in camt.get_transactions()} >= {
        ("1200.00", "DBIT"), ("35.50", "DBIT"), ("8000.00", "DBIT")}
    bai = bai2.parse_from_string(files["bai2"].decode("ascii"), check_integrity=True)
    amounts = {t.amount for g in bai.children for a in g.children for t in a.children}
    assert {120000, 3550, 800000} <= amounts                           # minor units
    closing = {s.type_code.code: s.amount for s in bai.children[-1].children[0].header.summary_items}["015"]
    assert Decimal(closing).scaleb(-2) == running
    assert "8000.00" in json.dumps(json.loads(files["kingdee.statement.json"]))
    # Another day, and an account the viewer may not query.
    page.goto(f"{console.url}/console/statements?account={OPERATING}&date_from={today - dt.timedelta(days=9)}"
              f"&date_to={today - dt.timedelta(days=8)}")
    assert page.locator("#entries tbody tr").count() == 0
    assert page.request.get(f"{console.url}/console/statements/download?account=6222000000009001&format=mt940"
                            ).status == 404
