"""A mapping file (TOML) -> a checked Mapping, or MappingError naming the line and the key at fault.

A mapping is data, never code: paths, column titles, byte positions, constants, code tables, an amount
unit and date patterns built from a fixed set of directives. Everything has a bound (file size, field
width, records a file, table sizes, path depth), so a mapping cannot make the gateway read or write
without limit. docs/declared-formats.md describes the keys; this module is their one definition.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from domain.codes import PaymentState

MAX_MAPPING_BYTES = 64 * 1024          # a mapping is a page of declarations, not a data file
MAX_FILE_BYTES = 10 * 1024 * 1024      # an ERP file: the request body limit bounds it already
MAX_FIELD = 1024                       # characters (or bytes in a fixed-width line) of one field
MAX_LINE = 4096                        # bytes of one fixed-width line
MAX_RECORDS = 10_000
MAX_CODES = 500
MAX_DEPTH = 8
ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "gbk": "gbk", "gb18030": "gb18030"}
SYNTAXES = ("json", "xml", "csv", "fixed")
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,30}", re.ASCII)
_FORMAT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,34}", re.ASCII)
_STEP = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}", re.ASCII)   # a JSON member or an XML element name
_DIRECTIVES = re.compile(r"%(.)")
_ALLOWED_DIRECTIVES = set("YmdHMS")


class MappingError(ValueError):
    """The mapping cannot be used: `line` (1-based, 0 if unknown) and `key` (dotted) say where."""

    def __init__(self, line: int, key: str, detail: str):
        super().__init__(f"line {line}: {key}: {detail}" if line else f"{key}: {detail}")
        self.line, self.key, self.detail = line, key, detail


# ---- what each kind of section may declare: domain field -> (type, required) --------------------------------

TEXT, AMOUNT, SIGNED, DATE, DATETIME, TIME, CODE, COUNT, FLAG = (
    "text", "amount", "signed", "date", "datetime", "time", "code", "count", "flag")

PAYMENT_BATCH = {"id": (TEXT, True), "created": (DATETIME, False), "count": (COUNT, False),
                 "total": (AMOUNT, False), "debtor_account": (TEXT, False), "currency": (CODE, False)}
PAYMENT_RECORD = {
    "client_ref": (TEXT, True), "end_to_end_id": (TEXT, False), "debtor_account": (TEXT, False),
    "amount": (AMOUNT, True), "currency": (CODE, False), "creditor_name": (TEXT, True),
    "creditor_account": (TEXT, True), "bank_code": (TEXT, False), "bank_scheme": (CODE, False),
    "bank_name": (TEXT, False), "purpose": (TEXT, True), "remark": (TEXT, False),
    "requested_date": (DATE, False), "urgency": (CODE, False)}
STATEMENT_BATCH = {
    "account": (TEXT, True), "currency": (CODE, True), "owner_name": (TEXT, False), "bank_name": (TEXT, False),
    "bank_bic": (TEXT, False), "opening_balance": (SIGNED, False), "closing_balance": (SIGNED, False),
    "opening_date": (DATE, False), "closing_date": (DATE, False), "count": (COUNT, False),
    "debit_total": (AMOUNT, False), "credit_total": (AMOUNT, False), "next_cursor": (TEXT, False),
    "complete": (FLAG, False)}
STATEMENT_RECORD = {
    "entry_id": (COUNT, False), "booked": (DATETIME, False), "booked_date": (DATE, False),
    "booked_time": (TIME, False), "value_date": (DATE, False), "direction": (CODE, False),
    "amount": (AMOUNT, False), "debit_amount": (AMOUNT, False), "credit_amount": (AMOUNT, False),
    "balance": (SIGNED, True), "counterparty_name": (TEXT, False), "counterparty_account": (TEXT, False),
    "counterparty_bank": (TEXT, False), "bank_ref": (TEXT, True), "narrative": (TEXT, False),
    "client_ref": (TEXT, False), "end_to_end_id": (TEXT, False), "reversal": (FLAG, False),
    "account": (TEXT, False), "currency": (CODE, False)}
STATUS_BATCH = {"batch_id": (TEXT, False), "created": (DATETIME, False), "count": (COUNT, False)}
STATUS_RECORD = {
    "client_ref": (TEXT, True), "end_to_end_id": (TEXT, False), "payment_id": (TEXT, False),
    "state": (CODE, True), "reason": (TEXT, False), "reason_text": (TEXT, False), "amount": (AMOUNT, False),
    "currency": (TEXT, False), "debtor_account": (TEXT, False), "updated": (DATETIME, False),
    "approvals_required": (COUNT, False), "approvals_given": (COUNT, False), "order_digest": (TEXT, False)}
KINDS = {"payments": (PAYMENT_BATCH, PAYMENT_RECORD), "statements": (STATEMENT_BATCH, STATEMENT_RECORD),
         "statuses": (STATUS_BATCH, STATUS_RECORD)}
# The domain values a code table may map (left side); anything else is a typo the mapping must not hide.
CODE_VALUES = {"bank_scheme": {"CNAPS", "BIC", "INTERNAL"}, "urgency": {"URGENT", "NORMAL"},
               "direction": {"DBIT", "CRDT"}, "state": {s.value for s in PaymentState},
               FLAG: {"true", "false"}}
DEFAULT_FORMATS = {DATE: "%Y-%m-%d", DATETIME: "%Y-%m-%d %H:%M:%S", TIME: "%H:%M:%S"}
_FIELD_KEYS = {"path", "column", "label", "start", "width", "line", "value", "codes", "unit", "format",
               "required", "max_length", "align", "this_bank"}


@dataclass(frozen=True)
class Field:
    name: str                               # the domain field
    key: str                                # where it is declared, for messages: payments.1.fields.amount
    type: str
    required: bool
    path: tuple[str, ...] = ()              # json/xml: steps below the record (batch fields: the top)
    column: str | None = None               # csv: the column title
    label: str | None = None                # csv: a batch field on a `label,value` line before the table
    start: int = 0                          # fixed: 1-based byte position and width ...
    width: int = 0
    line: str = "record"                    # ... on the record line, or the header or trailer line
    value: str | None = None                # a constant: nothing is read, the constant is written
    codes: tuple[tuple[str, str], ...] = ()  # (domain value, file value), in declared order
    unit: str = "yuan"                      # amounts: yuan (decimal major units) or fen (integer minor units)
    format: str | None = None               # dates and times: %Y %m %d %H %M %S and literal characters
    max_length: int = 140
    align: str = "left"                     # fixed: left (padded with blanks) or right (amounts, with zeros)
    this_bank: str | None = None            # bank_code: the file's word for "an account of this bank"

    def to_file(self, domain_value: str) -> str | None:
        return next((f for d, f in self.codes if d == domain_value), None)

    def to_domain(self, file_value: str) -> str | None:
        return next((d for d, f in self.codes if f == file_value), None)


@dataclass(frozen=True)
class Section:
    kind: str                               # payments | statements | statuses
    key: str                                # payments.1
    format: str
    syntax: str
    encoding: str
    batch: dict[str, Field]
    fields: dict[str, Field]
    records: tuple[str, ...] = ()           # json/xml: the path of the repeated record
    delimiter: str = ","
    header_tag: str | None = None           # fixed: line prefixes
    record_tag: str = ""
    trailer_tag: str | None = None
    max_records: int = 1000

    @property
    def root(self) -> str:
        return self.records[0] if self.records else ""


@dataclass(frozen=True)
class Mapping:
    name: str
    description: str
    source: str                             # the TOML text, as added
    sections: tuple[Section, ...] = field(default_factory=tuple)
    golden: Path | None = None              # the integrator's golden cases, next to the mapping

    def of(self, kind: str) -> tuple[Section, ...]:
        return tuple(s for s in self.sections if s.kind == kind)


# ---- locating a key in the TOML text ------------------------------------------------------------------

_HEADER = re.compile(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(r"\s*([A-Za-z0-9_\"'.-]+)\s*=")


def line_of(text: str, key: str) -> int:
    """The line declaring `key` (dotted; array items counted from 1), or the nearest enclosing one.

    tomllib gives values without positions, so the text is scanned: table headers set the current table
    (counting repeated [[array]] headers), and `a = ...` lines name keys inside it."""
    want = key.split(".")
    best, best_len = 0, 0
    table: list[str] = []
    counts: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(raw)
        if header and not raw.lstrip().startswith("#"):
            parts = [p.strip().strip('"') for p in header.group(1).split(".")]
            if raw.lstrip().startswith("[["):
                name = ".".join(parts)
                counts[name] = counts.get(name, 0) + 1
                parts = [*parts, str(counts[name])]
            table = _with_items(parts, counts)
            here = table
        else:
            assign = _ASSIGN.match(raw)
            if not assign or raw.lstrip().startswith("#"):
                continue
            here = table + [p.strip().strip('"') for p in assign.group(1).split(".")]
        size = _common(here, want)
        if size == len(here) and size > best_len:
            best, best_len = n, size
    return best


def _with_items(parts: list[str], counts: dict[str, int]) -> list[str]:
    """[payments, fields] inside the 2nd [[payments]] -> [payments, 2, fields]."""
    out: list[str] = []
    for i, part in enumerate(parts):
        out.append(part)
        prefix = ".".join(parts[:i + 1])
        if prefix in counts and i + 1 < len(parts) and not parts[i + 1].isdigit():
            out.append(str(counts[prefix]))
    return out


def _common(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


# ---- parsing -------------------------------------------------------------------------------------------

class _Reader:
    def __init__(self, text: str):
        self.text = text

    def fail(self, key: str, detail: str) -> MappingError:
        return MappingError(line_of(self.text, key), key, detail)


def parse(text: str, base: Path | None = None) -> Mapping:
    """Check a mapping's text; `base` is the folder relative paths (golden) are taken from."""
    if len(text.encode("utf-8")) > MAX_MAPPING_BYTES:
        raise MappingError(0, "mapping", f"is over {MAX_MAPPING_BYTES} bytes")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        match = re.search(r"line (\d+)", str(err))
        raise MappingError(int(match.group(1)) if match else 0, "mapping", f"not valid TOML: {err}") from None
    r = _Reader(text)
    unknown = sorted(set(doc) - {"mapping", *KINDS})
    if unknown:
        raise r.fail(unknown[0], "is not a key of a mapping (mapping, payments, statements, statuses)")
    head = doc.get("mapping")
    if not isinstance(head, dict):
        raise r.fail("mapping", "the [mapping] table (name, description) is missing")
    for k in sorted(set(head) - {"name", "description", "golden"}):
        raise r.fail(f"mapping.{k}", "is not a key of [mapping] (name, description, golden)")
    name = head.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise r.fail("mapping.name", "must be 1-31 lower-case letters, digits, - or _, starting with a letter")
    description = head.get("description", "")
    if not isinstance(description, str) or len(description) > 200:
        raise r.fail("mapping.description", "must be text of at most 200 characters")
    golden = head.get("golden")
    if golden is not None and (not isinstance(golden, str) or not golden):
        raise r.fail("mapping.golden", "must be a folder name, relative to the mapping file")
    sections: list[Section] = []
    for kind in KINDS:
        items = doc.get(kind, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise r.fail(kind, f"must be declared as [[{kind}]] tables")
        sections += [_section(r, kind, i, item) for i, item in enumerate(items, start=1)]
    if not sections:
        raise r.fail("mapping", "declares no [[payments]], [[statements]] or [[statuses]]")
    seen: dict[str, str] = {}
    for s in sections:
        if s.format in seen:
            raise r.fail(f"{s.key}.format", f"{s.format!r} is declared twice (also {seen[s.format]})")
        seen[s.format] = s.key
    return Mapping(name, description, text, tuple(sections),
                   (base / golden) if golden and base is not None else None)


def _section(r: _Reader, kind: str, n: int, item: dict) -> Section:
    key = f"{kind}.{n}"
    allowed = {"format", "syntax", "encoding", "records", "delimiter", "header_tag", "record_tag",
               "trailer_tag", "max_records", "batch", "fields"}
    for k in sorted(set(item) - allowed):
        raise r.fail(f"{key}.{k}", f"is not a key of [[{kind}]]")
    fmt = item.get("format")
    if not isinstance(fmt, str) or not _FORMAT.fullmatch(fmt) or fmt == "directlink":
        raise r.fail(f"{key}.format", "must be a format name of 1-35 letters, digits, '.', '-' or '_' "
                                      "(not 'directlink')")
    syntax = item.get("syntax")
    if syntax not in SYNTAXES:
        raise r.fail(f"{key}.syntax", f"must be one of {', '.join(SYNTAXES)}")
    encoding = ENCODINGS.get(str(item.get("encoding", "utf-8")).lower())
    if encoding is None:
        raise r.fail(f"{key}.encoding", "must be UTF-8, GBK or GB18030")
    max_records = item.get("max_records", 1000)
    if isinstance(max_records, bool) or not isinstance(max_records, int) or not 1 <= max_records <= MAX_RECORDS:
        raise r.fail(f"{key}.max_records", f"must be a whole number from 1 to {MAX_RECORDS}")
    extra: dict = {}
    if syntax in ("json", "xml"):
        extra["records"] = _path(r, f"{key}.records", item.get("records"))
        if syntax == "xml" and len(extra["records"]) < 2:
            raise r.fail(f"{key}.records", "must name the root element and the record element, e.g. 'batch/item'")
    elif "records" in item:
        raise r.fail(f"{key}.records", f"is for json and xml; {syntax} records are lines")
    if syntax == "csv":
        delimiter = item.get("delimiter", ",")
        if delimiter not in (",", ";", "|", "\t"):
            raise r.fail(f"{key}.delimiter", "must be one of , ; | or a tab")
        extra["delimiter"] = delimiter
    if syntax == "fixed":
        for tag in ("header_tag", "record_tag", "trailer_tag"):
            value = item.get(tag)
            if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= 8 or not value.isascii()
                                      or not value.isprintable()):
                raise r.fail(f"{key}.{tag}", "must be 1-8 printable ASCII characters that start the line")
            if value is not None:
                extra[tag] = value
        if "record_tag" not in extra:
            raise r.fail(f"{key}.record_tag", "is needed: the characters a record line starts with")
    batch_table, record_table = KINDS[kind]
    batch = _fields(r, f"{key}.batch", item.get("batch", {}), batch_table, syntax, True)
    fields = _fields(r, f"{key}.fields", item.get("fields", {}), record_table, syntax, False)
    section = Section(kind, key, fmt, syntax, encoding, batch, fields, max_records=max_records, **extra)
    _check_section(r, section)
    return section


