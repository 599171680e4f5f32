"""The four file syntaxes a mapping can declare, each both ways: bytes <-> a Table of text values.

A Table is what every syntax reduces a file to -- batch values and one dict per record, keyed by the
domain field names of the mapping, each a string or None when absent -- so the domain mapping
(kinds.py) is written once for JSON, XML, CSV and fixed-width files alike, reading and writing.

Faults of the file raise DocumentInvalid naming the place: a JSON pointer (/request_body/record/2/tran_amt),
an XML path (/ufinterface/record[3]/tran_amt), or `line 4` and the column or byte range.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from adapters.base import DocumentInvalid, RenderError, read_json_literally
from adapters.declared.spec import MAX_FILE_BYTES, Field, Section
from adapters.spreadsheet import cell, plain
from domain.errors import DirectLinkError
from gateway.protocol import xmlsafe

Values = dict[str, str | None]
Locate = Callable[[int | None, str | None], str]


@dataclass
class Table:
    batch: Values
    records: list[Values]
    where: Locate                 # (record index or None for the batch, field name or None) -> place


def read(s: Section, data: bytes) -> Table:
    if len(data) > MAX_FILE_BYTES:
        raise DocumentInvalid("/", f"{len(data)} bytes is over the limit of {MAX_FILE_BYTES}")
    table = _READERS[s.syntax](s, data)
    if len(table.records) > s.max_records:
        raise DocumentInvalid(table.where(None, None),
                              f"holds {len(table.records)} records; {s.format} takes at most {s.max_records}")
    for name, f in s.batch.items():
        _bounded(table, None, name, f)
    for i in range(len(table.records)):
        for name, f in s.fields.items():
            _bounded(table, i, name, f)
    return table


def write(s: Section, batch: Values, records: list[Values]) -> bytes:
    return _WRITERS[s.syntax](s, batch, records)


def _bounded(table: Table, i: int | None, name: str, f: Field) -> None:
    values = table.batch if i is None else table.records[i]
    if f.value is not None:
        values[name] = f.value
        return
    value = values.get(name)
    if value is not None and len(value) > f.max_length:
        raise DocumentInvalid(table.where(i, name),
                              f"is {len(value)} characters; the mapping allows at most {f.max_length}")


class _Fault(Exception):
    """A value's fault, before its place is known (places are spelled out only for faults: reading a
    thousand payments computes no thousand paths)."""


def decode(data: bytes, encoding: str, where: str = "/") -> str:
    """Strictly, in the declared encoding; UTF-8 bytes labelled GBK are refused (张三 would become 寮犱笁)."""
    data = _plausible(data, encoding, where)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DocumentInvalid(where, f"the bytes are not valid {encoding} at offset {exc.start}") from None


def _plausible(data: bytes, encoding: str, where: str) -> bytes:
    """The checks before decoding: no UTF-16/32, no misplaced byte-order mark, no UTF-8 labelled GBK."""
    if b"\x00" in data or data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DocumentInvalid(where, "NUL bytes: UTF-16/32 is not accepted")
    if data.startswith(codecs.BOM_UTF8):
        if encoding != "utf-8":
            raise DocumentInvalid(where, f"starts with a UTF-8 byte-order mark but the format is {encoding}")
        data = data[len(codecs.BOM_UTF8):]
    if encoding != "utf-8" and not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            raise DocumentInvalid(where, f"the format is {encoding} but the bytes are UTF-8")
    return data


def _encode(text: str, encoding: str, what: str) -> bytes:
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as exc:
        raise RenderError(f"{what}: {text[exc.start:exc.end]!r} cannot be written in {encoding}") from None


# ---- JSON ----------------------------------------------------------------------------------------------

def _pairs(pairs: list[tuple[str, object]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dupe = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise DocumentInvalid("/", f"member {dupe!r} appears more than once in one object")
    return out


def _json_value(node: object, f: Field) -> str | None:
    for step in f.path:
        if not isinstance(node, dict):
            raise _Fault("sits under something that is not an object")
        node = node.get(step)
    if node is None or node == "":
        return None
    if isinstance(node, bool):
        return "true" if node else "false"
    if not isinstance(node, str):
        raise _Fault("must be text or a number, not an object or a list")
    return node


def _values(fields: dict[str, Field], node: object, get, where: Locate, i: int | None) -> Values:
    """The fields' values in one record (or the batch), the place named only for a fault."""
    out: Values = {}
    for name, f in fields.items():
        if f.value is None:
            try:
                out[name] = get(node, f)
            except _Fault as fault:
                raise DocumentInvalid(where(i, name), str(fault)) from None
    return out


