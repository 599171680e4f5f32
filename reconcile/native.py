"""Reading the gateway's own statement: the StatementQuery answer (a Response holding a Statement), or a bare
<Statement> element of urn:directlink:v1, as the agent or an integrator saved it.

Parsed by gateway.protocol.xmlsafe and validated against the protocol's Statement type (schemas/answers.xsd), so the
fields are what the spec says they are. The answer's signature is not checked here: whoever fetched the
page checked it (`directlink send` and the agent refuse an answer whose signature does not verify).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cache

from lxml import etree

from adapters.base import DocumentInvalid
from adapters.readback import Row, build, check_currency, parsed_xml
from domain.errors import PaymentRejected
from domain.models import BankCode, Party, Statement
from gateway.protocol import xmlsafe
from gateway.protocol.xmlsafe import q, text
from schemas import SCHEMA_DIR, compile_schema

FORMAT = "directlink"


def _statement_element(root: etree._Element) -> etree._Element:
    if root.tag == q("Statement"):
        return root
    if root.tag == q("Response"):
        found = root.find(q("Statement"))
        if found is not None:
            return found
        code = root.find(q("Result"))
        raise DocumentInvalid("/Response", "the answer holds no Statement (result "
                                           f"{code.get('code') if code is not None else 'missing'})")
    raise DocumentInvalid("/", f"not a DirectLink statement (root {root.tag})")


def _party(el: etree._Element | None, where: str) -> Party | None:
    if el is None:
        return None
    bank_el = el.find(q("BankCode"))
    bank = None
    if bank_el is not None:
        try:
            bank = BankCode(bank_el.get("scheme", ""), text(bank_el) or "")
        except PaymentRejected as err:
            raise DocumentInvalid(f"{where}/Counterparty/BankCode", err.detail) from None
    return Party(text(el.find(q("Name"))) or "", text(el.find(q("Account"))), bank)


def _value(el: etree._Element, name: str) -> str:
    return text(el.find(q(name))) or ""


def read_native(data: bytes) -> Statement:
    """A DirectLink StatementQuery answer (or its Statement) as a Statement; DocumentInvalid if it is not."""
    root = parsed_xml(data, "DirectLink")
    st = _statement_element(root)
    _validate(st)
    currency = check_currency(_value(st, "Currency"), "/Statement/Currency")
    rows = []
    for n, entry in enumerate(st.iterfind(q("Entry")), start=1):
        where = f"/Statement/Entry[{n}]"
        rows.append(Row(
            where, dt.datetime.fromisoformat(_value(entry, "Booked")), dt.date.fromisoformat(_value(entry, "ValueDate")),
            _value(entry, "Direction"), _decimal(_value(entry, "Amount")), _party(entry.find(q("Counterparty")), where),
            _value(entry, "BankRef"), _value(entry, "Narrative"), _value(entry, "ClientRef") or None,
            _value(entry, "EndToEndId") or None, reversal=_value(entry, "Reversal") in ("true", "1"),
            entry_id=int(_value(entry, "EntryId")) if _value(entry, "EntryId").isdigit() else None))
        amount_ccy = entry.find(q("Amount")).get("currency")
        if amount_ccy != currency:
            raise DocumentInvalid(f"{where}/Amount", f"currency {amount_ccy!r} on a statement in {currency}")
    opening, closing = st.find(q("Opening")), st.find(q("Closing"))
    return build(_value(st, "Account"), currency, _decimal(text(opening)), dt.date.fromisoformat(opening.get("date")),
                 _decimal(text(closing)), dt.date.fromisoformat(closing.get("date")), rows, where="/Statement/Closing",
                 next_cursor=_value(st, "NextCursor"), complete=_value(st, "Complete") in ("true", "1"))


def _decimal(value: str | None) -> Decimal:
    return Decimal(value or "0")           # the schema has checked the decimal text already


def _validate(st: etree._Element) -> None:
    """Check the Statement against the protocol's Statement type (answers.xsd), before reading a field."""
    schema = _statement_schema()
    if not schema.validate(st):
        err = schema.error_log[0]
        raise DocumentInvalid(f"/Statement line {err.line}", err.message)


@cache
def _statement_schema() -> etree.XMLSchema:
    """answers.xsd's Statement type as a schema with <Statement> as a root element (local files only)."""
    wrapper = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="{xmlsafe.NS}"
        targetNamespace="{xmlsafe.NS}" elementFormDefault="qualified">
      <xs:include schemaLocation="answers.xsd"/>
      <xs:element name="Statement" type="Statement"/>
    </xs:schema>"""
    doc = etree.fromstring(wrapper.encode(), etree.XMLParser(no_network=True, resolve_entities=False),
                           base_url=str(SCHEMA_DIR.joinpath("statement.xsd")))
    return compile_schema(doc)