def _path(r: _Reader, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, str) or not value.strip("/"):
        raise r.fail(key, "must be a path of names separated by '/', e.g. 'request_body/record'")
    steps = tuple(value.strip("/").split("/"))
    if len(steps) > MAX_DEPTH or not all(_STEP.fullmatch(s) for s in steps):
        raise r.fail(key, f"{value!r}: at most {MAX_DEPTH} names of letters, digits, '_', '-' or '.'")
    return steps


def _fields(r: _Reader, key: str, table: object, allowed: dict, syntax: str, batch: bool) -> dict[str, Field]:
    if not isinstance(table, dict):
        raise r.fail(key, "must be a table of field = { ... }")
    out = {}
    for name, spec in table.items():
        fkey = f"{key}.{name}"
        if name not in allowed:
            raise r.fail(fkey, f"is not a field here; known: {', '.join(allowed)}")
        if isinstance(spec, str):
            spec = {"value": spec}
        if not isinstance(spec, dict):
            raise r.fail(fkey, "must be a table such as { path = \"...\" } or a constant string")
        out[name] = _field(r, fkey, name, spec, allowed[name], syntax, batch)
    return out


def _field(r: _Reader, key: str, name: str, spec: dict, kind: tuple[str, bool], syntax: str,
           batch: bool) -> Field:
    ftype, required = kind
    for k in sorted(set(spec) - _FIELD_KEYS):
        raise r.fail(f"{key}.{k}", f"is not a key of a field ({', '.join(sorted(_FIELD_KEYS))})")
    args: dict = {"name": name, "key": key, "type": ftype, "required": spec.get("required", required)}
    if not isinstance(args["required"], bool):
        raise r.fail(f"{key}.required", "must be true or false")
    value = spec.get("value")
    if value is not None and not isinstance(value, str):
        raise r.fail(f"{key}.value", "must be a string")
    args["value"] = value
    where_keys = {"json": ("path",), "xml": ("path",), "csv": ("column", "label"), "fixed": ("start", "width")}
    given = [k for k in ("path", "column", "label", "start", "width", "line") if k in spec]
    wrong = [k for k in given if k not in where_keys[syntax] and not (k == "line" and syntax == "fixed")]
    if wrong:
        raise r.fail(f"{key}.{wrong[0]}", f"is not a place in a {syntax} file (use {' and '.join(where_keys[syntax])})")
    if value is None and not given:
        raise r.fail(key, f"says neither where the field is ({' / '.join(where_keys[syntax])}) nor a constant value")
    if value is not None and given:
        raise r.fail(f"{key}.value", "a constant has no place in the file: give value or a place, not both")
    if "path" in spec:
        args["path"] = _path(r, f"{key}.path", spec["path"])
    if syntax == "csv" and value is None:
        if batch and "label" not in spec:
            raise r.fail(key, "a batch field of a csv file is a `label,value` line before the table: give label")
        if not batch and "column" not in spec:
            raise r.fail(key, "give column, the title of the field's column")
        for k in ("column", "label"):
            if k in spec:
                if not isinstance(spec[k], str) or not 1 <= len(spec[k]) <= 64:
                    raise r.fail(f"{key}.{k}", "must be a title of 1-64 characters")
                args[k] = spec[k]
    if syntax == "fixed" and value is None:
        for k, top in (("start", MAX_LINE), ("width", MAX_FIELD)):
            v = spec.get(k)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= top:
                raise r.fail(f"{key}.{k}", f"must be a whole number from 1 to {top} (bytes)")
            args[k] = v
        if args["start"] + args["width"] - 1 > MAX_LINE:
            raise r.fail(f"{key}.width", f"the field ends past byte {MAX_LINE} of the line")
        line = spec.get("line", "header" if batch else "record")
        if line not in (("header", "trailer") if batch else ("record",)):
            raise r.fail(f"{key}.line", "must be header or trailer for a batch field (record fields are on "
                                        "record lines)")
        args["line"] = line
    max_length = spec.get("max_length", args.get("width") or 140)
    if isinstance(max_length, bool) or not isinstance(max_length, int) or not 1 <= max_length <= MAX_FIELD:
        raise r.fail(f"{key}.max_length", f"must be a whole number from 1 to {MAX_FIELD}")
    args["max_length"] = max_length
    align = spec.get("align", "right" if ftype in (AMOUNT, SIGNED, COUNT) else "left")
    if align not in ("left", "right"):
        raise r.fail(f"{key}.align", "must be left or right")
    args["align"] = align
    if "unit" in spec:
        if ftype not in (AMOUNT, SIGNED) or spec["unit"] not in ("yuan", "fen"):
            raise r.fail(f"{key}.unit", "is for amounts: yuan (decimal, 12.50) or fen (whole minor units, 1250)")
        args["unit"] = spec["unit"]
    if "format" in spec:
        if ftype not in (DATE, DATETIME, TIME):
            raise r.fail(f"{key}.format", "is for dates and times")
        args["format"] = _date_format(r, f"{key}.format", spec["format"])
    elif ftype in DEFAULT_FORMATS:
        args["format"] = DEFAULT_FORMATS[ftype]
    if "codes" in spec:
        args["codes"] = _codes(r, f"{key}.codes", name, ftype, spec["codes"])
    elif ftype == FLAG:
        args["codes"] = (("true", "true"), ("false", "false"))
    if "this_bank" in spec:
        if name != "bank_code" or not isinstance(spec["this_bank"], str) or not spec["this_bank"]:
            raise r.fail(f"{key}.this_bank", "is for bank_code: the file's word for an account of this bank")
        args["this_bank"] = spec["this_bank"]
    return Field(**args)