def _read_json(s: Section, data: bytes) -> Table:
    doc = read_json_literally(decode(data, s.encoding), _pairs)
    base = "/" + "/".join(s.records)

    def where(i: int | None, name: str | None) -> str:
        f = (s.fields if i is not None else s.batch).get(name or "")
        inner = "/" + "/".join(f.path) if f is not None and f.path else ""
        return (f"{base}/{i}{inner}" if i is not None else inner) or "/"

    if not isinstance(doc, dict):
        raise DocumentInvalid("/", "the file must be a JSON object")
    node: object = doc
    for step in s.records[:-1]:
        node = node.get(step) if isinstance(node, dict) else None
    items = node.get(s.records[-1]) if isinstance(node, dict) else None
    if not isinstance(items, list):
        raise DocumentInvalid(base, "is missing or is not a list of records")
    batch = _values(s.batch, doc, _json_value, where, None)
    records = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise DocumentInvalid(f"{base}/{i}", "is not an object of fields")
        records.append(_values(s.fields, item, _json_value, where, i))
    return Table(batch, records, where)


def _put(doc: dict, path: tuple[str, ...], value: object) -> None:
    for step in path[:-1]:
        doc = doc.setdefault(step, {})
    doc[path[-1]] = value


def _write_json(s: Section, batch: Values, records: list[Values]) -> bytes:
    doc: dict = {}
    for name, f in s.batch.items():
        if f.value is None and batch.get(name) is not None:
            _put(doc, f.path, batch[name])
    items = []
    for rec in records:
        item: dict = {}
        for name, f in s.fields.items():
            if f.value is None and rec.get(name) is not None:
                _put(item, f.path, rec[name])
        items.append(item)
    _put(doc, s.records, items)
    text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    return _encode(text, s.encoding, s.format)


# ---- XML -----------------------------------------------------------------------------------------------

def _xml_value(el: etree._Element, f: Field) -> str | None:
    for step in f.path:
        found = [c for c in el if c.tag == step]
        if not found:
            return None
        if len(found) > 1:
            raise _Fault("appears more than once")
        el = found[0]
    if any(isinstance(c.tag, str) for c in el):
        raise _Fault("must hold text, not elements")
    return xmlsafe.text(el) or None


def _read_xml(s: Section, data: bytes) -> Table:
    try:
        root = xmlsafe.parse(data, MAX_FILE_BYTES)
    except DirectLinkError as err:
        raise DocumentInvalid("/", f"{err.code}: {err.detail}") from err
    base = "/" + "/".join(s.records)

    def where(i: int | None, name: str | None) -> str:
        f = (s.fields if i is not None else s.batch).get(name or "")
        inner = "/" + "/".join(f.path) if f is not None and f.path else ""
        return f"{base}[{i + 1}]{inner}" if i is not None else f"/{s.root}{inner}"

    if root.tag != s.root:
        raise DocumentInvalid("/", f"the root element must be <{s.root}> without a namespace")
    parent = root
    for depth, step in enumerate(s.records[1:-1], start=2):
        found = [c for c in parent if c.tag == step]
        if len(found) != 1:
            raise DocumentInvalid("/" + "/".join(s.records[:depth]), "must appear exactly once")
        parent = found[0]
    items = [c for c in parent if c.tag == s.records[-1]]
    batch = _values(s.batch, root, _xml_value, where, None)
    records = [_values(s.fields, item, _xml_value, where, i) for i, item in enumerate(items)]
    return Table(batch, records, where)


def _xml_put(el: etree._Element, path: tuple[str, ...], value: str) -> None:
    for step in path:
        found = el.find(step)
        el = found if found is not None else etree.SubElement(el, step)
    el.text = value


