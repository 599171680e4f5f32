"""XLSX statements (对账单) and open items through a column mapping (reconcile/xlsx.py), and `directlink
reconcile --columns`, which saves the mapping for the runs after it. The workbooks are written here with
openpyxl as a Chinese bank's online banking exports them: a title and the account above the table, date
cells and text dates, amounts as numbers and as text with thousands separators."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pytest
from openpyxl import Workbook
from processes import CLI, ROOT, env_with

from reconcile import statement_files
from reconcile.open_items import OpenItemsInvalid
from reconcile.report import build_report
from reconcile.statement_files import StatementFileInvalid
from reconcile.xlsx import ColumnsInvalid, load_columns

ACCOUNT = "31001234567890"
HEADER = ["交易日期", "交易流水号", "摘要", "借方金额", "贷方金额", "余额", "对方户名", "对方账号"]
ROWS = [
    [dt.datetime(2026, 11, 3, 10, 15), "B2611030001", "货款 INV-2026-0042", None, 3200.0, 13200.0, "上海某某科技有限公司",
     "31009999000011"],
    ["2026-11-05", "B2611050007", "付款 PAY-5001", "1,250.50", "", "11,949.50", "北京供应商有限公司", 6222000000009001],
    [dt.date(2026, 11, 6), "B2611060002", "手续费", 0.5, 0, 11949.0, None, None],
]
MAPPING = f"""
[statement]
account = "{ACCOUNT}"
currency = "CNY"
[statement.columns]
date = "交易日期"
bank_ref = "交易流水号"
narrative = "摘要"
debit = "借方金额"
credit = "贷方金额"
balance = "余额"
counterparty_name = "对方户名"
counterparty_account = "对方账号"

[open_items]
currency = "CNY"
[open_items.columns]
reference = "单据编号"
counterparty_account = "对方账号"
amount = "金额"
due_date = "到期日"
direction = "收付"
counterparty_name = "往来单位"
"""


def workbook(rows: list[list], header: list[str] = HEADER, title: bool = True) -> bytes:
    book = Workbook()
    ws = book.active
    ws.title = "对账单"
    if title:
        ws.append(["中国某某银行 账户明细对账单"])
        ws.append([f"账号：{ACCOUNT}", None, "币种：人民币"])
        ws.append([])
    ws.append(header)
    for row in rows:
        ws.append(row)
    ws.append([])
    ws.append(["合计", None, None, 1251.0, 3200.0])      # below the empty row: not an entry
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def open_items_book() -> bytes:
    book = Workbook()
    ws = book.active
    ws.append(["单据编号", "往来单位", "对方账号", "金额", "到期日", "收付"])
    ws.append(["INV-2026-0042", "上海某某科技有限公司", "31009999000011", 3200, dt.date(2026, 11, 2), "receipt"])
    ws.append(["PAY-5001", "北京供应商有限公司", "6222000000009001", "1250.50", "2026/11/05", "payment"])
    out = BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "对账单.xlsx").write_bytes(workbook(ROWS))
    (tmp_path / "open-items.xlsx").write_bytes(open_items_book())
    (tmp_path / "columns.toml").write_text(MAPPING, "utf-8")
    return tmp_path


def test_statement_and_open_items_from_xlsx(files):
    columns = load_columns(files / "columns.toml")
    st = statement_files.read_accounts([files / "对账单.xlsx"], columns=columns).statements[0]
    assert (st.account, st.currency, st.opening.amount, st.closing.amount) == \
        (ACCOUNT, "CNY", Decimal("10000.00"), Decimal("11949.00"))
    assert [(e.direction, e.amount.amount, e.bank_ref, e.value_date) for e in st.entries] == [
        ("CRDT", Decimal("3200.00"), "B2611030001", dt.date(2026, 11, 3)),
        ("DBIT", Decimal("1250.50"), "B2611050007", dt.date(2026, 11, 5)),
        ("DBIT", Decimal("0.50"), "B2611060002", dt.date(2026, 11, 6))]
    assert (st.entries[0].counterparty.name, st.entries[1].counterparty.account) == \
        ("上海某某科技有限公司", "6222000000009001")            # an account Excel stored as a number
    report = build_report([files / "对账单.xlsx"], files / "open-items.xlsx", columns=columns)
    result = report.sections[0].result
    assert sorted((m.rule, m.items[0].id) for m in result.matches) == [
        ("exact-reference", "INV-2026-0042"), ("exact-reference", "PAY-5001")]
    assert [x.bank_ref for x in result.unmatched_lines] == ["B2611060002"]


def test_xlsx_faults_name_the_row_and_the_header(files):
    columns = load_columns(files / "columns.toml")
    bad = [row[:] for row in ROWS]
    bad[1][3] = "1250.5x"
    (files / "bad.xlsx").write_bytes(workbook(bad))
    with pytest.raises(StatementFileInvalid, match=r"bad.xlsx \(xlsx\) sheet 对账单 row 6, 借方金额: '1250.5x'"):
        statement_files.read_accounts([files / "bad.xlsx"], columns=columns)
    wrong_balance = [row[:] for row in ROWS]
    wrong_balance[2][5] = 11950.0
    (files / "sum.xlsx").write_bytes(workbook(wrong_balance))
    with pytest.raises(StatementFileInvalid, match="does not add up"):
        statement_files.read_accounts([files / "sum.xlsx"], columns=columns)
    (files / "renamed.xlsx").write_bytes(workbook(ROWS, header=[h.replace("贷方金额", "收入金额") for h in HEADER]))
    with pytest.raises(StatementFileInvalid, match="no header row holding every mapped header"):
        statement_files.read_accounts([files / "renamed.xlsx"], columns=columns)
    with pytest.raises(StatementFileInvalid, match="column mapping: give it with --columns"):
        statement_files.read_accounts([files / "对账单.xlsx"])
    no_direction = MAPPING.replace('direction = "收付"\n', "")
    with pytest.raises(OpenItemsInvalid, match="the column mapping gives no direction"):
        build_report([files / "对账单.xlsx"], files / "open-items.xlsx",
                     columns=__import__("tomllib").loads(no_direction))
    (files / "broken.toml").write_text('[statement.columns]\ndate = "交易日期"\nweekday = "星期"\n', "utf-8")
    with pytest.raises(ColumnsInvalid, match="unknown field"):
        load_columns(files / "broken.toml")


def test_columns_given_once_are_saved_for_the_next_runs(files):
    env = env_with(XDG_CONFIG_HOME=str(files / "config"))

    def run(*args: object) -> subprocess.CompletedProcess:
        return subprocess.run([*CLI, "reconcile", "--statement", files / "对账单.xlsx", "--open-items",
                               files / "open-items.xlsx", *map(str, args)], capture_output=True, env=env, cwd=ROOT,
                              timeout=120)

    first = run("--columns", files / "columns.toml", "--out", files / "r1.json")
    assert first.returncode == 0, first.stderr.decode()
    assert (files / "config" / "directlink" / "reconcile-columns.toml").read_text("utf-8") == MAPPING
    (files / "columns.toml").unlink()
    again = run("--out", files / "r2.json")                     # no --columns: the saved mapping
    assert again.returncode == 0, again.stderr.decode()
    assert json.loads((files / "r1.json").read_bytes())["sections"] == \
        json.loads((files / "r2.json").read_bytes())["sections"]
    (files / "config" / "directlink" / "reconcile-columns.toml").unlink()
    none = run()
    assert none.returncode == 2 and b"--columns FILE" in none.stderr and len(none.stderr.splitlines()) == 1