def _date_format(r: _Reader, key: str, fmt: object) -> str:
    if not isinstance(fmt, str) or not 1 <= len(fmt) <= 40:
        raise r.fail(key, "must be a pattern such as %Y%m%d")
    bad = [d for d in _DIRECTIVES.findall(fmt) if d not in _ALLOWED_DIRECTIVES]
    if bad:
        raise r.fail(key, f"%{bad[0]} is not allowed; use %Y %m %d %H %M %S and literal characters")
    return fmt


def _codes(r: _Reader, key: str, name: str, ftype: str, table: object) -> tuple[tuple[str, str], ...]:
    if ftype not in (CODE, FLAG) or not isinstance(table, dict) or not 1 <= len(table) <= MAX_CODES:
        raise r.fail(key, f"is a table of domain value = \"file value\" (at most {MAX_CODES}) for a coded field")
    allowed = CODE_VALUES.get(name) or CODE_VALUES.get(ftype)
    out = []
    for domain_value, file_value in table.items():
        if allowed is not None and domain_value not in allowed:
            raise r.fail(f"{key}.{domain_value}", f"is not a value of {name}: {', '.join(sorted(allowed))}")
        if not isinstance(file_value, str) or not 0 <= len(file_value) <= 64:
            raise r.fail(f"{key}.{domain_value}", "must be the file's text for it (at most 64 characters)")
        out.append((domain_value, file_value))
    return tuple(out)