def _write_xml(s: Section, batch: Values, records: list[Values]) -> bytes:
    root = etree.Element(s.root)
    for name, f in s.batch.items():
        if f.value is None and batch.get(name) is not None:
            _xml_put(root, f.path, batch[name] or "")
    parent = root
    for step in s.records[1:-1]:
        found = parent.find(step)
        parent = found if found is not None else etree.SubElement(parent, step)
    for rec in records:
        item = etree.SubElement(parent, s.records[-1])
        for name, f in s.fields.items():
            if f.value is None and rec.get(name) is not None:
                _xml_put(item, f.path, rec[name] or "")
    try:
        return etree.tostring(root, xml_declaration=True, encoding=s.encoding.upper(), pretty_print=True)
    except ValueError as err:   # a control character, or a character the encoding lacks
        raise RenderError(f"{s.format}: {err}") from None


# ---- CSV -----------------------------------------------------------------------------------------------

def _read_csv(s: Section, data: bytes) -> Table:
    text = decode(data, s.encoding)
    columns = {n: f.column for n, f in s.fields.items() if f.value is None}
    labels = {f.label: n for n, f in s.batch.items() if f.value is None}
    titles: list[str] | None = None
    batch: Values = dict.fromkeys(labels.values())
    records: list[Values] = []
    lines: list[int] = []
    title_of = {v: k for k, v in columns.items()}

    def where(i: int | None, name: str | None) -> str:
        if i is None:
            f = s.batch.get(name or "")
            return f"line {batch_lines.get(name or '', 1)}/{f.label if f else ''}".rstrip("/")
        return f"line {lines[i]}/{columns.get(name or '', '')}".rstrip("/")

    batch_lines: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=s.delimiter, strict=True)
    try:
        for row in reader:
            n = reader.line_num
            if not any(c.strip() for c in row):
                continue
            cells = [plain(c) for c in row]
            if titles is None:
                if set(columns.values()) <= set(cells):
                    titles = cells
                    continue
                if len(cells) >= 2 and cells[0].strip() in labels:
                    name = labels[cells[0].strip()]
                    if name in batch_lines:
                        raise DocumentInvalid(f"line {n}", f"{cells[0]!r} appears more than once")
                    batch[name], batch_lines[name] = cells[1].strip() or None, n
                    continue
                raise DocumentInvalid(f"line {n}", "is neither a known `label,value` line nor the title row "
                                                   f"({', '.join(columns.values())})")
            if len(cells) != len(titles):
                raise DocumentInvalid(f"line {n}", f"has {len(cells)} cells; the title row has {len(titles)}")
            records.append({title_of[t]: (c.strip() or None) for t, c in zip(titles, cells, strict=True)
                            if t in title_of})
            lines.append(n)
            if len(records) > s.max_records:
                break
    except csv.Error as exc:
        raise DocumentInvalid(f"line {reader.line_num}", f"not valid CSV: {exc}") from None
    if titles is None:
        raise DocumentInvalid("line 1", f"no title row with the columns {', '.join(columns.values())}")
    return Table(batch, records, where)


def _write_csv(s: Section, batch: Values, records: list[Values]) -> bytes:
    out = io.StringIO(newline="")
    w = csv.writer(out, delimiter=s.delimiter, lineterminator="\r\n")
    for name, f in s.batch.items():
        if f.value is None and f.label:
            w.writerow([cell(f.label), cell(batch.get(name) or "")])
    fields = [(n, f) for n, f in s.fields.items() if f.value is None]
    w.writerow([cell(f.column or "") for _, f in fields])
    for rec in records:
        w.writerow([cell(rec.get(n) or "") for n, _ in fields])
    return _encode(out.getvalue(), s.encoding, s.format)


# ---- fixed width ---------------------------------------------------------------------------------------

def _kind_of(s: Section, line: bytes) -> str | None:
    tags = [(t, k) for t, k in ((s.header_tag, "header"), (s.trailer_tag, "trailer"), (s.record_tag, "record"))
            if t is not None]
    for tag, kind in sorted(tags, key=lambda tk: -len(tk[0])):    # the longest tag wins: "HD" before "H"
        if line.startswith(tag.encode("ascii")):
            return kind
    return None


