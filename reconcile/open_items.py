"""Loading the ERP's open items (expected receipts and payments) from CSV or JSON exports.

Fields (CSV header names or JSON keys; case, blanks and "-" in names do not matter):

    reference              required   invoice / document number, or the ClientRef / EndToEndId of a payment
    counterparty_account   required   the payer's or payee's account (the column must be there; the value
                                      may be empty when the ERP does not know it)
    amount                 required   plain decimal text, more than zero, at most the currency's decimals
    currency               required   ISO 4217
    due_date               required   YYYY-MM-DD (YYYY/MM/DD and YYYYMMDD are read too)
    direction              required   CRDT or receipt (money expected in), DBIT or payment (money going out)
    id                     optional   unique key of the item; default: the reference (which must then be unique)
    counterparty_name      optional
    text                   optional   description; shown in the report

Any fault names the file, the line (CSV) or the JSON pointer, and the field; nothing is half-loaded.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from adapters.base import DocumentInvalid
from domain.errors import PaymentRejected
from domain.money import parse_amount
from reconcile import xlsx
from reconcile.model import CRDT, DBIT, OpenItem

REQUIRED = ("reference", "counterparty_account", "amount", "currency", "due_date", "direction")
OPTIONAL = ("id", "counterparty_name", "text")
DIRECTIONS = {"CRDT": CRDT, "RECEIPT": CRDT, "DBIT": DBIT, "PAYMENT": DBIT}
MAX_BYTES = 256 * 1024 * 1024
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d")


class OpenItemsInvalid(ValueError):
    """The open-items file cannot be used as it is; `where` says where (file, line or pointer, field)."""

    def __init__(self, where: str, detail: str):
        super().__init__(f"{where}: {detail}")
        self.where, self.detail = where, detail


def _name(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


def _date(value: str, where: str) -> dt.date:
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(value.strip(), fmt).date()
        except ValueError:
            pass
    raise OpenItemsInvalid(where, f"{value!r} is not a date (YYYY-MM-DD)")


def _item(fields: Mapping[str, str], where: str) -> OpenItem:
    """One open item from its named text fields; `where` is prefixed to each field's name in errors."""
    def field(name: str) -> str:
        return (fields.get(name) or "").strip()

    for name in REQUIRED:
        if name != "counterparty_account" and not field(name):
            raise OpenItemsInvalid(f"{where}, field {name}", "is empty")
    direction = DIRECTIONS.get(field("direction").upper())
    if direction is None:
        raise OpenItemsInvalid(f"{where}, field direction", f"{field('direction')!r} is not CRDT/receipt or "
                                                           "DBIT/payment")
    try:
        amount = parse_amount(field("amount"), field("currency").upper(), any_iso=True)
    except PaymentRejected as err:
        name = "currency" if err.reason.value == "CURRENCY_NOT_ALLOWED" else "amount"
        raise OpenItemsInvalid(f"{where}, field {name}", err.detail) from None
    return OpenItem(id=field("id") or field("reference"), reference=field("reference"),
                    counterparty_account=field("counterparty_account").replace(" ", ""), amount=amount,
                    due_date=_date(field("due_date"), f"{where}, field due_date"), direction=direction,
                    counterparty_name=field("counterparty_name"), text=field("text"), where=where)


def _unique(items: Iterable[OpenItem]) -> list[OpenItem]:
    seen: dict[str, str] = {}
    out = []
    for item in items:
        if item.id in seen:
            raise OpenItemsInvalid(item.where, f"item {item.id!r} repeats {seen[item.id]} (give each an id)")
        seen[item.id] = item.where
        out.append(item)
    return out


def _decode(data: bytes, name: str, encoding: str) -> str:
    if len(data) > MAX_BYTES:
        raise OpenItemsInvalid(name, f"{len(data)} bytes is more than {MAX_BYTES}")
    try:
        return data.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding)
    except UnicodeDecodeError as exc:
        raise OpenItemsInvalid(f"{name} byte {exc.start}", f"not {encoding} (save the export as UTF-8, or "
                                                          "name its encoding, e.g. gbk)") from None
    except LookupError:
        raise OpenItemsInvalid(name, f"unknown encoding {encoding!r}") from None


