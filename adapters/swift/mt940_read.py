"""Reading MT940 statements back into the domain (for reconciliation): ours, and other banks' plain ones.

A file holds one or more messages of one account; consecutive messages are joined into one statement
(adapters/readback.py). What banks really send is read (issue 25), what does not add up is still refused:
  framing      SWIFT FIN blocks {1:...}{4: ... -}; a line "-" between messages, or none (a new message
               starts at :20:, or at :25:/:28:/:60: after the previous message's closing balance :62:);
               the transmission marks SOH and ETX (mBank's files open with a line holding SOH alone)
  header lines before a message's first field: a bank's header such as ABN AMRO's "ABNANL2A" / "940",
               ING's "0000 01INGBNL2AXXXX", Rabobank's ":940:", and blank lines; other text is refused
  :20:         optional (it only carries our EntryIds); :28: or :28C:; :60F:/:60M:, :62F:/:62M:
  :25:         "BIC/account", or "account CCC" (Rabobank) with the statement's currency after a blank
  text         UTF-8 if the file is UTF-8, else ISO 8859-1 (German banks' umlauts); soft hyphens dropped;
               control characters (other than line ends and tabs) refused
  :61:         blanks between subfields (Knab, Citi) ignored; a zero amount (Citi's balance-only lines)
               moves no money and is left out; an amount without its decimal comma (Knab's "C500NTRF");
               blanks in the transaction type (Hungarian banks' "S   X")
  :NS:         non-SWIFT fields (Hungarian and Polish banks' details) are left out
  accounts     a file may hold statements of several accounts: one statement per account (SeveralAccounts)

What comes back from our writer (adapters/swift/__init__.py), and what cannot:
  amounts, C/D/RD/RC marks, value dates, booking days, balances      exactly
  BankRef      the full reference (the supplementary line after :61: when the 16x field had to shorten it)
  ClientRef    /KREF/, or the customer reference (16x) when it is all there is; "NONREF" is none
  EndToEndId   /EREF/ ("/" in a value was written as "-", "?" as ".")
  counterparty /CNTP/account/bank code/name: the bank code is a BIC, a CNAPS code, or this bank's BIC
               (the :25: prefix) for an account of this bank; names are folded to SWIFT characters
  narrative    /REMI/ (folded); another bank's unstructured :86: is kept whole as the narrative
  other banks  Rabobank's/ING's structured :86:: /EREF/, /REMI/, the NAME of /BENM/ or /ORDP/ (the account
               on the line after :61:); the customer reference "EREF" is none
  EntryIds     the :20: suffix is the page's first EntryId; entries follow in sequence
"""
from __future__ import annotations

import contextlib
import datetime as dt
import re
from decimal import Decimal

from adapters.base import DocumentInvalid
from adapters.readback import Row, build, check_currency, check_size, day_start, join
from domain.errors import PaymentRejected
from domain.models import BankCode, Party, Statement

_TAG = re.compile(r":([0-9]{2}[A-Z]?|NS):")
_BALANCE = re.compile(r"([CD])([0-9]{6})([A-Z]{3})([0-9]{1,14}(?:,[0-9]*)?)")
# 6!n[4!n]2a[1!a]15d1!a3!c16x[//16x]: value date, entry date, mark (RC/RD/C/D), funds code, amount, type.
_LINE = re.compile(r"([0-9]{6}) *([0-9]{4})? *(RC|RD|C|D) *([A-Z])? *([0-9]{1,14}(?:,[0-9]*)?) *([NSF][A-Z0-9 ]{3})"
                   r"(.*?)(?://(.*))?")