def _slice(line: bytes, f: Field, encoding: str) -> str | None:
    raw = line[f.start - 1:f.start - 1 + f.width]
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        raise _Fault(f"bytes {f.start}-{f.start + f.width - 1} are not valid {encoding}: a character cut in two "
                     "(a width counted in characters, not bytes?)") from None
    return text.strip(" ") or None


def _read_fixed(s: Section, data: bytes) -> Table:
    lines = _plausible(data, s.encoding, "/").split(b"\n")
    if lines and lines[-1] in (b"", b"\r"):
        lines.pop()
    records: list[Values] = []
    numbers: list[int] = []
    batch: Values = {}
    batch_line: dict[str, int] = {}

    def where(i: int | None, name: str | None) -> str:
        if i is None:
            f = s.batch.get(name or "")
            n = batch_line.get(f.line, 1) if f else 1
        else:
            f, n = s.fields.get(name or ""), numbers[i]
        return f"line {n}/{f.name} (bytes {f.start}-{f.start + f.width - 1})" if f and f.width else f"line {n}"

    def cut(line: bytes, f: Field) -> str | None:
        return _slice(line, f, s.encoding)

    for n, line in enumerate(lines, start=1):
        line = line.removesuffix(b"\r")
        kind = _kind_of(s, line)
        if kind is None:
            tags = " or ".join(repr(t) for t in (s.header_tag, s.record_tag, s.trailer_tag) if t)
            raise DocumentInvalid(f"line {n}", f"starts with none of {tags}")
        if kind == "record":
            if "trailer" in batch_line:
                raise DocumentInvalid(f"line {n}", "a record after the trailer line")
            numbers.append(n)
            records.append(_values(s.fields, line, cut, where, len(records)))
            if len(records) > s.max_records:
                break
            continue
        if kind in batch_line or (kind == "header" and (records or batch_line)):
            raise DocumentInvalid(f"line {n}", f"a second {kind} line, or a header after records")
        batch_line[kind] = n
        batch |= _values({k: f for k, f in s.batch.items() if f.line == kind}, line, cut, where, None)
    for k in s.batch:
        batch.setdefault(k, None)
    return Table(batch, records, where)


def _fixed_line(s: Section, tag: str, fields: list[tuple[Field, str | None]]) -> bytes:
    width = max([len(tag)] + [f.start + f.width - 1 for f, _ in fields])
    out = bytearray(b" " * width)
    out[:len(tag)] = tag.encode("ascii")
    for f, value in fields:
        raw = _encode(value or "", s.encoding, f"{s.format} {f.name}")
        if len(raw) > f.width:
            raise RenderError(f"{s.format}: {f.name} {value!r} is {len(raw)} bytes in {s.encoding}; "
                              f"the field holds {f.width}")
        if f.align == "right" and value and value.lstrip("-").isdigit():    # whole numbers: zero-padded,
            sign = b"-" if value.startswith("-") else b""                 # -0000125 rather than 0000-125
            raw = sign + raw.removeprefix(sign).rjust(f.width - len(sign), b"0")
        else:
            raw = raw.rjust(f.width, b" ") if f.align == "right" else raw.ljust(f.width, b" ")
        out[f.start - 1:f.start - 1 + f.width] = raw
    return bytes(out)


def _write_fixed(s: Section, batch: Values, records: list[Values]) -> bytes:
    lines = []
    for kind, tag in (("header", s.header_tag), ("trailer", s.trailer_tag)):
        fields = [(f, batch.get(n)) for n, f in s.batch.items() if f.value is None and f.line == kind]
        if tag is not None:
            lines.append((kind, _fixed_line(s, tag, fields)))
    body = [_fixed_line(s, s.record_tag, [(f, rec.get(n)) for n, f in s.fields.items() if f.value is None])
            for rec in records]
    head = [line for kind, line in lines if kind == "header"]
    tail = [line for kind, line in lines if kind == "trailer"]
    return b"".join(line + b"\r\n" for line in (*head, *body, *tail))


_READERS = {"json": _read_json, "xml": _read_xml, "csv": _read_csv, "fixed": _read_fixed}
_WRITERS = {"json": _write_json, "xml": _write_xml, "csv": _write_csv, "fixed": _write_fixed}
