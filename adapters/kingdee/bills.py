"""Kingdee payment batches (银行付款单, form `bei_bankpaybill`) in JSON or XML -> PaymentFile.

Both front ends reduce the file to one shape -- a header mapping and a list of bill mappings whose
values are text -- and `read_batch` maps that shape onto the domain, so JSON and XML cannot drift
apart. The field table is in adapters/kingdee/__init__.py and docs/kingdee.md.
"""
from __future__ import annotations

import codecs
import datetime as dt
import decimal
import re
from collections.abc import Callable, Mapping
from decimal import Decimal

from lxml import etree

from adapters.base import DocumentInvalid, PaymentFile, read_json_literally
from adapters.base import check_reference as _ref
from domain.errors import DirectLinkError, PaymentRejected
from domain.models import SubmittedPayment, build_instruction
from gateway.protocol import xmlsafe

FORM_ID = "bei_bankpaybill"
THIS_BANK = "本行"                     # Kingdee's word for "an account of the bank the file is sent to"
MAX_BILLS = 1000
MAX_FILE_BYTES = 10 * 1024 * 1024      # the request body limit already bounds it; this keeps lxml honest
BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")  # China has kept UTC+8 without DST since 1991
CURRENCY_ALIASES = {"RMB": "CNY"}       # Chinese bank and ERP exports often write RMB for the yuan

# A location in the file: (bill index or None for the header, field name or None) -> "where" text.
Locate = Callable[[int | None, str | None], str]

_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
_COUNT = re.compile(r"[0-9]{1,7}", re.ASCII)
_DATE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[ T][0-9]{2}:[0-9]{2}:[0-9]{2})?", re.ASCII)
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(?:Z|[+-][0-9]{2}:[0-9]{2})?",
                       re.ASCII)
# The encoding declaration must be the first member, so it can be read from ASCII bytes before decoding.
_DECLARED = re.compile(rb'\A(?:\xef\xbb\xbf)?[ \t\r\n]*\{[ \t\r\n]*"fencoding"[ \t\r\n]*:[ \t\r\n]*"([A-Za-z0-9_-]{1,20})"')
_TRUE, _FALSE = ("true", "1"), ("false", "0")


class Fields(dict):
    """One JSON object or XML element's children, remembering keys that appeared more than once."""

    duplicates: tuple[str, ...] = ()

    @classmethod
    def of(cls, pairs: list[tuple[str, object]]) -> Fields:
        fields = cls(pairs)
        if len(fields) != len(pairs):
            seen: set[str] = set()
            fields.duplicates = tuple(k for k, _ in pairs if k in seen or seen.add(k))
        return fields


# ---- the shared mapping --------------------------------------------------------------------------------

def read_batch(head: Mapping, bills: object, at: Locate) -> PaymentFile:
    """Map a batch's header and bills onto the domain; file-level faults raise DocumentInvalid."""
    _no_duplicates(head, None, at)
    batch_id = _ref(_need(head, None, "fbatchseqid", at), at(None, "fbatchseqid"))
    created = _created(_opt(head, None, "fcreatetime", at), at(None, "fcreatetime"))
    if not isinstance(bills, list):
        raise DocumentInvalid(at(None, "data"), "is missing or is not a list of bills")
    if not bills:
        raise DocumentInvalid(at(None, "data"), "holds no bills")
    if len(bills) > MAX_BILLS:
        raise DocumentInvalid(at(None, "data"), f"holds {len(bills)} bills; a batch takes at most {MAX_BILLS}")
    count_text = _need(head, None, "ftotalcount", at)
    if not _COUNT.fullmatch(count_text) or int(count_text) != len(bills):
        raise DocumentInvalid(at(None, "ftotalcount"), f"says {count_text!r} bills but the batch holds {len(bills)}")
    read = [_bill(bill, i, at) for i, bill in enumerate(bills)]
    _check_total(_need(head, None, "ftotalamount", at), [amount for _, amount in read], at(None, "ftotalamount"))
    transactions = tuple(t for t, _ in read)
    first: dict[str, int] = {}
    for i, t in enumerate(transactions):
        if t.client_ref in first:
            raise DocumentInvalid(at(i, "fpayunique"),
                                  f"{t.client_ref!r} repeats {at(first[t.client_ref], 'fpayunique')}")
        first[t.client_ref] = i
    return PaymentFile(batch_id, transactions, created)


