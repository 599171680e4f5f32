"""What every attack module shares: posting raw bytes, the checks every attack gets, request builders and a
hand-made signature (`forge`, `Ref`) with every part of SignedInfo under the test's control.

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
import time
from dataclasses import dataclass

import pytest
from conftest import OPERATING, SUPPLIER, snapshot
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from sqlalchemy import select

from domain.errors import DirectLinkError, SignatureRejected
from gateway import keys
from gateway.protocol import client as dl
from gateway.protocol import signing, xmlsafe
from gateway.protocol.messages import E
from gateway.protocol.xmlsafe import q, text
from gateway.storage.tables import accounts, payments

UTC = dt.UTC
DSNS = signing.DS
DS = f"{{{DSNS}}}"
EVIL = "9000.00"                 # the amount an attacker wants paid (the signed one is 100.00)
NO_FORMAT = "no.such.format.v0"  # no adapter will ever read it: the codes stay put as adapters arrive
FAST = 5.0                       # seconds: a hostile document must be answered at least this quickly

SHA1_DIGEST = "http://www.w3.org/2000/09/xmldsig#sha1"
SHA512_DIGEST = "http://www.w3.org/2001/04/xmlenc#sha512"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
RSA_PSS = "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1"
HMAC_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
PROFILE = [signing.ENVELOPED, signing.EXC_C14N]
BETA_ACCOUNT = "6222000000007001"   # the second client's account (the `beta` fixture)


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
    except DirectLinkError as err:
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


# ---- a hand-made signature: every part of SignedInfo under the test's control ----------------------------

@dataclass(frozen=True)
class Ref:
    uri: str = ""
    transforms: tuple[str, ...] = tuple(PROFILE)
    digest: str = signing.SHA256


DIGESTS = {signing.SHA256: hashlib.sha256, SHA1_DIGEST: hashlib.sha1, SHA512_DIGEST: hashlib.sha512}
HASHES = {signing.RSA_SHA256: hashes.SHA256, RSA_SHA1: hashes.SHA1, RSA_SHA512: hashes.SHA512,
          RSA_PSS: hashes.SHA256}


def canonical(el, exclusive=True) -> bytes:
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
        data = canonical(target, exclusive=signing.EXC_C14N in ref.transforms or not ref.transforms)
        node = ds("Reference", ds("Transforms", *[ds("Transform", Algorithm=t) for t in ref.transforms]),
                  ds("DigestMethod", Algorithm=ref.digest),
                  ds("DigestValue", base64.b64encode(DIGESTS[ref.digest](data).digest()).decode()),
                  URI=ref.uri)
        if not ref.transforms:
            node.remove(node[0])
        info.append(node)
    # What the verifier canonicalises: SignedInfo of the signature serialised on its own.
    standalone = etree.fromstring(etree.tostring(signature)).find(f"{DS}SignedInfo")
    signed_info = canonical(standalone, exclusive=c14n.startswith(signing.EXC_C14N))
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
