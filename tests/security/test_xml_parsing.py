"""Catalogue section B, XML parsing (security.md 1.5, 1.6 and 8 B): XML-01..04 entity bombs, external entities
and DTDs, XML-05 XInclude, XML-06 processing instructions and schemaLocation, XML-07 depth, XML-09 width,
XML-10 encodings, XML-11 schema differentials (duplicates, foreign namespaces, xsi tricks); last, the
regressions reduced from tests/scenarios/test_fuzz.py.
"""
from __future__ import annotations

import copy
import datetime as dt
import time

import pytest
from conftest import OPERATING, SUPPLIER
from lxml import etree

from gateway.protocol import client as dl
from gateway.protocol import xmlsafe
from gateway.protocol.messages import E
from gateway.protocol.xmlsafe import q, text
from security.attack_kit import (
    FAST,
    NO_FORMAT,
    amount_el,
    balances,
    ds,
    dump,
    envelope,
    outcomes,
    pay,
    payment_rows,
    post,
    refused,
    sig,
    tree,
)

XSI = "http://www.w3.org/2001/XMLSchema-instance"


def after_declaration(body: bytes, insert: bytes) -> bytes:
    end = body.index(b"?>") + 2
    return body[:end] + insert + body[end:]


# ---- parser attacks (XML-01..11) -------------------------------------------------------------------------