def _bill(bill: object, i: int, at: Locate) -> tuple[SubmittedPayment, Decimal]:
    """One bill: its payment (instruction, or the business reason it cannot be one) and its amount."""
    if not isinstance(bill, Mapping):
        raise DocumentInvalid(at(i, None), "is not an object of fields")
    _no_duplicates(bill, i, at)
    ref = _ref(_need(bill, i, "fpayunique", at), at(i, "fpayunique"))
    e2e = _opt(bill, i, "fbizrefno", at)
    amount = _need(bill, i, "famount", at)
    if not _DECIMAL.fullmatch(amount):
        # Like a decimal-typed element failing an XSD: the control total cannot be checked without it.
        raise DocumentInvalid(at(i, "famount"), f"{amount!r} is not a plain decimal amount in yuan (e.g. 1250.00)")
    currency = _need(bill, i, "fcurrency", at)
    args = dict(
        client_ref=ref, end_to_end_id=_ref(e2e, at(i, "fbizrefno")) if e2e is not None else None,
        debtor_account=_need(bill, i, "fpayeracct", at), amount=amount,
        currency=CURRENCY_ALIASES.get(currency, currency),
        creditor_name=_need(bill, i, "fpayeename", at), creditor_account=_need(bill, i, "fpayeeacct", at),
        bank_name=_opt(bill, i, "fpayeebank", at), purpose=_need(bill, i, "fusage", at),
        remark=_opt(bill, i, "fdescription", at),
        requested_date=_date(_opt(bill, i, "fexpectdealtime", at), at(i, "fexpectdealtime")),
        urgency="URGENT" if _flag(bill.get("fisurgent"), at(i, "fisurgent")) else "NORMAL",
    )
    args["bank_scheme"], args["bank_code"] = _bank(bill, i, at)
    try:
        return SubmittedPayment(ref, build_instruction(**args), where=at(i, None)), Decimal(amount)
    except PaymentRejected as problem:   # a business fault of this bill only; its siblings go on
        return SubmittedPayment(ref, None, problem, where=at(i, None)), Decimal(amount)


def _bank(bill: Mapping, i: int, at: Locate) -> tuple[str, str]:
    number, swift = _opt(bill, i, "frecbanknumber", at), _opt(bill, i, "fswiftcode", at)
    if number is not None and swift is not None:
        raise DocumentInvalid(at(i, "fswiftcode"), "give frecbanknumber or fswiftcode, not both")
    if number == THIS_BANK:
        return "INTERNAL", ""
    if number is not None:
        return "CNAPS", number           # a wrong 联行号 is the bill's BANK_CODE_INVALID, not the file's
    if swift is not None:
        return "BIC", swift
    raise DocumentInvalid(at(i, "frecbanknumber"),
                          f"is missing: the 12-digit 联行号, {THIS_BANK} for this bank, or fswiftcode abroad")


def _check_total(total: str, amounts: list[Decimal], where: str) -> None:
    if not _DECIMAL.fullmatch(total):
        raise DocumentInvalid(where, f"{total!r} is not a plain decimal amount")
    # Exact arithmetic: the default 28-digit context would round a sum of huge amounts into a match.
    with decimal.localcontext(decimal.Context(prec=decimal.MAX_PREC)):
        found = sum(amounts, Decimal(0))
    if found != Decimal(total):
        raise DocumentInvalid(where, f"is {total} but the bills add up to {found}")


# ---- field values --------------------------------------------------------------------------------------

def _no_duplicates(fields: Mapping, i: int | None, at: Locate) -> None:
    dupes = getattr(fields, "duplicates", ())
    if dupes:
        raise DocumentInvalid(at(i, dupes[0]), "appears more than once")


def _opt(fields: Mapping, i: int | None, key: str, at: Locate) -> str | None:
    """A text field, or None when absent, null or empty (Kingdee exports blank fields as "")."""
    value = fields.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise DocumentInvalid(at(i, key), "must be text (or a plain number), not an object, list or boolean")
    return value


def _need(fields: Mapping, i: int | None, key: str, at: Locate) -> str:
    value = fields.get(key)
    if value is None:
        raise DocumentInvalid(at(i, key), "is missing")
    if not isinstance(value, str):
        raise DocumentInvalid(at(i, key), "must be text (or a plain number), not an object, list or boolean")
    return value


def _flag(value: object, where: str) -> bool:
    """A yes/no field: JSON true/false, or the text true/false/1/0 (XML, and Kingdee's 0/1 exports)."""
    if value is None or value == "" or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    raise DocumentInvalid(where, f"{value!r} is not true/false (or 1/0)")


def _date(value: str | None, where: str) -> dt.date | None:
    if value is None:
        return None
    match = _DATE.fullmatch(value)
    try:
        if match is None:
            raise ValueError(value)
        return dt.date.fromisoformat(match.group(1))     # the day Kingdee wants it paid; the time is advisory
    except ValueError:
        raise DocumentInvalid(where, f"{value!r} is not a date (YYYY-MM-DD or YYYY-MM-DD HH:MM:SS)") from None


def _created(value: str | None, where: str) -> dt.datetime | None:
    """fcreatetime: Kingdee writes Beijing wall time without an offset; an explicit offset is kept."""
    if value is None:
        return None
    try:
        if not _DATETIME.fullmatch(value):
            raise ValueError(value)
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DocumentInvalid(where, f"{value!r} is not YYYY-MM-DD HH:MM:SS (Beijing time) or ISO 8601") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)


