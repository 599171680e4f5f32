"""XLSX statements (对账单) and open items, as Chinese banks' online banking and ERPs export them, read through
a column mapping the user writes once (a small TOML file, docs/reconciliation.md):

    [statement]                       # fixed values where the sheet has no column for them
    account = "31001234567890"
    currency = "CNY"
    [statement.columns]               # our field = the sheet's header
    date = "交易日期"
    debit = "借方金额"                 # money out; or one signed column: amount = "金额" (negative: out)
    credit = "贷方金额"                # money in
    counterparty_name = "对方户名"
    counterparty_account = "对方账号"
    narrative = "摘要"
    bank_ref = "交易流水号"
    balance = "余额"                   # the balance after each entry: the statement's balances are checked

    [open_items]
    currency = "CNY"
    [open_items.columns]
    reference = "单据编号"
    ...                               # the fields of reconcile/open_items.py

Exports put a title, the account and the period above the table, so the header row is the first row (of the
first 30) holding every mapped header; the table ends at its first empty row. Cells may be numbers, dates or
text: an amount is read from the number's shortest decimal form (never summed as floats) and must have at
most the currency's decimals; a date is a date cell or text YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD. Every
fault names the file, the sheet, the row and the header.
"""
from __future__ import annotations

import datetime as dt
import io
import itertools
import tomllib
import zipfile
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path

from openpyxl import load_workbook

from adapters.base import DocumentInvalid
from adapters.readback import MAX_STATEMENT_BYTES, Row, build, check_currency, day_start
from domain.models import Party, Statement

STATEMENT_FIELDS = ("date", "value_date", "debit", "credit", "amount", "counterparty_name",
                    "counterparty_account", "narrative", "bank_ref", "client_ref", "balance")
HEADER_ROWS = 30                    # how far down the header row is looked for
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d", "%Y年%m月%d日")


class ColumnsInvalid(ValueError):
    """The column mapping file cannot be used; the message names the file and the key."""