LAUGHS = (b'<!DOCTYPE Request [<!ENTITY lol "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                     for i in range(1, 10)) + b"]>")
QUADRATIC = b'<!DOCTYPE Request [<!ENTITY a "' + b"A" * 50_000 + b'">]>'


def _entities(url):
    return {   # case: signed bytes -> attack bytes
        "billion laughs in an attribute": lambda b: after_declaration(b, LAUGHS).replace(
            b'currency="CNY"', b'currency="&lol9;"'),
        "quadratic blowup": lambda b: after_declaration(b, QUADRATIC).replace(
            b"<Purpose>", b"<Purpose>" + b"&a;" * 2000),
        "external entity (http)": lambda b: after_declaration(
            b, f'<!DOCTYPE Request [<!ENTITY x SYSTEM "{url}/x">]>'.encode()).replace(
            b"<Purpose>", b"<Purpose>&x;"),
        "external DTD": lambda b: after_declaration(
            b, f'<!DOCTYPE Request SYSTEM "{url}/evil.dtd">'.encode()),
        "public external DTD": lambda b: after_declaration(
            b, f'<!DOCTYPE Request PUBLIC "-//EVIL//DTD//EN" "{url}/evil.dtd">'.encode()),
        "parameter entity (out of band)": lambda b: after_declaration(
            b, f'<!DOCTYPE Request [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]>'.encode()),
        "internal parameter entity": lambda b: after_declaration(
            b, b'<!DOCTYPE Request [<!ENTITY % p "<!ENTITY y \'yy\'>"> %p;]>'),
        "empty internal subset": lambda b: after_declaration(b, b"<!DOCTYPE Request []>"),
        "ATTLIST default namespace injection": lambda b: after_declaration(
            b, b'<!DOCTYPE Request [<!ATTLIST Header xmlns CDATA "urn:evil">]>'),
        "undeclared entity reference": lambda b: b.replace(b"<Purpose>", b"<Purpose>&x;"),
    }


# Without a DTD an entity reference is also not well-formed (WFC: Entity Declared): either code is right.
ENTITY_CODES = {"undeclared entity reference": {"XML_MALFORMED", "XML_FORBIDDEN_CONSTRUCT"}}


@pytest.mark.parametrize("case", list(_entities("http://x")))
def test_entities_and_dtds(maker, http, home, gateway, listener, case):
    """Entity bombs, external entities and DTDs around a correctly signed order: refused before expansion,
    with no network access (the listener must see no connection)."""
    url, hits = listener
    body = _entities(url)[case](maker.request(pay()))
    answer = refused(gateway, http, home, body, 400, ENTITY_CODES.get(case, "XML_FORBIDDEN_CONSTRUCT"))
    assert "lol" not in answer.detail and "A" * 100 not in answer.detail
    time.sleep(0.05)
    assert hits == []


XI_2001 = b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/>'
XI_2003 = b'<xi:include xmlns:xi="http://www.w3.org/2003/XInclude" href="file:///etc/passwd" parse="text"/>'


def _document(payload: etree._Element | str, encoding="xml"):
    return E.DocumentSubmit(E.Document(payload, format=NO_FORMAT, encoding=encoding))


CONSTRUCTS = {   # case: bytes of a signed request -> attack bytes; all XML_FORBIDDEN_CONSTRUCT
    "XInclude inside a Document": lambda m: m.request(_document(etree.fromstring(XI_2001))),
    "XInclude (2003 namespace) inside a Document": lambda m: m.request(_document(etree.fromstring(XI_2003))),
    "XInclude inside ds:Object": lambda m: dump(_with_object(m, etree.fromstring(XI_2001))),
    "XInclude fallback element": lambda m: m.request(_document(etree.fromstring(
        b'<xi:fallback xmlns:xi="http://www.w3.org/2001/XInclude">x</xi:fallback>'))),
    "PI after the root": lambda m: m.request(pay()) + b'<?xml-stylesheet href="http://x.t/x.xsl"?>',
    "PI inside a Document": lambda m: m.request(_document(E.Pain(etree.PI("evil", "run"), "x"))),
    "PI inside ds:Signature": lambda m: dump(_with_object(m, etree.PI("evil", "run"))),
    "xml-model PI before the root": lambda m: after_declaration(
        m.request(pay()), b'<?xml-model href="http://x.t/schema.rng"?>'),
}


def _with_object(maker, content) -> etree._Element:
    root = tree(maker.request(pay()))
    obj = ds("Object")
    obj.append(content)
    sig(root).append(obj)
    return root


@pytest.mark.parametrize("case", CONSTRUCTS)
def test_xinclude_and_processing_instructions(maker, http, home, gateway, case):
    """XInclude (either namespace libxml2 honours) and PIs, also where the XSD does not look (Document
    content, ds:Signature): refused as constructs, whatever else is wrong with the request."""
    refused(gateway, http, home, CONSTRUCTS[case](maker), 400, "XML_FORBIDDEN_CONSTRUCT")


def test_xinclude_2003_namespace_is_really_xinclude():
    """Why the 2003 namespace counts: libxml2 (under lxml) expands it like the 2001 one."""
    doc = etree.fromstring(b'<r xmlns:xi="http://www.w3.org/2003/XInclude">'
                           b'<xi:include href="data:," parse="text"><xi:fallback>expanded</xi:fallback>'
                           b'</xi:include></r>')
    doc.getroottree().xinclude()
    assert "expanded" in "".join(doc.itertext())


def _nested(n: int, tag=b"x") -> bytes:
    return b"<%s>" % tag * n + b"</%s>" % tag * n


@pytest.mark.parametrize("depth", [300, 5000])
@pytest.mark.parametrize("where", ["Remark", "Document"])
def test_excessive_depth(maker, http, home, gateway, where, depth):
    """300 and 5000 nested elements where a Remark goes, or inside a Document (which the XSD does not look
    into): refused by the parser's depth limit, quickly, before any signature work."""
    if where == "Remark":
        body = maker.request(pay(remark="R")).replace(
            b"<Remark>R</Remark>", b"<Remark>" + _nested(depth) + b"</Remark>")
    else:
        body = maker.request(_document("D")).replace(b">D</Document>", b">" + _nested(depth) + b"</Document>")
    refused(gateway, http, home, body, 400, "XML_MALFORMED")


def test_deep_but_parseable_document_is_handled(maker, http, home, gateway):
    """250 levels inside a signed Document pass the parser and the signature; the answer is a clean 400."""
    inner = etree.fromstring(_nested(250))
    refused(gateway, http, home, maker.request(_document(inner)), 400, "UNSUPPORTED_FORMAT", verified=True)


def _wide_attributes(b: bytes) -> bytes:
    attrs = b" ".join(b'a%d="1"' % i for i in range(100_000))
    return b.replace(b"<Remark>", b"<Remark " + attrs + b">")


def _wide_elements_in_remark(b: bytes) -> bytes:
    return b.replace(b"<Remark>R</Remark>", b"<Remark>" + b"<x/>" * 100_000 + b"</Remark>")


def _wide_elements_in_document(m) -> bytes:
    return m.request(_document("D")).replace(
        b">D</Document>", b"><x>" + b"<y/>" * 100_000 + b"</x></Document>")


def _wide_namespaces(b: bytes) -> bytes:
    decls = b" ".join(b'xmlns:n%d="urn:n%d"' % (i, i) for i in range(100_000))
    return b.replace(b"<Remark>", b"<Remark " + decls + b">")


def _long_name(b: bytes) -> bytes:
    name = b"N" * 1_000_000
    return b.replace(b"<Remark>R</Remark>", b"<Remark><" + name + b"/></Remark>")


def _many_accounts(m) -> bytes:
    return m.request(dl.balance_query(*[OPERATING] * 100_000))


WIDE = {   # case: (maker -> bytes, code)
    "100k attributes": (lambda m: _wide_attributes(m.request(pay(remark="R"))), "XML_SCHEMA_INVALID"),
    "100k elements in Remark": (lambda m: _wide_elements_in_remark(m.request(pay(remark="R"))),
                                "XML_SCHEMA_INVALID"),
    "100k elements in a Document, after signing": (_wide_elements_in_document, "SIG_INVALID"),
    "1 MB element name": (lambda m: _long_name(m.request(pay(remark="R"))), "XML_MALFORMED"),
    "9 MB text in Remark": (lambda m: m.request(pay(remark="R")).replace(
        b"<Remark>R</Remark>", b"<Remark>" + b"R" * 9_000_000 + b"</Remark>"), "XML_SCHEMA_INVALID"),
    "100k Accounts in a BalanceQuery": (_many_accounts, "XML_SCHEMA_INVALID"),
}


@pytest.mark.parametrize("case", WIDE)
def test_very_wide_documents(maker, http, home, gateway, case):
    """WS-Attacker's width attacks (XML-09): a clean rejection within FAST seconds (refused() measures it)."""
    make, code = WIDE[case]
    refused(gateway, http, home, make(maker), 401 if code.startswith("SIG") else 400, code)


def _comments_everywhere(b: bytes) -> bytes:
    return b.replace(b"<Remark>R</Remark>", b"<Remark>R" + b"<!---->" * 100_000 + b"</Remark>")


def _comments_between_elements(b: bytes) -> bytes:
    return b.replace(b"</Purpose>", b"</Purpose>" + b"<!-- noise -->" * 100_000)


NOISE = {   # signed bytes -> the same signed content with 100k pieces of noise that C14N drops
    "100k namespace declarations": _wide_namespaces,
    "100k comments inside a value": _comments_everywhere,
    "100k comments between elements": _comments_between_elements,
}


@pytest.mark.parametrize("case", NOISE)
def test_noise_that_is_not_content(maker, http, home, gateway, case):
    """Width made of what exc-C14N drops (unused namespace declarations, comments), added after signing: the
    signature still holds and the content is exactly what was signed. It is answered within FAST seconds and,
    if executed, executed as signed (the whole Remark, no more)."""
    body = NOISE[case](maker.request(pay(ref="NOISE-1", remark="R")))
    before = balances(gateway.engine)
    answer, elapsed = post(http, home, body)
    assert elapsed < FAST, f"{elapsed:.1f} s"
    if answer.code == "OK":
        assert outcomes(answer) == [("SETTLED", None)]
        assert balances(gateway.engine)[OPERATING] - before[OPERATING] == -10000
        assert [(r.amount, r.remark) for r in payment_rows(gateway.engine)] == [(10000, "R")]
    else:
        assert answer.status == 400 and balances(gateway.engine) == before


def test_1001_payments_refused_before_any_payment(maker, http, home, gateway):
    """A correctly signed PaymentOrder with 1001 payments (the limit is 1000): refused as a whole, before any
    of the first 1000 is made."""
    order = dl.payment_order(*[dl.payment(f"MANY-{i}", OPERATING, "1.00", "ACME", SUPPLIER)
                               for i in range(1001)])
    refused(gateway, http, home, maker.request(order), 400, "XML_SCHEMA_INVALID")
    assert payment_rows(gateway.engine) == []


def _second(tag, parent=None):
    def change(root):
        el = root.find(f".//{q(tag)}") if parent is None else root.find(f".//{q(parent)}/{q(tag)}")
        el.addnext(copy.deepcopy(el))
    return change


def _foreign_amount(root):
    a = amount_el(root)
    a.tag = "{urn:directlink:v2}Amount"


def _unqualified_amount(root):
    a = amount_el(root)
    plain = etree.fromstring(b'<Amount xmlns="" currency="CNY">100.00</Amount>')   # serialised with xmlns=""
    a.getparent().replace(a, plain)


def _foreign_element_in_payment(root):
    root.find(f".//{q('Purpose')}").addnext(etree.Element("{urn:evil}Amount", currency="CNY"))


def _foreign_attribute(root):
    amount_el(root).set("{urn:evil}currency", "USD")


def _xsi(root, el_path, **attrs):
    el = root.find(el_path)
    for k, v in attrs.items():
        el.set(f"{{{XSI}}}{k}", v)


DIFFERENTIALS = {   # case: change before signing (so only the schema can stop it)
    "two Headers": _second("Header"),
    "two Client elements": _second("Client"),
    "two ClientRef elements": _second("ClientRef"),
    "two DebtorAccount elements": _second("DebtorAccount"),
    "two Creditor elements": _second("Creditor"),
    "two creditor Accounts": _second("Account", "Creditor"),
    "two PaymentOrder operations": _second("PaymentOrder"),
    "Amount in a foreign namespace": _foreign_amount,
    "Amount without namespace": _unqualified_amount,
    "foreign-namespace element in Payment": _foreign_element_in_payment,
    "foreign-namespace attribute on Amount": _foreign_attribute,
    "xsi:type xs:string on Amount": lambda r: _xsi(r, f".//{q('Amount')}", type="xs:string"),
    "xsi:type PaymentOrder on a Payment": lambda r: _xsi(r, f".//{q('Payment')}", type="PaymentOrder"),
    "xsi:type unknown": lambda r: _xsi(r, f".//{q('Payment')}", type="evil:Anything"),
    "xsi:nil on Amount": lambda r: _xsi(r, f".//{q('Amount')}", nil="true"),
}


@pytest.mark.parametrize("case", DIFFERENTIALS)
def test_schema_differentials(maker, http, home, gateway, case):
    """XML-11: duplicates, foreign namespaces and xsi tricks in a correctly signed request:
    XML_SCHEMA_INVALID, so that no component ever has to choose between first-wins and last-wins."""
    root = _with_xs_prefix(envelope(pay()))
    DIFFERENTIALS[case](root)
    refused(gateway, http, home, maker.signer.sign(root), 400, "XML_SCHEMA_INVALID")


def _with_xs_prefix(root):
    """The same tree with xmlns:xs declared on the root, so xsi:type="xs:string" resolves."""
    fresh = etree.Element(root.tag, nsmap={None: xmlsafe.NS, "xs": "http://www.w3.org/2001/XMLSchema"},
                          attrib=dict(root.attrib))
    fresh.extend(list(root))
    return fresh


def test_schema_location_is_never_fetched(maker, http, home, gateway, listener):
    """xsi:schemaLocation pointing at the listener: the gateway validates against its local XSDs only."""
    url, hits = listener
    root = envelope(pay(ref="SL-1"))
    root.set(f"{{{XSI}}}schemaLocation", f"urn:directlink:v1 {url}/evil.xsd")
    answer, elapsed = post(http, home, maker.signer.sign(root))
    assert answer.status < 500 and elapsed < FAST
    time.sleep(0.05)
    assert hits == []


def _bom(b: bytes) -> bytes:
    return b"\xef\xbb\xbf" + b


ENCODINGS = {   # case: signed UTF-8 bytes (Purpose 货款) -> attack bytes; all XML_ENCODING_INVALID
    "UTF-8 BOM, GB18030 declared": lambda b: _bom(b.replace(b"encoding='UTF-8'", b"encoding='GB18030'")),
    "UTF-8 BOM, GBK declared": lambda b: _bom(b.replace(b"encoding='UTF-8'", b"encoding='GBK'")),
    "UTF-16LE BOM, UTF-8 declared": lambda b: b"\xff\xfe" + b,
    "UTF-32 BOM": lambda b: b"\x00\x00\xfe\xff" + b,
    "overlong '<' (2 bytes)": lambda b: b.replace("货款".encode(), b"\xc0\xbc"),
    "overlong '/' (3 bytes)": lambda b: b.replace("货款".encode(), b"\xe0\x80\xaf"),
    "overlong 4 bytes": lambda b: b.replace("货款".encode(), b"\xf0\x80\x80\xbc"),
    "UTF-8-encoded lone surrogate": lambda b: b.replace("货款".encode(), b"\xed\xa0\x80"),
    # GB18030 has no code for a surrogate (its 4-byte BMP block jumps from U+D7FF to U+E76C): what an encoder
    # with a lone surrogate could emit is one of these, and none of them may be read as something else.
    "GB18030 declared, UTF-8 surrogate bytes": lambda b: _gb18030(b, b"\xed\xa0\x80"),
    "GB18030 declared, sequence past the BMP block": lambda b: _gb18030(b, b"\x84\x31\xa5\x30"),
    "GB18030 declared, sequence past U+10FFFF": lambda b: _gb18030(b, b"\xe3\x32\x9a\x36"),
    "GB18030 declared, truncated 4-byte sequence": lambda b: _gb18030(b, b"\x81\x30"),
}


def _gb18030(b: bytes, raw: bytes) -> bytes:
    body = b.replace(b"encoding='UTF-8'", b"encoding='GB18030'")
    return body.replace("货款".encode(), "货款".encode("gb18030") + raw)


@pytest.mark.parametrize("case", ENCODINGS)
def test_encoding_attacks(maker, http, home, gateway, case):
    """XML-10: BOM against declaration, overlong UTF-8, surrogates, broken GB18030: never silently read."""
    body = ENCODINGS[case](maker.request(pay()))
    refused(gateway, http, home, body, 400, "XML_ENCODING_INVALID")


def test_character_reference_to_a_surrogate_in_gb18030(maker, http, home, gateway):
    """A lone surrogate written as &#xD800; in GB18030-declared text is not an XML character."""
    root = envelope(pay(purpose="货款X"))
    signed = maker.signer.sign(root).replace(b"encoding='UTF-8'", b"encoding='GB18030'")
    signed = signed.decode("utf-8").encode("gb18030").replace(b"X</Purpose>", b"&#xD800;</Purpose>")
    refused(gateway, http, home, signed, 400, "XML_MALFORMED")


def test_utf8_bom_with_matching_declaration_is_accepted(maker, http, home, gateway):
    """The control for the BOM cases: a UTF-8 BOM before a UTF-8 declaration is legitimate."""
    before = balances(gateway.engine)
    answer, _ = post(http, home, _bom(maker.request(pay(ref="BOM-1"))))
    assert outcomes(answer) == [("SETTLED", None)]
    assert balances(gateway.engine)[OPERATING] - before[OPERATING] == -10000


def test_gb18030_request_is_accepted(maker, http, home, gateway):
    """The control for the GB18030 cases: a correctly signed GB18030 document with 4-byte characters."""
    name = "𠀀记贸易"
    root = envelope(dl.payment_order(dl.payment("GB-1", OPERATING, "5.00", name, SUPPLIER, purpose="货款")))
    signed = maker.signer.sign(root)
    body = signed.replace(b"encoding='UTF-8'", b"encoding='GB18030'").decode("utf-8").encode("gb18030")
    answer, _ = post(http, home, body)
    assert outcomes(answer) == [("SETTLED", None)]
    assert payment_rows(gateway.engine)[0].creditor_name == name


# ---- regressions reduced from tests/scenarios/test_fuzz.py ---------------------------------------------------------

@pytest.mark.parametrize("as_of", ["1899-12-31", "0001-01-01"])
def test_balance_as_of_an_old_date_is_answered_within_the_schema(maker, http, home, gateway, as_of):
    """Found by test_fuzz.py::test_field_values_under_a_good_signature. An AsOf before 1901 is a valid
    xs:date; the bank zone (Asia/Shanghai) then had local mean time, +08:05:43, and the answer's
    Balance/AsOf came out as 1899-12-31T23:59:59+08:05:43, which is not an xs:dateTime (offsets are hh:mm)
    and fails the published Response XSD that clients validate against. post() checks every answer against
    that XSD; the balance of an account opened at init is zero on such a date."""
    query = dl.balance_query(OPERATING, as_of=dt.date.fromisoformat(as_of))
    answer, _ = post(http, home, maker.request(query))
    assert (answer.status, answer.code) == (200, "OK")
    [balance] = answer.body.iterfind(q("Balance"))
    assert text(balance.find(q("Booked"))) == "0.00"
    assert text(balance.find(q("AsOf"))).startswith(as_of)