# ---- JSON front end ------------------------------------------------------------------------------------

def _json_at(i: int | None, key: str | None) -> str:
    path = "" if i is None else f"/data/{i}"
    return f"{path}/{key}" if key else (path or "/")


def decode_json_bytes(data: bytes) -> str:
    """The text of a JSON batch: UTF-8, unless its first member declares GBK or GB18030 (fencoding)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in data:
        raise DocumentInvalid("/", "UTF-16/32 is not accepted (UTF-8, or GBK/GB18030 declared in fencoding)")
    match = _DECLARED.match(data)
    name = match.group(1).decode("ascii") if match else "UTF-8"
    codec = xmlsafe.ALLOWED_ENCODINGS.get(name.lower())
    if codec is None:
        raise DocumentInvalid("/fencoding", f"{name!r} is not accepted (UTF-8, GBK, GB18030)")
    if data.startswith(codecs.BOM_UTF8) and codec != "utf-8":
        raise DocumentInvalid("/fencoding", f"declares {name} but the file starts with a UTF-8 byte-order mark")
    if codec != "utf-8" and not data.isascii() and _is_utf8(data):
        # Valid UTF-8 labelled GBK is mislabelled UTF-8: decoding it as GBK would turn 张三 into 寮犱笁.
        raise DocumentInvalid("/fencoding", f"declares {name} but the bytes are UTF-8")
    try:
        return data.removeprefix(codecs.BOM_UTF8).decode(codec)
    except UnicodeDecodeError as exc:
        hint = "" if match else ' (a GBK or GB18030 file starts {"fencoding": "GBK", ...})'
        raise DocumentInvalid("/fencoding" if match else "/",
                              f"the bytes are not valid {codec} at offset {exc.start}{hint}") from None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def read_json(data: bytes) -> PaymentFile:
    """kingdee.json: a bei_bankpaybill batch as a JSON object."""
    text = decode_json_bytes(data)
    doc = read_json_literally(text, Fields.of)
    if not isinstance(doc, Mapping):
        raise DocumentInvalid("/", "the batch must be a JSON object")
    if "fencoding" in doc and not _DECLARED.match(data):
        raise DocumentInvalid("/fencoding", 'must be the first member, written plainly: {"fencoding": "GBK", ...}')
    if doc.get("formid") != FORM_ID:
        raise DocumentInvalid("/formid", f"must be {FORM_ID!r} (a Kingdee bank payment bill batch)")
    return read_batch(doc, doc.get("data"), _json_at)


# ---- XML front end -------------------------------------------------------------------------------------

def _xml_at(i: int | None, key: str | None) -> str:
    path = f"/{FORM_ID}" if i is None else f"/{FORM_ID}/data/bill[{i + 1}]"
    return f"{path}/{key}" if key else path


def _leaves(el: etree._Element, path: str, nested: str | None = None) -> tuple[Fields, etree._Element | None]:
    """An element's text children as Fields, and its one child named `nested` (the bills) if any."""
    pairs, inner = [], []
    for child in el:
        if not isinstance(child.tag, str):
            continue                     # comments: never values (xmlsafe.text skips them inside values too)
        if child.tag == nested:
            inner.append(child)
        elif len(child):
            raise DocumentInvalid(f"{path}/{child.tag}", "must hold text, not elements")
        else:
            pairs.append((child.tag, xmlsafe.text(child)))
    if len(inner) > 1:
        raise DocumentInvalid(f"{path}/{nested}", "appears more than once")
    return Fields.of(pairs), inner[0] if inner else None


def read_xml(data: bytes) -> PaymentFile:
    """kingdee.xml: the same batch as XML; the XML declaration names the encoding (UTF-8, GBK, GB18030)."""
    try:
        root = xmlsafe.parse(data, MAX_FILE_BYTES)
    except DirectLinkError as err:
        # The Request around it was fine; the ERP file inside is what is wrong, so DOCUMENT_INVALID.
        raise DocumentInvalid("/", f"{err.code}: {err.detail}") from err
    if root.tag != FORM_ID:
        raise DocumentInvalid("/", f"the root element must be <{FORM_ID}> without a namespace")
    head, data_el = _leaves(root, f"/{FORM_ID}", nested="data")
    bills = None
    if data_el is not None:
        bills = []
        for child in data_el:
            if isinstance(child.tag, str) and child.tag != "bill":
                raise DocumentInvalid(f"/{FORM_ID}/data/{child.tag}", "only <bill> elements belong in <data>")
            if isinstance(child.tag, str):
                bills.append(_leaves(child, _xml_at(len(bills), None))[0])
    return read_batch(head, bills, _xml_at)
