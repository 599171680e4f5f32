"""Signature and parser attacks (security.md sections 0, 1 and 8 A/B/H), each written to catch a regression
of one rule. tests/test_bad_input.py covers the basic code of each rule; this file covers the attack shapes
around them: the eight XML signature wrapping variants adapted to our envelope, signature exclusion and shape
games, algorithm and key substitution, cross-tenant signatures, comment/CDATA/character-reference games in
signed values, and the parser attack corpus (entities, DTDs, XInclude, PIs, depth, width, encodings).

For every attack: the spec code and HTTP status, an answer signed by the gateway and bound to our bytes, and
no change to the database (balances, holds, payments, entries, and for rejections before identity also the
remembered MessageIds). Where the XSD refuses a shape before the signature is looked at, the signature layer
is also asked on its own (signature_element, check_profile, verify) so that both guards are pinned.
"""
from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import hmac
import socket
import threading
import time
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from sqlalchemy import select

from conftest import OPERATING, SUPPLIER, snapshot
from domain.errors import GatewayError, SignatureRejected
from gateway import directory, keys
from gateway.protocol import client as dl, signing, xmlsafe
from gateway.protocol.messages import E
from gateway.storage.tables import accounts, entries, messages as message_log, payments
from gateway.protocol.xmlsafe import q, text

UTC = dt.timezone.utc
DSNS = signing.DS
DS = f"{{{DSNS}}}"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
EVIL = "9000.00"                 # the amount an attacker wants paid (the signed one is 100.00)
NO_FORMAT = "no.such.format.v0"  # no adapter will ever read it: the codes stay put as adapters arrive
FAST = 5.0                       # seconds: a hostile document must be answered at least this quickly

SHA1_DIGEST = "http://www.w3.org/2000/09/xmldsig#sha1"
SHA512_DIGEST = "http://www.w3.org/2001/04/xmlenc#sha512"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
RSA_PSS = "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1"
HMAC_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_11 = "http://www.w3.org/2006/12/xml-c14n11"
EXC_C14N_COMMENTS = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
XPATH_FILTER2 = "http://www.w3.org/2002/06/xmldsig-filter2"
XSLT = "http://www.w3.org/TR/1999/REC-xslt-19991116"
BASE64_TRANSFORM = "http://www.w3.org/2000/09/xmldsig#base64"
PROFILE = [signing.ENVELOPED, signing.EXC_C14N]


# ---- posting and the checks every attack gets ------------------------------------------------------------

def gateway_cert(home) -> x509.Certificate:
    return x509.load_pem_x509_certificate(home.path(home.gateway_cert).read_bytes())


def post(http, home, body: bytes) -> tuple[dl.Answer, float]:
    """Post raw bytes; the answer must be signed by the gateway and quote RequestDigest of exactly them."""
    started = time.perf_counter()
    resp = http.post("/v1/messages", content=body, headers={"Content-Type": "application/xml"})
    elapsed = time.perf_counter() - started
    assert resp.status_code != 500, resp.content[:2000]
    answer = dl.verify_answer(resp.status_code, resp.content, gateway_cert(home), signing.digest_b64(body))
    signed = signing.verify(etree.fromstring(resp.content), gateway_cert(home)).signed
    assert text(signed.find(f"{q('Header')}/{q('RequestDigest')}")) == signing.digest_b64(body)
    try:   # the answer conforms to the published Response XSD (clients validate against it)
        xmlsafe.validate(etree.fromstring(resp.content))
    except GatewayError as err:
        pytest.fail(f"the gateway's answer fails the Response XSD: {err.detail}")
    return answer, elapsed


def refused(gateway, http, home, body: bytes, status: int, code: str | set[str], *,
            verified: bool = False) -> dl.Answer:
    """A signed rejection with this status and code (or one of these codes, where the spec allows either), in
    FAST seconds, and nothing changed. verified=False: refused before the signer was known, so not even the
    MessageId may be remembered."""
    before = snapshot(gateway.engine)
    answer, elapsed = post(http, home, body)
    codes = {code} if isinstance(code, str) else code
    assert answer.status == status and answer.code in codes, (answer.status, answer.code, answer.detail)
    assert answer.body is None
    assert elapsed < FAST, f"{elapsed:.1f} s to refuse"
    after = snapshot(gateway.engine)
    if verified:
        before.pop("messages"), after.pop("messages")
    assert after == before
    return answer


def signature_layer_refuses(body: bytes, cert: x509.Certificate, code: str = "SIG_INVALID") -> None:
    """Ask the signature layer alone (as if the XSD had let the shape through): it must refuse too."""
    root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    with pytest.raises(SignatureRejected) as err:
        sig = signing.signature_element(root)
        signing.check_profile(sig)
        signing.verify(root, cert)
    assert err.value.code == code, err.value.detail


def balances(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(accounts.c.number, accounts.c.booked)).all())


def payment_rows(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(payments)).all()


def outcomes(answer: dl.Answer) -> list[tuple[str, str | None]]:
    assert (answer.status, answer.code) == (200, "OK"), answer.detail
    result = []
    for s in answer.body.iterfind(q("PaymentStatus")):
        reason = s.find(q("Reason"))
        result.append((text(s.find(q("State"))), None if reason is None else reason.get("code")))
    return result


