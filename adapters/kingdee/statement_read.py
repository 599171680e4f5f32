"""Reading kingdee.statement.json (bei_transdetail 交易明细) back into the domain, for reconciliation.

The hardened counterpart of reports.read_statement (which trusts its input, being made for the kit):
bounded size and depth, amounts as decimal text only (a JSON number is refused: ERPs would read it as a
float), every fault a DocumentInvalid with a JSON pointer (`/data/3/fcreditamount`), and the file's own
checks applied -- fcount, 借方合计 fdebittotal, 贷方合计 fcredittotal and opening + lines = closing.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

from adapters.base import DocumentInvalid
from adapters.kingdee.bills import BEIJING, THIS_BANK
from adapters.kingdee.reports import STATEMENT_FORM
from adapters.readback import Row, build, check_currency, check_size, decoded, inconsistent
from domain.errors import PaymentRejected
from domain.models import BankCode, Party, Statement

_DECIMAL = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,6})?")
_MAX_DEPTH = 8


class _Doc:
    """Typed access to one JSON object, naming the JSON pointer of whatever is wrong."""

    def __init__(self, obj: object, at: str):
        if not isinstance(obj, dict):
            raise DocumentInvalid(at or "/", "expected a JSON object")
        self.obj, self.at = obj, at

    def text(self, key: str, required: bool = True) -> str:
        value = self.obj.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str):
            raise DocumentInvalid(f"{self.at}/{key}", "expected a string" if key in self.obj else "missing")
        return value

    def amount(self, key: str) -> Decimal:
        value = self.text(key)
        if not _DECIMAL.fullmatch(value):
            raise DocumentInvalid(f"{self.at}/{key}", f"{value!r} is not a decimal amount")
        return Decimal(value)

    def date(self, key: str) -> dt.date:
        value = self.text(key)
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise DocumentInvalid(f"{self.at}/{key}", f"{value!r} is not a date YYYY-MM-DD") from None

    def flag(self, key: str) -> bool:
        value = self.obj.get(key, False)
        if not isinstance(value, bool):
            raise DocumentInvalid(f"{self.at}/{key}", "expected true or false")
        return value


def _depth(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _party(line: _Doc) -> Party | None:
    name, account = line.text("foppname", False), line.text("foppacct", False)
    if not (name or account):
        return None
    number, swift = line.text("foppbanknumber", False), line.text("foppswiftcode", False)
    try:
        bank = (BankCode("INTERNAL") if number == THIS_BANK else BankCode("CNAPS", number) if number
                else BankCode("BIC", swift) if swift else None)
    except PaymentRejected as err:
        raise DocumentInvalid(f"{line.at}/foppbanknumber", err.detail) from None
    return Party(name, account or None, bank)


def _row(line: _Doc) -> Row:
    debit, credit = line.amount("fdebitamount"), line.amount("fcreditamount")
    if (debit > 0) == (credit > 0) or debit < 0 or credit < 0:
        raise DocumentInvalid(line.at, "exactly one of fdebitamount and fcreditamount must be positive")
    detail_id = line.text("fdetailid")
    if not (detail_id.isascii() and detail_id.isdigit()):
        raise DocumentInvalid(f"{line.at}/fdetailid", f"{detail_id!r} is not a number")
    trade_time = line.text("ftradetime")
    try:
        booked = dt.datetime.strptime(trade_time, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        raise DocumentInvalid(f"{line.at}/ftradetime", f"{trade_time!r} is not YYYY-MM-DD HH:MM:SS") from None
    return Row(line.at, booked.astimezone(dt.UTC), line.date("fbizdate"), "DBIT" if debit else "CRDT",
               debit or credit, _party(line), line.text("funiqueseq", False), line.text("fdescription", False),
               line.text("fpayunique", False) or None, line.text("fbizrefno", False) or None,
               reversal=line.flag("fisrefund"), entry_id=int(detail_id))


def read_statement(data: bytes) -> Statement:
    """A kingdee.statement.json page as a Statement; DocumentInvalid if it is not a consistent one."""
    check_size(data, "Kingdee")
    text = decoded(data, "utf-8-sig", "the statement is not UTF-8")
    if _depth(text) > _MAX_DEPTH:
        raise DocumentInvalid("/", f"nested deeper than {_MAX_DEPTH} levels")
    try:
        raw = json.loads(text, parse_constant=lambda name: name)
    except ValueError as exc:
        raise DocumentInvalid("/", f"not JSON: {exc}") from None
    doc = _Doc(raw, "")
    if doc.text("formid") != STATEMENT_FORM:
        raise DocumentInvalid("/formid", f"expected {STATEMENT_FORM!r}")
    currency = check_currency(doc.text("fcurrency"), "/fcurrency")
    lines = doc.obj.get("data")
    if not isinstance(lines, list):
        raise DocumentInvalid("/data", "expected a list of lines")
    rows = [_row(_Doc(line, f"/data/{i}")) for i, line in enumerate(lines)]
    count = doc.obj.get("fcount")
    if count is not None and count != len(rows):
        inconsistent("/fcount", f"says {count} lines, the file has {len(rows)}")
    for key, direction in (("fdebittotal", "DBIT"), ("fcredittotal", "CRDT")):
        if key in doc.obj:
            total = sum((r.amount for r in rows if r.direction == direction), Decimal(0))
            if doc.amount(key) != total:
                inconsistent(f"/{key}", f"says {doc.amount(key)}, the lines add up to {total}")
    complete = doc.obj.get("fcomplete", True)
    return build(doc.text("faccountbank"), currency, doc.amount("fopeningbalance"), doc.date("fopeningdate"),
                 doc.amount("fclosingbalance"), doc.date("fclosingdate"), rows, where="/fclosingbalance",
                 next_cursor=doc.text("fnextcursor", False), complete=complete if isinstance(complete, bool) else True)
