"""The official ISO 20022 schemas (schemas/iso20022/, see its README.md), loaded from local files only.

Each file is parsed once; the compiled XMLSchema is kept per thread, because an XMLSchema's error log is
shared state and the gateway runs sync handlers in a thread pool (the same lesson as gateway/xmlsafe.py).
"""
from __future__ import annotations

import re
import threading
from functools import cache

from lxml import etree

from adapters.base import DocumentInvalid
from schemas import SCHEMA_DIR, compile_schema

NS_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
_local = threading.local()
_CLARK = re.compile(r"\{[^}]*\}")
_COUNTED = frozenset({"PmtInf", "CdtTrfTxInf"})


def namespace(message: str) -> str:
    """The XML namespace of a message name such as 'pain.001.001.03'."""
    return NS_PREFIX + message


@cache
def _schema_doc(message: str) -> etree._ElementTree:
    path = SCHEMA_DIR.joinpath("iso20022", f"{message}.xsd")
    with path.open("rb") as fh:
        return etree.parse(fh, etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False),
                           base_url=str(path))


def schema(message: str) -> etree.XMLSchema:
    """The compiled schema of one message version, one per thread."""
    cached = getattr(_local, "schemas", None)
    if cached is None:
        cached = _local.schemas = {}
    if message not in cached:
        cached[message] = compile_schema(_schema_doc(message))
    return cached[message]


def readable_path(root: etree._Element, el: etree._Element) -> str:
    """'PmtInf[1]/CdtTrfTxInf[2]/Amt/InstdAmt': local names below the message element, with a 1-based index
    on the blocks the gateway itself counts (as in SubmittedPayment.where) and wherever a name repeats, so an
    ERP team finds the spot without XPath tools."""
    parts = []
    node = el
    while node is not None and node is not root:
        name = etree.QName(node).localname
        same = [c for c in node.getparent() if c.tag == node.tag]
        if len(same) > 1 or name in _COUNTED:
            name += f"[{same.index(node) + 1}]"
        parts.append(name)
        node = node.getparent()
    parts.reverse()
    # Document and the message element (CstmrCdtTrfInitn, ...) are the same in every file of a format.
    return "/".join(parts[1:]) if len(parts) > 1 else "/".join(["Document", *parts])


def validate(root: etree._Element, message: str) -> None:
    """Validate a parsed document against the official XSD; DocumentInvalid names the first failure."""
    xsd = schema(message)
    if xsd.validate(root):
        return
    err = xsd.error_log[0]
    where = f"line {err.line}"
    try:
        found = root.getroottree().xpath(err.path) if err.path else []
    except etree.XPathError:
        found = []
    if found and isinstance(found[0], etree._Element):
        where = f"{readable_path(root, found[0])} (line {err.line})"
    # libxml2 writes element names in Clark notation; the namespace is the same for every element.
    raise DocumentInvalid(where, f"fails the {message} XSD: {_CLARK.sub('', err.message)}")