@pytest.fixture
def listener():
    """A TCP port on 127.0.0.1 that counts connections: nothing the gateway parses may ever reach it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    hits, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            hits.append(conn.recv(1024))
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", hits
    stop.set()
    thread.join()
    server.close()


# ---- building requests -----------------------------------------------------------------------------------

def envelope(op, *, client="DEMO", operator="maker", message_id=None) -> etree._Element:
    return E.Request(E.Header(E.MessageId(message_id or dl.new_message_id()),
                              E.Created(dt.datetime.now(UTC).isoformat(timespec="seconds")),
                              E.Client(client), E.Operator(operator)), op, version="1")


def pay(amount="100.00", *, ref="ATK-1", creditor=SUPPLIER, debtor=OPERATING, **kw):
    return dl.payment_order(dl.payment(ref, debtor, amount, "ACME", creditor, **kw))


def tree(body: bytes) -> etree._Element:
    return etree.fromstring(body)


def dump(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def sig(root):
    return root.find(f"{DS}Signature")


def amount_el(el):
    return el.find(f".//{q('Amount')}")


def altered(el, amount=EVIL):
    """A deep copy of `el` with every Amount set to the attacker's value."""
    evil = copy.deepcopy(el)
    for a in evil.iter(q("Amount")):
        a.text = amount
    return evil


def ds(name, *children, **attrs):
    """A ds: element; a str child becomes its text."""
    el = etree.Element(f"{DS}{name}", nsmap={"ds": DSNS}, **attrs)
    for child in children:
        if isinstance(child, str):
            el.text = child
        else:
            el.append(child)
    return el


def after_declaration(body: bytes, insert: bytes) -> bytes:
    end = body.index(b"?>") + 2
    return body[:end] + insert + body[end:]


# ---- a hand-made signature: every part of SignedInfo under the test's control ------------------------------

@dataclass(frozen=True)
class Ref:
    uri: str = ""
    transforms: tuple[str, ...] = tuple(PROFILE)
    digest: str = signing.SHA256


DIGESTS = {signing.SHA256: hashlib.sha256, SHA1_DIGEST: hashlib.sha1, SHA512_DIGEST: hashlib.sha512}
HASHES = {signing.RSA_SHA256: hashes.SHA256, RSA_SHA1: hashes.SHA1, RSA_SHA512: hashes.SHA512,
          RSA_PSS: hashes.SHA256}


def _c14n(el, exclusive=True) -> bytes:
    return etree.tostring(el, method="c14n", exclusive=exclusive, with_comments=False)


