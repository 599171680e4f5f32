"""Catalogue section A, Signature (security.md 1.1 and 8 A): XML signature wrapping and signature shape.
SIG-01..04 the eight wrapping variants (XSW1-8) adapted to one signed Request, evil roots, duplicate Ids,
unsigned content in ds:Object; SIG-05 partial references; SIG-07 signature exclusion; SIG-08 garbled
signatures; SIG-13 more than one Reference or Signature.
"""
from __future__ import annotations

import copy

import pytest
from conftest import OPERATING
from lxml import etree

from gateway.protocol import client as dl
from gateway.protocol.messages import E
from gateway.protocol.xmlsafe import q, text
from security.attack_kit import (
    DS,
    DSNS,
    EVIL,
    NO_FORMAT,
    Ref,
    altered,
    amount_el,
    balances,
    ds,
    dump,
    envelope,
    forge,
    outcomes,
    pay,
    payment_rows,
    post,
    refused,
    sig,
    signature_layer_refuses,
    tree,
)

# The attack kit forges RSA signatures with the demo operators' keys (the downgrades to RSA-SHA1, RSA-PSS and
# SHA-512 exist only for RSA): this module's gateway homes have RSA keys, not init's P-256 default.
pytestmark = pytest.mark.key_type("rsa")

# ---- XML signature wrapping (security.md 1.1, SIG-01..05) ------------------------------------------------

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
    body = forge(root, maker.signer.key.private, maker.signer.cert_pem, refs=(Ref("#op"),))
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
    body = forge(root, maker.signer.key.private, maker.signer.cert_pem, refs=(Ref("#obj"),), objects=[obj])
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


# ---- signature exclusion and shape (SIG-07/08/13/05) -----------------------------------------------------

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
    body = forge(root, maker.signer.key.private, maker.signer.cert_pem, refs=(Ref("#po"),))
    refused(gateway, http, home, body, 400, "XML_SCHEMA_INVALID")
    signature_layer_refuses(body, maker.signer.certificate)


def test_reference_to_the_header_through_ds_object(maker, http, home, gateway):
    """The same partial reference in a shape the XSD lets through: the signature covers only a ds:Object."""
    root = envelope(pay())
    obj = ds("Object", "covered", Id="hdr")
    refused(gateway, http, home, forge(root, maker.signer.key.private, maker.signer.cert_pem, refs=(Ref("#hdr"),),
                                       objects=[obj]), 401, "SIG_INVALID")


@pytest.mark.parametrize("refs", [(Ref(), Ref()), (Ref(), Ref("#obj"))], ids=["twice URI=''", "'' and #obj"])
def test_more_than_one_reference(maker, http, home, gateway, refs):
    """SIG-13: a real signature with two References (each digest correct) is outside the profile."""
    objects = [ds("Object", "x", Id="obj")] if len(refs) > 1 and refs[1].uri else []
    body = forge(envelope(pay()), maker.signer.key.private, maker.signer.cert_pem, refs=refs, objects=objects)
    refused(gateway, http, home, body, 401, "SIG_INVALID")