def _check_section(r: _Reader, s: Section) -> None:
    """What a section as a whole must say, beyond each field on its own."""
    both = {**s.batch, **s.fields}
    batch_table, record_table = KINDS[s.kind]
    for part, table in (("batch", batch_table), ("fields", record_table)):
        for name, (_, required) in table.items():
            if required and name not in both:
                raise r.fail(f"{s.key}.{part}", f"{name} is missing: a {s.kind} file needs it")
    if s.kind == "payments":
        for name in ("debtor_account", "currency"):
            if name not in both:
                raise r.fail(f"{s.key}.fields.{name}", "is missing (declare it in fields, or in batch when the "
                                                     "whole file has one)")
        if "bank_code" not in s.fields and "bank_scheme" not in s.fields:
            raise r.fail(f"{s.key}.fields.bank_code", "is missing: the payee bank's 联行号 (or a bank_scheme)")
    if s.kind == "statements":
        has_amount = "amount" in s.fields and "direction" in s.fields
        has_split = "debit_amount" in s.fields and "credit_amount" in s.fields
        if not (has_amount or has_split):
            raise r.fail(f"{s.key}.fields", "needs amount with direction, or debit_amount and credit_amount "
                                            "(借/贷 columns)")
        if "booked" not in s.fields and "booked_date" not in s.fields:
            raise r.fail(f"{s.key}.fields.booked", "is missing (or booked_date, with booked_time if the file has it)")
    if s.kind == "statuses":
        state = s.fields["state"]
        missing = sorted({st.value for st in PaymentState} - {d for d, _ in state.codes})
        if state.value is None and missing:
            raise r.fail(f"{state.key}.codes", f"must give a file code for every state; missing {', '.join(missing)}")
    for f in both.values():
        if f.type == CODE and not f.codes and f.name in CODE_VALUES and f.value is None:
            raise r.fail(f"{f.key}.codes", f"{f.name} needs a code table: {', '.join(sorted(CODE_VALUES[f.name]))}")
        if f.value is not None and f.codes and f.to_domain(f.value) is None:
            raise r.fail(f"{f.key}.value", "the constant is not a file value of its code table")
        if f.value is not None and not f.codes and f.name in CODE_VALUES and f.value not in CODE_VALUES[f.name]:
            raise r.fail(f"{f.key}.value", f"must be one of {', '.join(sorted(CODE_VALUES[f.name]))}")
    if s.syntax == "fixed":
        _check_fixed(r, s)


def _check_fixed(r: _Reader, s: Section) -> None:
    """Fields of one line must not overlap one another or the line's tag."""
    tags = {"record": s.record_tag, "header": s.header_tag, "trailer": s.trailer_tag}
    by_line: dict[str, list[Field]] = {}
    for f in (*s.batch.values(), *s.fields.values()):
        if f.value is None:
            by_line.setdefault(f.line, []).append(f)
    for line, fields in by_line.items():
        tag = tags[line]
        if tag is None:
            raise r.fail(f"{s.key}.{line}_tag", f"is needed: {fields[0].name} is on the {line} line")
        taken = len(tag.encode("ascii"))
        for f in sorted(fields, key=lambda f: f.start):
            if f.start <= taken:
                raise r.fail(f"{f.key}.start", f"byte {f.start} overlaps the {line} line's tag or the field before")
            taken = f.start + f.width - 1