def forge(root, key, cert_pem: bytes | None = None, *, refs=(Ref(),), c14n=signing.EXC_C14N,
          method=signing.RSA_SHA256, key_value=False, hmac_key: bytes | None = None, objects=()) -> bytes:
    """Sign `root` (appending a ds:Signature) with a cryptographically real signature of any shape: the
    digests are computed over what each Reference names, SignedInfo is signed with `key`."""
    info = ds("SignedInfo", ds("CanonicalizationMethod", Algorithm=c14n),
              ds("SignatureMethod", Algorithm=method))
    signature = ds("Signature", info, ds("SignatureValue"))
    key_info = ds("KeyInfo")
    if cert_pem is not None:
        der = x509.load_pem_x509_certificate(cert_pem).public_bytes(Encoding.DER)
        key_info.append(ds("X509Data", ds("X509Certificate", base64.b64encode(der).decode())))
    if key_value:
        numbers = key.public_key().public_numbers()
        b64 = lambda n: base64.b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).decode()  # noqa: E731
        key_info.append(ds("KeyValue", ds("RSAKeyValue", ds("Modulus", b64(numbers.n)),
                                          ds("Exponent", b64(numbers.e)))))
    if len(key_info):
        signature.append(key_info)
    signature.extend(objects)
    root.append(signature)
    for ref in refs:
        if ref.uri == "":
            target = copy.deepcopy(root)
            target.remove(target[-1])
        else:
            target = root.xpath("//*[@Id=$id]", id=ref.uri[1:])[0]
        data = _c14n(target, exclusive=signing.EXC_C14N in ref.transforms or not ref.transforms)
        node = ds("Reference", ds("Transforms", *[ds("Transform", Algorithm=t) for t in ref.transforms]),
                  ds("DigestMethod", Algorithm=ref.digest),
                  ds("DigestValue", base64.b64encode(DIGESTS[ref.digest](data).digest()).decode()),
                  URI=ref.uri)
        if not ref.transforms:
            node.remove(node[0])
        info.append(node)
    # What the verifier canonicalises: SignedInfo of the signature serialised on its own.
    standalone = etree.fromstring(etree.tostring(signature)).find(f"{DS}SignedInfo")
    signed_info = _c14n(standalone, exclusive=c14n.startswith(signing.EXC_C14N))
    if method == HMAC_SHA256:
        value = hmac.new(hmac_key, signed_info, hashlib.sha256).digest()
    elif method == RSA_PSS:
        value = key.sign(signed_info, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    else:
        value = key.sign(signed_info, padding.PKCS1v15(), HASHES[method]())
    signature.find(f"{DS}SignatureValue").text = base64.b64encode(value).decode()
    return dump(root)


_KEYS: dict[str, object] = {}


def attacker_key(name="attacker"):
    """RSA keys are slow to make: one per name for the whole run."""
    if name not in _KEYS:
        _KEYS[name] = keys.new_key()
    return _KEYS[name]


def clone_certificate(victim: x509.Certificate, key) -> x509.Certificate:
    """Certificate cloning: the victim's subject, issuer, serial, validity and extensions, another key."""
    builder = (x509.CertificateBuilder().subject_name(victim.subject).issuer_name(victim.issuer)
               .public_key(key.public_key()).serial_number(victim.serial_number)
               .not_valid_before(victim.not_valid_before_utc).not_valid_after(victim.not_valid_after_utc))
    for ext in victim.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    return builder.sign(key, hashes.SHA256())


# ---- the control: the hand-made signature is accepted when it follows the profile -------------------------

def test_forged_signature_in_the_profile_is_accepted(maker, http, home, gateway):
    """Proves forge() makes real signatures: with the profile's shape and the maker's key it is simply a good
    request. Every forge() attack below is therefore stopped by the rule it breaks, not by a bad signature."""
    body = forge(envelope(pay(ref="CTL-1")), maker.signer.key, maker.signer.cert_pem)
    before = balances(gateway.engine)
    answer, _ = post(http, home, body)
    assert outcomes(answer) == [("SETTLED", None)]
    after = balances(gateway.engine)
    assert after[OPERATING] - before[OPERATING] == -10000 and after[SUPPLIER] - before[SUPPLIER] == 10000


# ---- XML signature wrapping (security.md 1.1, SIG-01..05) -------------------------------------------------

def _xsw1(root):
    """XSW1: the operation altered in place, an unaltered clone of the Request inside ds:Signature."""
    clone = copy.deepcopy(root)
    clone.remove(sig(clone))
    amount_el(root).text = EVIL
    sig(root).append(clone)


def _xsw2(root):
    """XSW2: the operation altered in place, an unaltered clone of the Request just before ds:Signature."""
    clone = copy.deepcopy(root)
    clone.remove(sig(clone))
    amount_el(root).text = EVIL
    sig(root).addprevious(clone)


def _altered_operation_before(root):
    """XSW3: an altered copy of the signed operation inserted before it."""
    op = root.find(q("PaymentOrder"))
    op.addprevious(altered(op))


def _altered_operation_after(root):
    """XSW5-like: an altered copy of the signed operation after it, before the signature."""
    op = root.find(q("PaymentOrder"))
    op.addnext(altered(op))


def _altered_payment_before(root):
    """XSW3 inside the operation: an altered Payment before the signed one (PaymentOrder allows 1000)."""
    p = root.find(f"{q('PaymentOrder')}/{q('Payment')}")
    evil = altered(p)
    evil.find(q("ClientRef")).text = "ATK-EVIL"
    p.addprevious(evil)


def _altered_payment_after(root):
    p = root.find(f"{q('PaymentOrder')}/{q('Payment')}")
    evil = altered(p)
    evil.find(q("ClientRef")).text = "ATK-EVIL"
    p.addnext(evil)


def _xsw4(root):
    """XSW4: the signed operation wrapped inside an altered copy of itself."""
    op = root.find(q("PaymentOrder"))
    evil = altered(op)
    op.addprevious(evil)
    evil.append(op)


def _xsw5(root):
    """XSW5: the signed operation altered, an unaltered clone appended to the root after the signature."""
    op = root.find(q("PaymentOrder"))
    clone = copy.deepcopy(op)
    amount_el(op).text = EVIL
    root.append(clone)


def _xsw6(root):
    """XSW6: the signed operation altered, an unaltered clone inside ds:Signature."""
    op = root.find(q("PaymentOrder"))
    clone = copy.deepcopy(op)
    amount_el(op).text = EVIL
    sig(root).append(clone)


def _xsw7(root):
    """XSW7: the original operation moved under an Extensions element, an altered copy in its place."""
    op = root.find(q("PaymentOrder"))
    op.addprevious(altered(op))
    ext = E.Extensions()
    sig(root).addprevious(ext)
    ext.append(op)


def _xsw7_ds_object(root):
    """XSW7 with the extension in the ds namespace (the XSD lets one ds:* element through)."""
    op = root.find(q("PaymentOrder"))
    op.addprevious(altered(op))
    sig(root).addprevious(ds("Object", op))


def _xsw8(root):
    """XSW8: the operation altered in place, the unaltered original hidden in a ds:Object in the signature."""
    op = root.find(q("PaymentOrder"))
    clone = copy.deepcopy(op)
    amount_el(op).text = EVIL
    sig(root).append(ds("Object", clone, Id="op"))


def _balance_query_plus_unsigned_order(root):
    """A correctly signed BalanceQuery with an unsigned PaymentOrder added after it."""
    root.find(q("BalanceQuery")).addnext(pay(EVIL, ref="ATK-EVIL"))


XSW = {   # case: (operation that is signed, change after signing, expected code)
    "XSW1 clone inside Signature": (pay, _xsw1, "SIG_INVALID"),
    "XSW2 clone before Signature": (pay, _xsw2, "XML_SCHEMA_INVALID"),
    "XSW3 altered operation before": (pay, _altered_operation_before, "XML_SCHEMA_INVALID"),
    "XSW3 altered Payment before": (pay, _altered_payment_before, "SIG_INVALID"),
    "XSW4 signed operation inside altered copy": (pay, _xsw4, "XML_SCHEMA_INVALID"),
    "XSW5 altered operation after": (pay, _altered_operation_after, "XML_SCHEMA_INVALID"),
    "XSW5 altered Payment after": (pay, _altered_payment_after, "SIG_INVALID"),
    "XSW5 clone after Signature": (pay, _xsw5, "XML_SCHEMA_INVALID"),
    "XSW6 clone inside Signature": (pay, _xsw6, "SIG_INVALID"),
    "XSW7 original under Extensions": (pay, _xsw7, "XML_SCHEMA_INVALID"),
    "XSW7 original under ds:Object sibling": (pay, _xsw7_ds_object, "XML_SCHEMA_INVALID"),
    "XSW8 original inside ds:Object": (pay, _xsw8, "SIG_INVALID"),
    "BalanceQuery signed, PaymentOrder added": (lambda: dl.balance_query(OPERATING),
                                                _balance_query_plus_unsigned_order, "XML_SCHEMA_INVALID"),
}


@pytest.mark.parametrize("case", XSW)
def test_signature_wrapping(maker, http, home, gateway, case):
    """The eight classic wrapping variants adapted to one signed Request: the gateway never pays the altered
    amount (no payment, balances unchanged), whichever guard (XSD or signature) stops it first."""
    make, change, code = XSW[case]
    root = tree(maker.request(make()))
    change(root)
    body = dump(root)
    refused(gateway, http, home, body, 401 if code.startswith("SIG") else 400, code)
    assert payment_rows(gateway.engine) == []
    signature_layer_refuses(body, maker.signer.certificate)


def test_evil_request_wrapping_the_signed_request(maker, http, home, gateway):
    """An evil root Request (altered order, no signature of its own) with the original signed Request, its
    signature inside, as a child: the XSD refuses the extra element, and the signature layer alone refuses a
    ds:Signature that is not a child of the root (location pinned to "./")."""
    original = tree(maker.request(pay()))
    evil = envelope(pay(EVIL))
    evil.append(original)
    body = dump(evil)
    refused(gateway, http, home, body, 400, "XML_SCHEMA_INVALID")
    signature_layer_refuses(body, maker.signer.certificate)


def test_evil_request_hiding_the_signed_request_in_a_document(maker, http, home, gateway):
    """XSW7 through the one element the XSD does not look inside (Document, processContents=skip): the evil
    root passes the XSD, and only the signature-location rule stands between it and execution."""
    original = tree(maker.request(pay()))
    evil = envelope(E.DocumentSubmit(E.Document(original, format=NO_FORMAT, encoding="xml")))
    refused(gateway, http, home, dump(evil), 401, "SIG_INVALID")


def test_signature_moved_to_an_evil_root(maker, http, home, gateway):
    """The signature of a good request moved to a new root carrying an altered order; the original (now
    unsigned) kept inside ds:Object: the digest over the evil root does not match."""
    original = tree(maker.request(pay()))
    signature = sig(original)
    original.remove(signature)
    evil = envelope(pay(EVIL), message_id=text(original.find(f"{q('Header')}/{q('MessageId')}")))
    evil.append(signature)
    signature.append(ds("Object", original))
    refused(gateway, http, home, dump(evil), 401, "SIG_INVALID")


def test_duplicate_id_reference(maker, http, home, gateway):
    """Duplicate Id (XSW8/SIG-03): a Reference URI="#op" to an operation carrying Id="op", and a second,
    altered element with the same Id in ds:Object. The XSD allows no Id attribute; the profile allows no
    URI but "" (checked alone below)."""
    root = envelope(pay())
    root.find(q("PaymentOrder")).set("Id", "op")
    body = forge(root, maker.signer.key, maker.signer.cert_pem, refs=(Ref("#op"),))
    evil = tree(body)
    sig(evil).append(ds("Object", altered(evil.find(q("PaymentOrder"))), Id="op"))
    body = dump(evil)
    refused(gateway, http, home, body, 400, "XML_SCHEMA_INVALID")
    signature_layer_refuses(body, maker.signer.certificate)


def test_duplicate_id_inside_the_signature(maker, http, home, gateway):
    """The Id games moved where the XSD does not look: a real signature over ds:Object Id="obj" (holding a
    copy of the operation), plus a second ds:Object with the same Id and an altered copy."""
    root = envelope(pay())
    obj = ds("Object", copy.deepcopy(root.find(q("PaymentOrder"))), Id="obj")
    body = forge(root, maker.signer.key, maker.signer.cert_pem, refs=(Ref("#obj"),), objects=[obj])
    evil = tree(body)
    sig(evil).append(ds("Object", altered(evil.find(q("PaymentOrder"))), Id="obj"))
    refused(gateway, http, home, dump(evil), 401, "SIG_INVALID")
    refused(gateway, http, home, body, 401, "SIG_INVALID")   # also without the duplicate


def test_unsigned_content_in_ds_object_is_never_read(maker, http, home, gateway):
    """A good request with an altered copy of its operation added in a ds:Object after signing: the Object
    is outside what the signature covers, so the request is either refused or executed exactly as signed."""
    root = tree(maker.request(pay(ref="OBJ-1")))
    sig(root).append(ds("Object", altered(root.find(q("PaymentOrder")))))
    before = balances(gateway.engine)
    answer, _ = post(http, home, dump(root))
    after = balances(gateway.engine)
    if answer.code == "OK":
        assert outcomes(answer) == [("SETTLED", None)]
        assert after[OPERATING] - before[OPERATING] == -10000
        assert [r.amount for r in payment_rows(gateway.engine)] == [10000]
    else:
        assert (answer.status, answer.code) == (401, "SIG_INVALID")
        assert after == before and payment_rows(gateway.engine) == []


# ---- signature exclusion and shape (SIG-07/08/13/05) ------------------------------------------------------

def _empty_signature(root):
    s = sig(root)
    for child in list(s):
        s.remove(child)


def _no_signed_info(root):
    sig(root).remove(sig(root).find(f"{DS}SignedInfo"))


def _no_signature_value(root):
    sig(root).remove(sig(root).find(f"{DS}SignatureValue"))


def _empty_signature_value(root):
    sig(root).find(f"{DS}SignatureValue").text = ""


def _signature_in_dsig11_namespace(root):
    sig(root).tag = "{http://www.w3.org/2009/xmldsig11#}Signature"


def _signature_in_other_namespace(root):
    s = sig(root)
    s.getparent().replace(s, etree.fromstring(etree.tostring(s).replace(DSNS.encode(), b"urn:evil:dsig")))


def _second_signature_at_root(root):
    sig(root).addnext(copy.deepcopy(sig(root)))


def _second_signature_inside_first(root):
    sig(root).append(ds("Object", copy.deepcopy(sig(root))))


def _signature_not_last(root):
    s = sig(root)
    root.remove(s)
    root.insert(1, s)


SHAPES = {   # case: (change after signing, code)
    "Signature emptied": (_empty_signature, "SIG_INVALID"),
    "SignedInfo removed": (_no_signed_info, "SIG_INVALID"),
    "SignatureValue removed": (_no_signature_value, "SIG_INVALID"),
    "SignatureValue empty": (_empty_signature_value, "SIG_INVALID"),
    "Signature in the xmldsig11 namespace": (_signature_in_dsig11_namespace, "XML_SCHEMA_INVALID"),
    "Signature in a look-alike namespace": (_signature_in_other_namespace, "XML_SCHEMA_INVALID"),
    "second Signature at the root": (_second_signature_at_root, "XML_SCHEMA_INVALID"),
    "second Signature inside the first": (_second_signature_inside_first, "SIG_INVALID"),
    "Signature before the operation": (_signature_not_last, "XML_SCHEMA_INVALID"),
}
LAYER_CODE = {"Signature in the xmldsig11 namespace": "SIG_MISSING", "Signature in a look-alike namespace":
              "SIG_MISSING"}


@pytest.mark.parametrize("case", SHAPES)
def test_signature_shape(maker, http, home, gateway, case):
    """Signature exclusion (emptied, parts removed, moved to another namespace) and shape violations."""
    change, code = SHAPES[case]
    root = tree(maker.request(pay()))
    change(root)
    body = dump(root)
    refused(gateway, http, home, body, 401 if code.startswith("SIG") else 400, code)
    signature_layer_refuses(body, maker.signer.certificate, LAYER_CODE.get(case, "SIG_INVALID"))


def test_reference_to_a_sub_element_with_an_id(maker, http, home, gateway):
    """A real signature whose one Reference is URI="#po", the PaymentOrder carrying Id="po": the Header
    (Client, Operator, MessageId, Created) is outside the signature (SIG-05 partial reference)."""
    root = envelope(pay())
    root.find(q("PaymentOrder")).set("Id", "po")
    body = forge(root, maker.signer.key, maker.signer.cert_pem, refs=(Ref("#po"),))
    refused(gateway, http, home, body, 400, "XML_SCHEMA_INVALID")
    signature_layer_refuses(body, maker.signer.certificate)


def test_reference_to_the_header_through_ds_object(maker, http, home, gateway):
    """The same partial reference in a shape the XSD lets through: the signature covers only a ds:Object."""
    root = envelope(pay())
    obj = ds("Object", "covered", Id="hdr")
    refused(gateway, http, home, forge(root, maker.signer.key, maker.signer.cert_pem, refs=(Ref("#hdr"),),
                                       objects=[obj]), 401, "SIG_INVALID")


@pytest.mark.parametrize("refs", [(Ref(), Ref()), (Ref(), Ref("#obj"))], ids=["twice URI=''", "'' and #obj"])
def test_more_than_one_reference(maker, http, home, gateway, refs):
    """SIG-13: a real signature with two References (each digest correct) is outside the profile."""
    objects = [ds("Object", "x", Id="obj")] if len(refs) > 1 and refs[1].uri else []
    body = forge(envelope(pay()), maker.signer.key, maker.signer.cert_pem, refs=refs, objects=objects)
    refused(gateway, http, home, body, 401, "SIG_INVALID")


# ---- algorithms and transforms (SIG-11/12/16) -------------------------------------------------------------

ALGORITHMS = {   # case: forge() keyword arguments; every one is a real signature by the maker's key
    "XSLT transform": dict(refs=(Ref(transforms=(signing.ENVELOPED, XSLT, signing.EXC_C14N)),)),
    "XPath transform instead of enveloped": dict(refs=(Ref(transforms=(XPATH, signing.EXC_C14N)),)),
    "XPath Filter 2.0 transform": dict(refs=(Ref(transforms=(signing.ENVELOPED, XPATH_FILTER2,
                                                              signing.EXC_C14N)),)),
    "base64 transform": dict(refs=(Ref(transforms=(signing.ENVELOPED, BASE64_TRANSFORM, signing.EXC_C14N)),)),
    "transforms reversed": dict(refs=(Ref(transforms=(signing.EXC_C14N, signing.ENVELOPED)),)),
    "enveloped only": dict(refs=(Ref(transforms=(signing.ENVELOPED,)),)),
    "no Transforms": dict(refs=(Ref(transforms=()),)),
    "50 transforms": dict(refs=(Ref(transforms=(signing.ENVELOPED,) + (signing.EXC_C14N,) * 50),)),
    "SHA-1 digest": dict(refs=(Ref(digest=SHA1_DIGEST),)),
    "SHA-512 digest": dict(refs=(Ref(digest=SHA512_DIGEST),)),
    "RSA-SHA1": dict(method=RSA_SHA1),
    "RSA-SHA512": dict(method=RSA_SHA512),
    "RSA-PSS": dict(method=RSA_PSS),
    "inclusive C14N 1.0": dict(c14n=C14N_10, refs=(Ref(transforms=(signing.ENVELOPED, C14N_10)),)),
    "inclusive C14N 1.0 for SignedInfo only": dict(c14n=C14N_10),
    "exclusive C14N with comments": dict(c14n=EXC_C14N_COMMENTS,
                                         refs=(Ref(transforms=(signing.ENVELOPED, EXC_C14N_COMMENTS)),)),
}


@pytest.mark.parametrize("case", ALGORITHMS)
def test_algorithm_forbidden(maker, http, home, gateway, case):
    """Anything but enveloped + exc-C14N, SHA-256 and RSA/ECDSA-SHA256 is SIG_ALGORITHM_FORBIDDEN, checked
    before any cryptography (so an XSLT or XPath transform is never run)."""
    body = forge(envelope(pay()), maker.signer.key, maker.signer.cert_pem, **ALGORITHMS[case])
    refused(gateway, http, home, body, 401, "SIG_ALGORITHM_FORBIDDEN")


def test_hmac_keyed_with_the_public_certificate(maker, http, home, gateway):
    """Algorithm confusion (GHSA-6vx8-pcwv-xhf4): HMAC-SHA256 keyed with the maker's public certificate PEM,
    which anyone has, with that certificate in KeyInfo."""
    body = forge(envelope(pay(EVIL)), None, maker.signer.cert_pem, method=HMAC_SHA256,
                 hmac_key=maker.signer.cert_pem)
    refused(gateway, http, home, body, 401, "SIG_ALGORITHM_FORBIDDEN")


# ---- keys and identity (SIG-09/10/17) ---------------------------------------------------------------------

def test_cloned_certificate_in_keyinfo(maker, http, home, gateway):
    """Certificate cloning: the maker's subject, issuer, serial, validity and extensions with the attacker's
    key: only the pinned certificate (by fingerprint) is trusted, never what KeyInfo looks like."""
    key = attacker_key()
    clone = clone_certificate(maker.signer.certificate, key)
    assert clone.subject == maker.signer.certificate.subject
    assert clone.serial_number == maker.signer.certificate.serial_number
    body = forge(envelope(pay(EVIL)), key, keys.cert_pem(clone))
    refused(gateway, http, home, body, 401, "CERT_UNKNOWN")


def test_keyvalue_only_keyinfo_with_an_attacker_key(maker, http, home, gateway):
    """KeyInfo carries only an RSAKeyValue, the attacker's: no registered certificate verifies it."""
    body = forge(envelope(pay(EVIL)), attacker_key(), None, key_value=True)
    assert b"X509Certificate" not in body and b"RSAKeyValue" in body
    refused(gateway, http, home, body, 401, "SIG_INVALID")


def test_maker_certificate_in_keyinfo_but_attacker_key(maker, http, home, gateway):
    """KeyInfo names the real, registered maker certificate (and an attacker KeyValue): the attacker signs."""
    body = forge(envelope(pay(EVIL)), attacker_key(), maker.signer.cert_pem, key_value=True)
    refused(gateway, http, home, body, 401, "SIG_INVALID")


def test_no_keyinfo_with_an_attacker_key(maker, http, home, gateway):
    """No KeyInfo at all, so the gateway tries the maker's pinned certificates: none verifies."""
    body = forge(envelope(pay(EVIL)), attacker_key(), None)
    refused(gateway, http, home, body, 401, "SIG_INVALID")


def test_retrieval_method_in_keyinfo_is_never_followed(maker, http, home, gateway, listener):
    """KeyInfo holding only a RetrievalMethod that points at the listener (SIG-16): the key is never fetched;
    trust comes from the pinned certificate, so the maker's otherwise good request is executed as signed."""
    url, hits = listener
    root = envelope(pay(ref="RM-1"))
    body = forge(root, maker.signer.key, None)
    root = tree(body)
    sig(root).append(ds("KeyInfo", ds("RetrievalMethod", URI=f"{url}/key",
                                      Type="http://www.w3.org/2000/09/xmldsig#X509Data")))
    answer, _ = post(http, home, dump(root))
    assert answer.code in ("OK", "SIG_INVALID"), answer.detail
    if answer.code == "OK":
        assert outcomes(answer) == [("SETTLED", None)]
    time.sleep(0.05)
    assert hits == []


BETA_ACCOUNT = "6222000000007001"


@pytest.fixture
def beta(gateway, home, http, clock):
    """A second client, BETA, with an account, an operator named maker (like DEMO's) and its own key."""
    key = attacker_key("beta")
    cert = keys.self_signed(key, "BETA/maker", "Beta Industrial Ltd.")
    now = clock()
    with gateway.engine.begin() as conn:
        directory.upsert_client(conn, "BETA", "Beta Industrial Ltd.", now)
        directory.open_account(conn, BETA_ACCOUNT, "BETA", "Beta operating", "CNY", "50000.00", now,
                               now.date())
        directory.upsert_operator(conn, "BETA", "maker", "Beta clerk", now)
        directory.register_certificate(conn, "BETA", "maker", keys.cert_pem(cert), now)
        directory.set_grant(conn, "BETA", "maker", BETA_ACCOUNT, {"query", "pay"}, None, None, now)
    return dl.Client("http://testserver", "BETA", "maker", keys.key_pem(key), keys.cert_pem(cert),
                     home.path(home.gateway_cert).read_bytes(), http=http)


def test_other_clients_operator_signs_for_this_client(beta, http, home, gateway):
    """BETA's maker (a valid, registered signature) claims Client DEMO / Operator maker to debit DEMO."""
    body = beta.signer.sign(envelope(pay(EVIL)))
    refused(gateway, http, home, body, 401, "CERT_UNKNOWN")


def test_other_clients_operator_signs_for_this_client_without_keyinfo(beta, http, home, gateway):
    """The same without KeyInfo, so the gateway must try DEMO/maker's pinned certificates: none verifies."""
    body = forge(envelope(pay(EVIL)), beta.signer.key, None)
    refused(gateway, http, home, body, 401, "SIG_INVALID")


def test_other_client_pays_from_this_clients_account(beta, http, home, gateway):
    """BETA's maker signs as itself (identity is good) but debits DEMO's operating account: the message is
    answered (the MessageId is BETA's to use up) and the payment is refused without a trace."""
    before = snapshot(gateway.engine)
    answer, _ = post(http, home, beta.request(pay(EVIL, creditor=BETA_ACCOUNT)))
    assert outcomes(answer) == [("REJECTED", "ACCOUNT_INVALID")]
    after = snapshot(gateway.engine)
    assert after["messages"] == before["messages"] + 1
    before.pop("messages"), after.pop("messages")
    assert after == before


def test_other_client_queries_this_clients_balance(beta, http, home, gateway):
    """A verified BETA request for DEMO's balance is NOT_FOUND, as for an account that does not exist."""
    refused(gateway, http, home, beta.request(dl.balance_query(OPERATING)), 404, "NOT_FOUND", verified=True)


@pytest.mark.parametrize("client,operator", [("demo", "maker"), ("DEMO", "Maker"), ("DEMO", "MAKER")])
def test_identity_is_not_case_folded(maker, http, home, gateway, client, operator):
    """The maker signs as demo/maker or DEMO/Maker: identities are exact (no case-folding collation on either
    database), so no certificate is registered for the claimed one."""
    body = maker.signer.sign(envelope(pay(EVIL), client=client, operator=operator))
    refused(gateway, http, home, body, 401, "CERT_UNKNOWN")


def test_signed_response_posted_back_as_a_request(maker, http, home, gateway):
    """An answer of the gateway (a validly signed Response) replayed to it as if it were a request."""
    answer = maker.call(dl.balance_query(OPERATING))
    assert answer.code == "OK"
    refused(gateway, http, home, answer.raw, 400, "XML_SCHEMA_INVALID")


def test_signed_response_renamed_to_request(maker, http, home, gateway):
    """The gateway's own ds:Signature (from a Response) put under a Request: the gateway's certificate in
    KeyInfo is registered for no operator, and without KeyInfo the signature matches no pinned certificate."""
    answer = maker.call(dl.balance_query(OPERATING))
    root = tree(answer.raw)
    gw_sig = sig(root)
    forged = envelope(dl.balance_query(OPERATING))
    forged.append(gw_sig)
    refused(gateway, http, home, dump(forged), 401, "CERT_UNKNOWN")
    gw_sig.remove(gw_sig.find(f"{DS}KeyInfo"))
    refused(gateway, http, home, dump(forged), 401, "SIG_INVALID")


def _header(root, name, value):
    root.find(f"{q('Header')}/{q(name)}").text = value


HEADER_CHANGES = {   # case: (element, new value, strip KeyInfo, code)
    "Client changed": ("Client", "ACME", False, "CERT_UNKNOWN"),
    "Operator changed to checker": ("Operator", "checker", False, "CERT_UNKNOWN"),
    "Operator changed to checker, no KeyInfo": ("Operator", "checker", True, "SIG_INVALID"),
    "MessageId changed": ("MessageId", "ERP-EVIL-1", False, "SIG_INVALID"),
    "Created changed": ("Created", None, False, "SIG_INVALID"),
}


@pytest.mark.parametrize("case", HEADER_CHANGES)
def test_header_changed_after_signing(maker, http, home, gateway, case):
    """The Header is inside the signature: changing who, which message or when after signing never works."""
    name, value, strip, code = HEADER_CHANGES[case]
    root = tree(maker.request(pay()))
    if value is None:
        value = (dt.datetime.now(UTC) + dt.timedelta(seconds=60)).isoformat(timespec="seconds")
    _header(root, name, value)
    if strip:
        sig(root).remove(sig(root).find(f"{DS}KeyInfo"))
    refused(gateway, http, home, dump(root), 401, code)


# ---- comments, CDATA and character references inside signed values (SIG-06) -------------------------------

def _inject(body: bytes, pairs) -> bytes:
    for old, new in pairs:
        assert body.count(old) == 1, old
        body = body.replace(old, new)
    return body


def _accepted_whole(gateway, http, home, body, *, ref, amount_minor, debtor=OPERATING, creditor=SUPPLIER,
                    name="ACME", purpose="货款"):
    """The request verifies, is executed, and every value is the whole signed one (never a truncated one)."""
    before = balances(gateway.engine)
    answer, _ = post(http, home, body)
    assert outcomes(answer) == [("SETTLED", None)]
    [row] = payment_rows(gateway.engine)
    assert (row.client_ref, row.debtor_account, row.amount, row.creditor_account, row.creditor_name,
            row.purpose) == (ref, debtor, amount_minor, creditor, name, purpose)
    after = balances(gateway.engine)
    assert after[debtor] - before[debtor] == -amount_minor
    assert after[creditor] - before[creditor] == amount_minor
    with gateway.engine.connect() as conn:
        legs = {r.direction: r for r in conn.execute(select(entries).where(entries.c.payment_id == row.id))}
    debit = legs["DBIT"]
    assert (debit.account, debit.amount, debit.client_ref, debit.counterparty_account,
            debit.counterparty_name) == (debtor, amount_minor, ref, creditor, name)
    assert (legs["CRDT"].account, legs["CRDT"].amount, legs["CRDT"].counterparty_account) == (
        creditor, amount_minor, debtor)
    return answer, row


def _order_digest_as_signed(signed_body: bytes) -> str:
    p = tree(signed_body).find(f"{q('PaymentOrder')}/{q('Payment')}")
    return signing.digest_b64(_c14n(p))


def test_comments_in_client_ref_account_and_amount(maker, http, home, gateway):
    """Comments split ClientRef, DebtorAccount, creditor Account and Amount; exc-C14N drops comments so the
    signature still verifies, and the gateway must book 1234.56 from 6222000000000001 under CMT-REF-0001."""
    signed = maker.request(pay("1234.56", ref="CMT-REF-0001"))
    body = _inject(signed, [(b">CMT-REF-0001<", b">CMT<!---->-REF-<!-- x -->0001<"),
                            (f">{OPERATING}<".encode(), f">6222<!---->{OPERATING[4:]}<".encode()),
                            (f">{SUPPLIER}<".encode(), f">{SUPPLIER[:7]}<!-- -->{SUPPLIER[7:]}<".encode()),
                            (b">1234.56<", b">1<!---->234<!---->.56<")])
    answer, row = _accepted_whole(gateway, http, home, body, ref="CMT-REF-0001", amount_minor=123456)
    digest = text(answer.body.find(f"{q('PaymentStatus')}/{q('OrderDigest')}"))
    assert digest == row.order_digest == _order_digest_as_signed(signed)


def test_comment_that_would_leave_a_smaller_amount(maker, http, home, gateway):
    """`9<!---->0.00`: a naive .text reads 9, the signed value is 90.00."""
    body = _inject(maker.request(pay("90.00", ref="CMT-2")), [(b">90.00<", b">9<!---->0.00<")])
    _accepted_whole(gateway, http, home, body, ref="CMT-2", amount_minor=9000)


def test_comments_in_the_header(maker, http, home, gateway):
    """Comments inside Client, Operator and MessageId: identity and the remembered MessageId are whole."""
    mid = "ERP-CMT-HEADER-0001"
    body = _inject(maker.request(pay(ref="CMT-3"), message_id=mid),
                   [(b">DEMO<", b">DE<!---->MO<"), (b">maker<", b">ma<!-- -->ker<"),
                    (f">{mid}<".encode(), b">ERP-CMT<!---->-HEADER-0001<")])
    _accepted_whole(gateway, http, home, body, ref="CMT-3", amount_minor=10000)
    with gateway.engine.connect() as conn:
        remembered = conn.execute(select(message_log.c.client_id, message_log.c.message_id)).all()
    assert remembered == [("DEMO", mid)]


def test_cdata_in_values_is_read_as_text(maker, http, home, gateway):
    """CDATA is only another way to write text (C14N writes it as text, so the signature still verifies)."""
    signed = maker.request(pay("321.00", ref="CDATA-1"))
    body = _inject(signed, [(b">321.00<", b"><![CDATA[321.00]]><"), (b">ACME<", b">AC<![CDATA[ME]]><"),
                            (b">CDATA-1<", b"><![CDATA[CDATA]]>-1<")])
    _accepted_whole(gateway, http, home, body, ref="CDATA-1", amount_minor=32100)


def test_character_references_in_values_are_read_as_characters(maker, http, home, gateway):
    """&#49; is '1' (a character reference, not an entity): same canonical form, same signature."""
    signed = maker.request(pay("100.00", ref="CHREF-1"))
    body = _inject(signed, [(b">100.00<", b">&#49;00&#x2e;00<"), (b">ACME<", b">&#65;CME<")])
    _accepted_whole(gateway, http, home, body, ref="CHREF-1", amount_minor=10000)


def test_cdata_that_hides_markup_stays_text(maker, http, home, gateway):
    """A signed Remark whose value looks like markup: it is text, written as CDATA after signing."""
    remark = "<Amount>9000.00</Amount>"
    signed = maker.request(pay(ref="CDATA-2", remark=remark))
    body = _inject(signed, [(b">&lt;Amount&gt;9000.00&lt;/Amount&gt;<",
                             b"><![CDATA[<Amount>9000.00</Amount>]]><")])
    _, row = _accepted_whole(gateway, http, home, body, ref="CDATA-2", amount_minor=10000)
    assert row.remark == remark


# ---- parser attacks (XML-01..11) --------------------------------------------------------------------------

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


# ---- regressions reduced from tests/test_fuzz.py -------------------------------------------------------

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