def read_csv(data: bytes, name: str = "open items", encoding: str = "utf-8") -> list[OpenItem]:
    """Open items from CSV with a header row; the delimiter (",", ";" or tab) is the header's."""
    text = _decode(data, name, encoding)
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=lambda d: sum(_name(h) in REQUIRED for h in first.split(d)))
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    except csv.Error as err:
        raise OpenItemsInvalid(name, f"not CSV: {err}") from None
    if not rows:
        raise OpenItemsInvalid(f"{name} line 1", "empty file: a header row is needed")
    header = [_name(h) for h in rows[0]]
    missing = [f for f in REQUIRED if f not in header]
    if missing:
        raise OpenItemsInvalid(f"{name} line 1", f"missing column(s) {', '.join(missing)} "
                                                 f"(the columns are {', '.join(REQUIRED + OPTIONAL)})")
    items = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue                                  # blank lines (a trailing one above all)
        if len(row) != len(header):
            raise OpenItemsInvalid(f"{name} line {number}", f"{len(row)} fields, the header has {len(header)}")
        items.append(_item(dict(zip(header, row)), f"{name} line {number}"))
    return _unique(items)


def read_json(data: bytes, name: str = "open items") -> list[OpenItem]:
    """Open items from JSON: a list of objects, or an object with the list under "items" or "open_items".
    Amounts as strings or numbers (read as exact decimals, never floats)."""
    text = _decode(data, name, "utf-8")
    try:
        doc = json.loads(text, parse_float=str, parse_int=str, parse_constant=lambda c: c)
    except (ValueError, RecursionError) as err:
        raise OpenItemsInvalid(name, f"not JSON: {err}") from None
    key = ""
    if isinstance(doc, dict):
        key = next((k for k in ("items", "open_items") if k in doc), "")
        doc = doc.get(key)
    if not isinstance(doc, list):
        raise OpenItemsInvalid(name, "expected a list of open items (or {\"items\": [...]})")
    items = []
    for n, obj in enumerate(doc):
        where = f"{name} /{key + '/' if key else ''}{n}"
        if not isinstance(obj, dict):
            raise OpenItemsInvalid(where, "expected an object")
        fields = {}
        for k, v in obj.items():
            if v is not None and not isinstance(v, str):
                raise OpenItemsInvalid(f"{where}, field {_name(k)}", "expected text or a number")
            fields[_name(k)] = v
        missing = [f for f in REQUIRED if f not in fields]
        if missing:
            raise OpenItemsInvalid(where, f"missing field(s) {', '.join(missing)}")
        items.append(_item(fields, where))
    return _unique(items)


def read_xlsx(data: bytes, name: str, columns: Mapping) -> list[OpenItem]:
    """Open items from an XLSX sheet through the [open_items] part of a column mapping (reconcile/xlsx.py)."""
    part = columns.get("open_items") or {}
    given = set(part.get("columns") or {}) | {k for k in part if k not in ("columns", "sheet")}
    missing = [f for f in REQUIRED if f not in given]
    if missing:
        raise OpenItemsInvalid(name, f"the column mapping gives no {', '.join(missing)} (a column under "
                                     "[open_items.columns], or a fixed value under [open_items])")
    try:
        rows = xlsx.open_item_fields(data, columns, name)
    except DocumentInvalid as err:
        raise OpenItemsInvalid(err.where, err.detail) from None
    return _unique(_item(fields, where) for where, fields in rows)


def load(path: Path, encoding: str = "utf-8", columns: Mapping | None = None) -> list[OpenItem]:
    """Open items from a .csv, .json or .xlsx file (by its suffix, else by its first bytes); an XLSX file
    is read through the column mapping `columns`."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise OpenItemsInvalid(str(path), f"cannot be read: {err.strerror or err}") from None
    suffix = path.suffix.lower()
    if suffix == ".xlsx" or xlsx.is_xlsx(data):
        if columns is None:
            raise OpenItemsInvalid(str(path), "an XLSX file is read through a column mapping: give it with "
                                              "--columns FILE (docs/reconciliation.md)")
        return read_xlsx(data, path.name, columns)
    if suffix == ".json" or (suffix != ".csv" and data.lstrip()[:1] in (b"[", b"{")):
        return read_json(data, path.name)
    return read_csv(data, path.name, encoding)