# A bank's header line before a message: a BIC, a message type, ING's "0000 01INGBNL2AXXXX", Rabobank's :940:.
_HEADER = re.compile(r"[A-Z0-9][A-Z0-9 ]{0,34}|:940:")
_STARTS = ("20", "25", "28", "60")       # a field that opens a new message once the previous one has its :62:
_CONTROL = re.compile(r"[\x00\x02\x04-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FRAMING = str.maketrans("", "", "\x01\x03")      # SOH and ETX: transmission marks around a message
_CNAPS = re.compile(r"[0-9]{12}")
_BIC = re.compile(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")
_STRUCTURED = re.compile(r"/(EREF|KREF|CNTP|REMI|BENM|ORDP|NAME|ADDR|ISDT|MARF|CSID|PURP|ULTB|ULTD|RTRN|BUSP)/")
# Codes of Rabobank's and ING's structured :86: that say nothing reconciliation uses (dates, mandates, ...).
_IGNORED = {"BENM", "ORDP", "ADDR", "ISDT", "MARF", "CSID", "PURP", "ULTB", "ULTD", "RTRN", "BUSP"}
# The customer reference of Rabobank's :61: points to the :86: ("EREF": see /EREF/); no reference itself.
_NO_CUSTOMER_REF = ("", "NONREF", "EREF")


def _date6(text: str, where: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%y%m%d").date()
    except ValueError:
        raise DocumentInvalid(where, f"{text!r} is not a date YYMMDD") from None


def _amount(text: str) -> Decimal:
    whole, _, fraction = text.partition(",")
    return Decimal(f"{whole}.{fraction or '0'}")


def _messages(text: str) -> list[list[tuple[int, str]]]:
    """The lines of each message, numbered as in the file; FIN block framing, bank header lines before a
    message and blank lines dropped."""
    messages: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    tags: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if line.startswith("{1:") or line.startswith("{4:"):
            line = line[line.rfind("{4:") + 3:] if "{4:" in line else ""
        tag = _TAG.match(line)
        field = tag.group(1)[:2] if tag else None
        if line in ("-", "-}") or line.startswith("-}") or (
                field and current and ((field == "20" and "20" in tags) or (field in _STARTS and "62" in tags))):
            if current:
                messages.append(current)
            current, tags = [], set()
            if not field:
                continue
        if not line or (not current and not field and _HEADER.fullmatch(line)):
            continue                      # a blank line, or a bank's header line before the first field
        current.append((number, line))
        if field:
            tags.add(field)
    if current:
        messages.append(current)
    return messages


def _fields(lines: list[tuple[int, str]]) -> list[tuple[int, str, list[str]]]:
    """(line number, tag, [content lines]) in order; continuation lines belong to the field before them."""
    fields: list[tuple[int, str, list[str]]] = []
    for number, line in lines:
        match = _TAG.match(line)
        if match:
            fields.append((number, match.group(1), [line[match.end():]]))
        elif fields:
            fields[-1][2].append(line)
        else:
            raise DocumentInvalid(f"line {number}", "text before the first field (:20: or :25:)")
    return fields


def _balance(value: str, where: str) -> tuple[Decimal, dt.date, str]:
    match = _BALANCE.fullmatch(value)
    if not match:
        raise DocumentInvalid(where, f"{value!r} is not a balance (C/D, YYMMDD, currency, amount)")
    mark, day, currency, amount = match.groups()
    value_ = _amount(amount)
    return (-value_ if mark == "D" else value_), _date6(day, where), currency


def _unfold16(short: str, full: str) -> bool:
    """Whether `full` is what our writer shortened to the 16x `short` (first 4 and last 12 characters)."""
    return len(full) > 16 and full[:4] + full[-12:] == short


def _details(text: str, own_bic: str) -> dict:
    """A structured :86: -- ours (/EREF/.../KREF/.../CNTP/acct/bank/name/REMI/...) or Rabobank's and ING's
    (/EREF/.../BENM//NAME/.../REMI/.../ISDT/...) -- or the whole text as narrative."""
    if not _STRUCTURED.match(text):
        return {"narrative": text}
    out: dict = {}
    parts = _STRUCTURED.split(text)[1:]
    for key, raw in zip(parts[::2], parts[1::2]):
        value = raw.rstrip("/")             # Rabobank ends each value with "/" or "//"; ours never end so
        if key == "CNTP":
            account, _, rest = value.partition("/")
            code, _, name = rest.partition("/")
            out["counterparty"] = _party(name, account, code, own_bic)
        elif key == "NAME":                 # of the beneficiary (BENM) or the ordering party (ORDP)
            out["name"] = value
        elif key not in _IGNORED:
            out[{"EREF": "end_to_end_id", "KREF": "client_ref", "REMI": "narrative"}[key]] = value
    return out


def _party(name: str, account: str, code: str, own_bic: str) -> Party:
    bank = None
    try:
        if code and code == own_bic:
            bank = BankCode("INTERNAL")
        elif _CNAPS.fullmatch(code):
            bank = BankCode("CNAPS", code)
        elif _BIC.fullmatch(code):
            bank = BankCode("BIC", code)
    except PaymentRejected:      # a malformed bank code of another bank's file: keep the party, not the code
        bank = None
    return Party(name, account or None, bank)


def _entry(number: int, value: list[str], details: str, own_bic: str, entry_id: int | None) -> Row:
    where = f"line {number}"
    match = _LINE.fullmatch(value[0].strip())
    if not match:
        raise DocumentInvalid(where, f"{value[0]!r} is not a statement line (:61:)")
    value_day, entry_mmdd, mark, _, amount, _, customer, bank = match.groups()
    value_date = _date6(value_day, where)
    booking_day = value_date
    if entry_mmdd:
        # The entry date has no year: the one of the value date, or a neighbour across New Year.
        candidates = []
        for year in (value_date.year - 1, value_date.year, value_date.year + 1):
            with contextlib.suppress(ValueError):
                candidates.append(dt.date(year, int(entry_mmdd[:2]), int(entry_mmdd[2:])))
        if not candidates:
            raise DocumentInvalid(where, f"entry date {entry_mmdd!r} is not MMDD")
        booking_day = min(candidates, key=lambda day: abs((day - value_date).days))
    direction = {"C": "CRDT", "D": "DBIT", "RD": "CRDT", "RC": "DBIT"}[mark]
    bank_ref = (bank or "").strip()
    supplementary = value[1].strip() if len(value) > 1 else ""
    if supplementary and _unfold16(bank_ref, supplementary):
        bank_ref = supplementary
    found = _details(details, own_bic)
    if "name" in found and "counterparty" not in found:
        # Rabobank: the name in /BENM//NAME/ or /ORDP//NAME/, the account on the line after :61:
        account = supplementary if supplementary and " " not in supplementary else None
        found["counterparty"] = Party(found["name"], account, None)
    customer = customer.strip()
    client_ref = found.get("client_ref")
    e2e = found.get("end_to_end_id")
    if client_ref is None and customer not in _NO_CUSTOMER_REF:
        client_ref = e2e if e2e and (e2e == customer or _unfold16(customer, e2e)) else customer
    return Row(where, day_start(booking_day), value_date, direction, _amount(amount), found.get("counterparty"),
               "" if bank_ref == "NONREF" else bank_ref, found.get("narrative", ""), client_ref, e2e,
               reversal=mark in ("RD", "RC"), entry_id=entry_id)


def _message(lines: list[tuple[int, str]]) -> Statement:
    fields = _fields(lines)
    by_tag: dict[str, tuple[int, list[str]]] = {}
    for number, tag, value in fields:
        by_tag.setdefault(tag[:2], (number, value))
    start = f"line {lines[0][0]}"
    for tag in ("25", "60", "62"):
        if tag not in by_tag:
            raise DocumentInvalid(start, f"the message has no :{tag}: field")
    reference = by_tag["20"][1][0] if "20" in by_tag else ""
    identification = by_tag["25"][1][0].strip()
    own_bic, _, account = identification.rpartition("/")
    opening, opening_date, currency = _balance(by_tag["60"][1][0].strip(), f"line {by_tag['60'][0]}")
    if account.endswith(f" {currency}"):              # Rabobank: "NL50RABO0123456789 EUR"
        account = account[:-4].rstrip()
    closing, closing_date, closing_currency = _balance(by_tag["62"][1][0].strip(), f"line {by_tag['62'][0]}")
    check_currency(currency, f"line {by_tag['60'][0]}")
    if closing_currency != currency:
        raise DocumentInvalid(f"line {by_tag['62'][0]}", f"closing balance in {closing_currency}, opening in {currency}")
    suffix = reference.rpartition("-")[2]
    first_id = int(suffix) if reference.count("-") and suffix.isascii() and suffix.isdigit() else None
    rows = []
    for i, (number, tag, value) in enumerate(fields):
        if tag != "61":
            continue
        details = ""
        if i + 1 < len(fields) and fields[i + 1][1] == "86":
            details = "".join(fields[i + 1][2])          # our writer wraps without changing the text
        entry_id = first_id + len(rows) if first_id else None
        row = _entry(number, value, details, own_bic, entry_id)
        if row.amount:                                   # a zero amount moves no money (Citi)
            rows.append(row)
    return build(account, currency, opening, opening_date, closing, closing_date, rows, where=start)


def read_mt940(data: bytes) -> Statement:
    """An MT940 file (one or more messages) as one Statement (SeveralAccounts: one per account);
    DocumentInvalid if it is not one."""
    check_size(data, "MT940")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")        # every byte is a character: German banks' ISO 8859-1
    control = _CONTROL.search(text)
    if control:
        line = text.count("\n", 0, control.start()) + 1
        raise DocumentInvalid(f"line {line}", f"control character {control.group()!r}: not a text file")
    text = text.replace("\u00ad", "").translate(_FRAMING)   # soft hyphens: a line-break hint, not text
    messages = _messages(text)
    if not messages:
        raise DocumentInvalid("line 1", "no MT940 message (:20: ... -)")
    return join([_message(m) for m in messages], where="")