def load_columns(path: Path) -> dict:
    """The mapping file as a dict, its shape checked (not yet against a sheet)."""
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except OSError as err:
        raise ColumnsInvalid(f"{path}: cannot be read: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ColumnsInvalid(f"{path}: not TOML: {err}") from None
    for part in ("statement", "open_items"):
        section = doc.get(part, {})
        columns = section.get("columns", {}) if isinstance(section, dict) else None
        if not isinstance(columns, dict) or not all(isinstance(v, str) and v.strip() for v in columns.values()):
            raise ColumnsInvalid(f"{path}: [{part}.columns] must map field names to header texts")
    unknown = set(doc.get("statement", {}).get("columns", {})) - set(STATEMENT_FIELDS)
    if unknown:
        raise ColumnsInvalid(f"{path}: [statement.columns] has unknown field(s) {', '.join(sorted(unknown))} "
                             f"(the fields are {', '.join(STATEMENT_FIELDS)})")
    return doc


def is_xlsx(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


def _norm(text: object) -> str:
    return "".join(str(text).split()) if text is not None else ""


def table(data: bytes, headers: Mapping[str, str], name: str, sheet: str | None = None
          ) -> list[tuple[str, dict[str, object]]]:
    """The rows of the sheet's table below its header row as (where, {field: cell value}), `headers` being
    field -> header text; DocumentInvalid naming what is missing."""
    if len(data) > MAX_STATEMENT_BYTES:
        raise DocumentInvalid(name, f"{len(data)} bytes is more than a spreadsheet may have")
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as err:
        raise DocumentInvalid(name, f"not an XLSX workbook ({err.__class__.__name__})") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise DocumentInvalid(name, f"no sheet {sheet!r} (the sheets are {', '.join(book.sheetnames)})")
        ws = book[sheet] if sheet is not None else book.worksheets[0]
        wanted = {field: _norm(text) for field, text in headers.items()}
        where = f"{name} sheet {ws.title}".strip()
        rows = ws.iter_rows(values_only=True)
        index, header_row = None, 0
        for number, cells in enumerate(itertools.islice(rows, HEADER_ROWS), start=1):
            texts = [_norm(c) for c in cells]
            if all(h in texts for h in wanted.values()):
                index, header_row = {field: texts.index(h) for field, h in wanted.items()}, number
                break
        if index is None:
            raise DocumentInvalid(where, f"no header row holding every mapped header ({', '.join(headers.values())})"
                                         f" in the first {HEADER_ROWS} rows; check the column mapping")
        out = []
        for n, cells in enumerate(rows, start=header_row + 1):
            if not any(c not in (None, "") for c in cells):
                break                                 # the table ends at its first empty row
            out.append((f"{where} row {n}", {f: cells[i] if i < len(cells) else None for f, i in index.items()}))
        return out
    finally:
        book.close()


def decimal(value: object, where: str) -> Decimal | None:
    """A cell as an exact decimal (None when empty); text may hold thousands separators."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise DocumentInvalid(where, f"{value!r} is not an amount")
    text = repr(value) if isinstance(value, float) else str(value).replace(",", "").replace("，", "").strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise DocumentInvalid(where, f"{value!r} is not an amount") from None
    if not number.is_finite():
        raise DocumentInvalid(where, f"{value!r} is not an amount")
    return number


def date(value: object, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value or "").strip()
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text[:len(dt.date(2000, 1, 1).strftime(fmt))], fmt).date()
        except ValueError:
            pass
    raise DocumentInvalid(where, f"{value!r} is not a date (YYYY-MM-DD)")


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))                        # an account number Excel stored as a number
    return "" if value is None else str(value).strip()


def read_statement(data: bytes, mapping: Mapping, name: str) -> Statement:
    """An XLSX statement through the [statement] part of a column mapping; DocumentInvalid if it is not one."""
    part = mapping.get("statement") or {}
    columns = dict(part.get("columns") or {})
    if "date" not in columns or not ({"debit", "credit"} <= set(columns) or "amount" in columns):
        raise DocumentInvalid(name, "the column mapping needs date, and debit and credit (or one signed amount)")
    currency = check_currency(str(part.get("currency", "")).strip().upper(), f"{name} (mapping currency)")
    account = str(part.get("account", "")).strip()
    if not account:
        raise DocumentInvalid(name, "the column mapping names no account (statement.account)")
    rows, balances = [], []
    for where, cells in table(data, columns, name, part.get("sheet")):
        def cell(field: str, where: str = where, cells: dict = cells) -> Decimal | None:
            return decimal(cells.get(field), f"{where}, {columns.get(field, field)}")
        if "amount" in columns:
            signed = cell("amount") or Decimal(0)
            debit, credit = (-signed, Decimal(0)) if signed < 0 else (Decimal(0), signed)
        else:
            debit, credit = cell("debit") or Decimal(0), cell("credit") or Decimal(0)
        if (debit > 0) == (credit > 0) or debit < 0 or credit < 0:
            raise DocumentInvalid(where, "exactly one of the debit and the credit must be more than zero")
        day = date(cells["date"], f"{where}, {columns['date']}")
        value_day = date(cells["value_date"], f"{where}, {columns['value_date']}") if cells.get("value_date") \
            else day
        party_name, party_account = _text(cells.get("counterparty_name")), _text(cells.get("counterparty_account"))
        party = Party(party_name, party_account or None, None) if (party_name or party_account) else None
        rows.append(Row(where, day_start(day), value_day, "DBIT" if debit else "CRDT", debit or credit, party,
                        _text(cells.get("bank_ref")), _text(cells.get("narrative")),
                        _text(cells.get("client_ref")) or None))
        if "balance" in columns:
            balances.append(cell("balance"))
    if not rows:
        raise DocumentInvalid(name, "the table has no rows")
    first, last = rows[0], rows[-1]
    if balances and balances[0] is not None and balances[-1] is not None:
        opening = balances[0] + (first.amount if first.direction == "DBIT" else -first.amount)
        closing: Decimal | None = balances[-1]
    else:
        opening, closing = Decimal(str(part.get("opening", "0"))), None
    return build(account, currency, opening, first.value_date, closing, last.value_date, rows,
                 where=f"{name} (balance column)")


def open_item_fields(data: bytes, mapping: Mapping, name: str) -> list[tuple[str, dict[str, str]]]:
    """The open items of an XLSX sheet as (where, {field: text}) through the [open_items] part of a column
    mapping: fixed values (currency = "CNY", direction = "receipt") fill fields the sheet has no column
    for; amounts and dates become the text reconcile/open_items.py reads."""
    part = mapping.get("open_items") or {}
    columns = dict(part.get("columns") or {})
    if not columns:
        raise DocumentInvalid(name, "the column mapping has no [open_items.columns]")
    fixed = {k: str(v) for k, v in part.items() if k not in ("columns", "sheet")}
    out = []
    for where, cells in table(data, columns, name, part.get("sheet")):
        fields = dict(fixed)
        for field, value in cells.items():
            if field == "amount":
                amount = decimal(value, f"{where}, {columns[field]}")
                fields[field] = "" if amount is None else format(amount, "f")
            elif field == "due_date" and value not in (None, ""):
                fields[field] = date(value, f"{where}, {columns[field]}").isoformat()
            else:
                fields[field] = _text(value)
        out.append((where, fields))
    return out
