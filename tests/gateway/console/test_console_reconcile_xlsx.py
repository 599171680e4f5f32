"""XLSX open items in the console's reconciliation, in Chromium: a workbook with Chinese headers (written here
with openpyxl as an ERP exports it, a title above the table) is read through the column mapping uploaded
beside it (the TOML of `directlink reconcile --columns`, reconcile/xlsx.py); the mapping is kept with the run
and used by the client's next upload that brings none; a workbook without a mapping, a mapping that is no
TOML and a mapping that does not fit the sheet are refused with reconcile's reason, nothing saved."""
from __future__ import annotations

import datetime as dt
from io import BytesIO

from openpyxl import Workbook
from sqlalchemy import select

from console.test_console_reconcile import count, keys, recon, rules  # noqa: F401 (recon: the fixture)
from console.test_console_tracker import OPERATING, pay, sign_in
from gateway.protocol import client as dl
from gateway.storage.tables import audit_log, recon_runs

MAPPING = """
[open_items]
currency = "CNY"
[open_items.columns]
reference = "单据编号"
counterparty_name = "往来单位"
counterparty_account = "对方账号"
amount = "金额"
due_date = "到期日"
direction = "收付"
"""


def book(today: dt.date) -> bytes:
    workbook = Workbook()
    ws = workbook.active
    ws.title = "未达项"
    ws.append(["某某集团 应收应付未达项"])
    ws.append([])
    ws.append(["单据编号", "往来单位", "对方账号", "金额", "到期日", "收付"])
    ws.append(["RC-1", "华为技术有限公司", "6222000000009001", 1200, today, "DBIT"])
    ws.append(["INV-77", "某某科技", 6217000000000077, "7,900.00", (today - dt.timedelta(days=20)).isoformat(), "payment"])
    ws.append(["INV-88", "Nobody", "6217000000000088", 99.0, today, "receipt"])
    out = BytesIO()
    workbook.save(out)
    return out.getvalue()


def upload(page, url: str, statement: bytes, items: bytes, columns: bytes | None) -> None:
    page.goto(f"{url}/console/reconcile")
    page.set_input_files("#f-statement", {"name": "answer.xml", "mimeType": "application/xml", "buffer": statement})
    page.set_input_files("#f-items", {"name": "未达项.xlsx", "buffer": items, "mimeType":
                                      "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"})
    if columns is not None:
        page.set_input_files("#f-columns", {"name": "columns.toml", "mimeType": "text/plain", "buffer": columns})
    page.click("#run")
    page.wait_for_load_state()


def test_xlsx_open_items_through_an_uploaded_then_remembered_mapping(recon):  # noqa: F811
    maker = recon.xml("maker")
    for ref, value, payee in (("RC-1", "1200.00", "华为技术有限公司"), ("RC-3", "8000.00", "上海某某科技有限公司")):
        assert pay(maker, ref, value, payee)[2] == "SETTLED"
    statement = maker.call(dl.statement_query(OPERATING)).raw
    today = dt.datetime.now(recon.gateway.settings.zone).date()
    items = book(today)
    page = sign_in(recon, "viewer")
    before = count(recon, audit_log)

    # Refused, nothing saved: no mapping (none remembered yet), no TOML, a mapping whose headers are not the sheet's.
    page.goto(f"{recon.url}/console/reconcile")
    assert page.is_visible("#no-remembered")
    upload(page, recon.url, statement, items, None)
    assert "未达项.xlsx" in page.inner_text("#upload-error") and "column mapping" in page.inner_text("#upload-error")
    upload(page, recon.url, statement, items, b"[open_items.columns\nreference = 1")
    assert "columns.toml: not TOML" in page.inner_text("#upload-error")
    upload(page, recon.url, statement, items, MAPPING.replace('"金额"', '"金额(元)"').encode())
    error = page.inner_text("#upload-error")
    assert "未达项.xlsx" in error and "金额(元)" in error and "no header row" in error
    assert count(recon, recon_runs) == 0 and count(recon, audit_log) == before

    # With the mapping: RC-1 matched by its reference, the two others left; the amounts read exactly.
    upload(page, recon.url, statement, items, MAPPING.encode())
    assert "/console/reconcile/runs/1" in page.url
    assert list(rules(page).values()) == ["exact-reference"]
    assert keys(page, "left-items") == ["INV-77", "INV-88"]
    assert page.inner_text("#totals-items .debit") == "9100.00" and page.inner_text("#totals-items .credit") == "99.00"

    # Again without the mapping: the page offers the remembered one, and the run uses it.
    page.goto(f"{recon.url}/console/reconcile")
    assert "单据编号" in (page.text_content("#remembered pre") or "")  # folded: text_content
    upload(page, recon.url, statement, items, None)
    assert "/console/reconcile/runs/2" in page.url
    assert list(rules(page).values()) == ["exact-reference"] and keys(page, "left-items") == ["INV-77", "INV-88"]
    page.click("#again")
    page.wait_for_url("**/reconcile/runs/3")
    assert keys(page, "left-items") == ["INV-77", "INV-88"]
    with recon.gateway.engine.connect() as conn:
        assert conn.execute(select(recon_runs.c.columns).order_by(recon_runs.c.id)).scalars().all() == [MAPPING] * 3

    # A mapping uploaded now wins over the remembered one: one that does not fit is refused, nothing saved.
    upload(page, recon.url, statement, items, MAPPING.replace('"收付"', '"方向"').encode())
    assert "方向" in page.inner_text("#upload-error")
    assert count(recon, recon_runs) == 3
