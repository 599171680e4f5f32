"""The one hardened XML parser for every byte the gateway receives (security.md rule 5).

Size is checked before parsing; DTDs, entities, XInclude and processing instructions are refused with
XML_FORBIDDEN_CONSTRUCT; the declared encoding must be on the allow-list and must match the bytes.
"""
from __future__ import annotations

import codecs
import re
import threading
from functools import cache
from typing import overload

from lxml import etree

from domain.codes import ResultCode
from domain.errors import XmlRejected
from schemas import SCHEMA_DIR, compile_schema

NS = "urn:directlink:v1"
ALLOWED_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "gb18030": "gb18030", "gbk": "gbk"}
_DECLARATION = re.compile(rb"<\?xml\s[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._\-]+)[\"']")
_FORBIDDEN_MARKUP = (b"<!DOCTYPE", b"<!ENTITY", b"<!doctype")
# libxml2 expands both the 2001 namespace and the older 2003 one.
_XINCLUDE_NS = ("http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude")
_local = threading.local()


def _parser(codec: str) -> etree.XMLParser:
    """The hardened parser for one codec, which it is told: lxml must never guess an encoding itself."""
    # lxml parsers are not thread-safe: one per thread (FastAPI runs sync handlers in a thread pool).
    parsers = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    if codec not in parsers:
        parsers[codec] = etree.XMLParser(
            encoding=codec, resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
            huge_tree=False, remove_pis=False, remove_comments=False, collect_ids=False,
        )
    return parsers[codec]


def declared_encoding(body: bytes) -> str:
    """Return the allowed codec named by the XML declaration (UTF-8 without one); raise if not allowed."""
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise XmlRejected("UTF-16/32 input is not accepted", code=ResultCode.XML_ENCODING_INVALID)
    text = body.removeprefix(codecs.BOM_UTF8)
    name = "utf-8"
    if text.startswith(b"<?xml"):
        end = text.find(b"?>")
        if end < 0:
            raise XmlRejected("the XML declaration is not closed", code=ResultCode.XML_MALFORMED)
        match = _DECLARATION.match(text[:end + 2])  # the whole declaration, however much blank it holds
        if match:
            name = match.group(1).decode("ascii").lower()
    codec = ALLOWED_ENCODINGS.get(name)
    if codec is None or (body.startswith(codecs.BOM_UTF8) and codec != "utf-8"):
        raise XmlRejected(f"encoding {name!r} is not accepted (UTF-8, GB18030, GBK)",
                          code=ResultCode.XML_ENCODING_INVALID)
    return codec


def _check_bytes_match(body: bytes, codec: str) -> None:
    if b"\x00" in body:
        # NUL is never legal in XML 1.0; here it means UTF-16/32 without a byte-order mark.
        raise XmlRejected("NUL bytes: UTF-16/32 input is not accepted", code=ResultCode.XML_ENCODING_INVALID)
    try:
        body.decode(codec)
    except UnicodeDecodeError as exc:
        raise XmlRejected(f"the bytes are not valid {codec} at offset {exc.start}",
                          code=ResultCode.XML_ENCODING_INVALID) from exc
    if codec != "utf-8" and not body.isascii():
        # A body declared GBK/GB18030 whose non-ASCII bytes are valid UTF-8 is almost surely UTF-8
        # mislabelled: GBK decoding would silently turn 张三 into 寮犱笁 (security.md XML-10).
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return
        raise XmlRejected(f"declared {codec} but the bytes are UTF-8", code=ResultCode.XML_ENCODING_INVALID)


def parse(body: bytes, max_bytes: int) -> etree._Element:
    """Parse untrusted bytes into an element tree, or raise XmlRejected with the precise code."""
    if len(body) > max_bytes:
        raise XmlRejected(f"{len(body)} bytes is over the limit of {max_bytes}", code=ResultCode.XML_TOO_LARGE)
    codec = declared_encoding(body)
    _check_bytes_match(body, codec)
    if any(marker in body for marker in _FORBIDDEN_MARKUP):
        raise XmlRejected("DTDs and entity declarations are not accepted", code=ResultCode.XML_FORBIDDEN_CONSTRUCT)
    try:
        root = etree.fromstring(body, _parser(codec))
    except etree.XMLSyntaxError as exc:
        raise XmlRejected(f"not well-formed XML: {exc}", code=ResultCode.XML_MALFORMED) from exc
    _refuse_constructs(root)
    return root


def _refuse_constructs(root: etree._Element) -> None:
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise XmlRejected("DTDs are not accepted", code=ResultCode.XML_FORBIDDEN_CONSTRUCT)
    outside = [*root.itersiblings(preceding=True), *root.itersiblings()]
    if any(isinstance(node, etree._ProcessingInstruction) for node in outside) or \
            next(root.iter(etree.PI), None) is not None:
        raise XmlRejected("processing instructions are not accepted", code=ResultCode.XML_FORBIDDEN_CONSTRUCT)
    if next(root.iter(etree.Entity), None) is not None:
        raise XmlRejected("entity references are not accepted", code=ResultCode.XML_FORBIDDEN_CONSTRUCT)
    if any(next(root.iter(f"{{{ns}}}*"), None) is not None for ns in _XINCLUDE_NS):
        raise XmlRejected("XInclude is not accepted", code=ResultCode.XML_FORBIDDEN_CONSTRUCT)


def schema() -> etree.XMLSchema:
    """The protocol schema (envelope.xsd and what it includes), from local files only, one per thread:
    an XMLSchema's error log is shared state, so threads must not share one."""
    xsd = getattr(_local, "schema", None)
    if xsd is None:
        xsd = _local.schema = compile_schema(_schema_doc())
    return xsd


@cache
def _schema_doc() -> etree._ElementTree:
    path = SCHEMA_DIR.joinpath("envelope.xsd")
    with path.open("rb") as fh:
        return etree.parse(fh, etree.XMLParser(no_network=True, resolve_entities=False), base_url=str(path))


def validate(root: etree._Element) -> None:
    """Validate a Request or Response against the protocol XSD; raise XML_SCHEMA_INVALID with the first error."""
    xsd = schema()
    if not xsd.validate(root):
        err = xsd.error_log[0]
        raise XmlRejected(f"line {err.line}: {err.message}", code=ResultCode.XML_SCHEMA_INVALID)


def q(name: str) -> str:
    """The qualified tag of a protocol element."""
    return f"{{{NS}}}{name}"


@overload
def text(el: None) -> None: ...
@overload
def text(el: etree._Element) -> str: ...
def text(el: etree._Element | None) -> str | None:
    """All text of an element, or None if absent. Joins every text node, so a comment inside a value
    cannot truncate it (comment injection, security.md 1.4); comment contents themselves are skipped."""
    if el is None:
        return None
    if not len(el):   # no children, so no comment either: its one text node (0.1 µs against 1.5 µs)
        return el.text or ""
    return "".join(el.itertext(etree.Element))
