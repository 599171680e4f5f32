"""The signature profile of spec section 3, both directions.

Requests: the shape and algorithms are checked first (so a forbidden algorithm gets its own code), then
`verify` checks the one profile against the operator's pinned certificate with lxml's exclusive C14N and
the cryptography package, and only the tree it returns (re-parsed from the digested bytes) is ever read by
business code. Answers: Signer writes the one profile itself (see there).

`verify` gives the verdict signxml 5.2's XMLVerifier gives for this profile, checks included (the XML-DSig
schema, KeyValue against the pinned key, the certificate's validity), in 0.16 ms where signxml took 0.35
(P-256; RSA-2048 0.09 against 0.30, bench/verify_cost.py): signxml re-serialises and re-parses the document
four times. signxml stays the judge in the tests
(tests/gateway/protocol/test_lean_verifier.py compares the two, verdict and signed tree).
"""
from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import hashlib
import threading
from dataclasses import dataclass
from importlib.resources import files
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from lxml import etree

from domain.codes import ResultCode
from domain.errors import SignatureRejected
from gateway.protocol import sm2
from schemas import compile_schema

DS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
DSIG11 = "http://www.w3.org/2009/xmldsig11#"
# SM2 over SM3 digests (docs/protocol.md, "The SM2/SM3 profile"): no W3C or IETF URI exists for them; these
# are the ones China E-Port's XML signatures use with an SM3 digest (its older form puts "#sm2-sm3" under
# the W3C namespace and digests with SHA-1, which this profile does not allow).
SM2_SM3 = "http://www.chinaport.gov.cn/2022/04/xmldsig#sm2-sm3"
SM3 = "http://www.chinaport.gov.cn/2022/04/xmldsig#sm3"
# The digest each signature method goes with: SHA-256 with RSA and ECDSA, SM3 with SM2.
_DIGEST_OF = {RSA_SHA256: SHA256, ECDSA_SHA256: SHA256, SM2_SM3: SM3}
# The curves a dsig11:ECKeyValue may name (RFC 5656), by the names cryptography gives them.
_CURVES = {"urn:oid:1.2.840.10045.3.1.7": "secp256r1", "urn:oid:1.3.132.0.34": "secp384r1",
           "urn:oid:1.3.132.0.35": "secp521r1", "urn:oid:1.2.840.10045.3.1.1": "secp192r1",
           "urn:oid:1.3.132.0.33": "secp224r1"}
_XML_SPACE = " \t\r\n"
_local = threading.local()


def _ds(name: str) -> str:
    return f"{{{DS}}}{name}"


@dataclass(frozen=True)
class Verified:
    """What a good signature proves: this tree, signed by this certificate."""

    signed: etree._Element
    certificate: x509.Certificate


@functools.lru_cache(maxsize=1024)
def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint of a certificate's DER, lowercase hex: how certificates are registered. (Kept for
    the certificates last seen: every request asks it of its signer's, twice.)"""
    return cert.fingerprint(hashes.SHA256()).hex()


def signature_element(root: etree._Element) -> etree._Element:
    """Return the one enveloped Signature, or raise SIG_MISSING / SIG_INVALID for a wrong shape."""
    signatures = root.findall(f".//{_ds('Signature')}")
    if not signatures:
        raise SignatureRejected("the message carries no ds:Signature", code=ResultCode.SIG_MISSING)
    if len(signatures) > 1:
        raise SignatureRejected("exactly one ds:Signature is allowed")
    sig = signatures[0]
    if sig.getparent() is not root or root[-1] is not sig:
        raise SignatureRejected("ds:Signature must be the last child of the root element")
    return sig


def check_profile(sig: etree._Element) -> None:
    """Check the SignedInfo against the profile before any cryptography runs."""
    info = sig.find(_ds("SignedInfo"))
    if info is None:
        raise SignatureRejected("ds:SignedInfo is missing")
    c14n = info.find(_ds("CanonicalizationMethod"))
    method = info.find(_ds("SignatureMethod"))
    refs = info.findall(_ds("Reference"))
    if c14n is None or method is None or len(refs) != 1:
        raise SignatureRejected("SignedInfo must hold one CanonicalizationMethod, SignatureMethod and Reference")
    ref = refs[0]
    digest = ref.find(_ds("DigestMethod"))
    transforms = [t.get("Algorithm") for t in ref.iterfind(f"{_ds('Transforms')}/{_ds('Transform')}")]
    forbidden = []
    if c14n.get("Algorithm") != EXC_C14N:
        forbidden.append(f"canonicalization {c14n.get('Algorithm')}")
    if method.get("Algorithm") not in _DIGEST_OF:
        forbidden.append(f"signature method {method.get('Algorithm')}")
    if digest is None or digest.get("Algorithm") != _DIGEST_OF.get(method.get("Algorithm") or "", SHA256):
        forbidden.append(f"digest {None if digest is None else digest.get('Algorithm')} "
                         f"(with {method.get('Algorithm')})")
    if transforms != [ENVELOPED, EXC_C14N]:
        forbidden.append(f"transforms {transforms}")
    if forbidden:
        raise SignatureRejected("not allowed by the profile: " + "; ".join(forbidden),
                                code=ResultCode.SIG_ALGORITHM_FORBIDDEN)
    if ref.get("URI") != "":
        raise SignatureRejected('the single Reference must have URI="" (the whole message)')


def keyinfo_certificate(sig: etree._Element) -> x509.Certificate | None:
    """The certificate carried in KeyInfo, if any: a hint to pick among registered ones, never trusted."""
    el = sig.find(f"{_ds('KeyInfo')}/{_ds('X509Data')}/{_ds('X509Certificate')}")
    if el is None or not (el.text or "").strip():
        return None
    try:
        return _certificate("".join(el.text.split()))
    except Exception as exc:  # any failure here is a bad signature, never a 500
        raise SignatureRejected("KeyInfo holds an unreadable certificate") from exc


@functools.lru_cache(maxsize=256)
def _certificate(b64: str) -> x509.Certificate:
    """A KeyInfo certificate, read once for the texts last seen: an operator sends the same one every time
    (a text that fails to read raises and is not kept)."""
    return x509.load_der_x509_certificate(base64.b64decode(b64, validate=True))


def verify(root: etree._Element, certificate: x509.Certificate, *, at: dt.datetime | None = None) -> Verified:
    """Verify the enveloped signature with a pinned certificate; any failure of any kind is SIG_INVALID.
    `at`: the moment the certificate must have been valid (default now; a receipt kept for years is checked
    at its booking time)."""
    try:
        signed = _signed_tree(root, certificate, at or dt.datetime.now(dt.UTC))
    except SignatureRejected as err:
        raise SignatureRejected(f"signature does not verify: {err.detail}") from err
    except Exception as exc:  # a malformed value anywhere (base64, key numbers, ...) is a bad signature (rule 4)
        raise SignatureRejected(f"signature does not verify: {type(exc).__name__}") from exc
    return Verified(signed, certificate)


def _signed_tree(root: etree._Element, certificate: x509.Certificate, now: dt.datetime) -> etree._Element:
    """Check the signature and return what its one Reference covered, re-parsed from the digested bytes."""
    if root.tag == _ds("Signature"):
        raise SignatureRejected("the root element is itself a ds:Signature")
    sig = signature_element(root)
    check_profile(sig)
    if (sig.tail or "").strip(_XML_SPACE) or next(root.iter(etree.Entity), None) is not None:
        # signxml re-parses the Signature with its tail, and the document: it refuses both.
        raise SignatureRejected("text after the ds:Signature, or an entity reference")
    if not _dsig_schema().validate(sig):
        raise SignatureRejected("the ds:Signature is not valid XML-DSig")
    info = _child(sig, "SignedInfo")
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise SignatureRejected("the certificate is outside its validity")
    key = public_key(certificate)
    signed_info = etree.tostring(info, method="c14n", exclusive=True, with_comments=False)
    _check_signature(key, _child(info, "SignatureMethod").get("Algorithm"),
                     base64.b64decode(_child(sig, "SignatureValue").text), signed_info)
    _check_key_values(sig, key)
    ref = _child(info, "Reference")
    content = _referenced_c14n(root, ref)
    if base64.b64decode(_child(ref, "DigestValue").text) != _digest(_child(ref, "DigestMethod").get("Algorithm"),
                                                                     content):
        raise SignatureRejected("the digest does not match the message")
    signed = etree.fromstring(content)
    if signed.tag != root.tag:
        raise SignatureRejected("the signature does not cover the root element")
    return signed


def _child(el: etree._Element, name: str) -> etree._Element:
    found = el.find(_ds(name))
    if found is None:   # the schema requires each one asked for; kept so that a gap can never pass
        raise SignatureRejected(f"ds:{name} is missing")
    return found


def _dsig_schema() -> etree.XMLSchema:
    """The W3C XML-DSig schema (as signxml ships it), one per thread: an XMLSchema's error log is shared."""
    xsd: etree.XMLSchema | None = getattr(_local, "schema", None)
    if xsd is None:
        path = files("signxml.schemas").joinpath("xmldsig1-schema.xsd")
        with path.open("rb") as fh:
            doc = etree.parse(fh, etree.XMLParser(no_network=True, resolve_entities=False), base_url=str(path))
        xsd = _local.schema = compile_schema(doc)
    return xsd


@functools.lru_cache(maxsize=1024)
def public_key(certificate: x509.Certificate) -> CertificatePublicKeyTypes | sm2.PublicKey:
    """A certificate's key: SM2 (which `cryptography` cannot load) or whatever `cryptography` makes of it.
    Kept for the certificates last seen (a certificate is immutable and hashes by its DER): reading an SM2
    key out of the DER took 0.1 ms, as long as the ECDSA verification it is for."""
    return sm2.public_key_of(certificate) or certificate.public_key()


def _digest(method: str | None, data: bytes) -> bytes:
    return sm2.sm3(data) if method == SM3 else hashlib.sha256(data).digest()


def _check_signature(key: object, method: str | None, value: bytes, signed_info: bytes) -> None:
    """The SignatureValue over the canonical SignedInfo, by the pinned key, with the method it names."""
    if method == SM2_SM3 and isinstance(key, sm2.PublicKey):
        # r and s side by side, 32 bytes each, as for ECDSA; signed with the configured identifier.
        if not key.verify(value, signed_info):
            raise InvalidSignature
    elif method == ECDSA_SHA256 and isinstance(key, ec.EllipticCurvePublicKey):
        # XML-DSig's ECDSA value is r and s side by side, each as long as the curve's order (RFC 4050).
        half = (key.key_size + 7) // 8
        if len(value) != 2 * half:
            raise SignatureRejected(f"an ECDSA SignatureValue of {len(value)} bytes")
        der = encode_dss_signature(int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big"))
        key.verify(der, signed_info, ec.ECDSA(hashes.SHA256()))
    elif method == RSA_SHA256 and isinstance(key, rsa.RSAPublicKey):
        key.verify(value, signed_info, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise SignatureRejected("the signature method does not fit the certificate's key")


def _check_key_values(sig: etree._Element, key: CertificatePublicKeyTypes | sm2.PublicKey) -> None:
    """A KeyValue or DEREncodedKeyValue in KeyInfo must describe the pinned key (an ambiguous KeyInfo is
    refused, as signxml refuses it)."""
    value = sig.find(f"{_ds('KeyInfo')}/{_ds('KeyValue')}")
    if value is not None and not _key_value_is(value, key):
        raise SignatureRejected("KeyInfo's KeyValue is not the certificate's key")
    der = sig.find(f"{_ds('KeyInfo')}/{{{DSIG11}}}DEREncodedKeyValue")
    if der is not None:
        if isinstance(key, sm2.PublicKey):
            raise SignatureRejected("KeyInfo's DEREncodedKeyValue is not read for SM2 keys")
        given = serialization.load_der_public_key(base64.b64decode(der.text or ""))
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if given.public_bytes(*spki) != key.public_bytes(*spki):
            raise SignatureRejected("KeyInfo's DEREncodedKeyValue is not the certificate's key")


def _key_value_is(value: etree._Element, key: object) -> bool:
    if isinstance(key, ec.EllipticCurvePublicKey):
        ec_value = _found(value, f"{{{DSIG11}}}ECKeyValue")
        point = base64.b64decode(_found(ec_value, f"{{{DSIG11}}}PublicKey").text or "")[1:]   # after 0x04
        curve = _CURVES[_found(ec_value, f"{{{DSIG11}}}NamedCurve").get("URI", "")]
        numbers = key.public_numbers()
        return (curve == numbers.curve.name and int.from_bytes(point[:len(point) // 2], "big") == numbers.x
                and int.from_bytes(point[len(point) // 2:], "big") == numbers.y)
    if isinstance(key, rsa.RSAPublicKey):
        rsa_value = _found(value, _ds("RSAKeyValue"))
        rsa_numbers = key.public_numbers()
        return (_integer(_found(rsa_value, _ds("Modulus"))) == rsa_numbers.n
                and _integer(_found(rsa_value, _ds("Exponent"))) == rsa_numbers.e)
    return False


def _found(el: etree._Element, tag: str) -> etree._Element:
    found = el.find(tag)
    if found is None:
        raise SignatureRejected(f"{tag} is missing")
    return found


def _integer(el: etree._Element) -> int:
    return int.from_bytes(base64.b64decode(el.text or ""), "big")


def _referenced_c14n(root: etree._Element, ref: etree._Element) -> bytes:
    """The whole document (URI="") through the two transforms: without the Signature (its tail stays: the
    enveloped transform removes the element, not the text after it), exclusive C14N without comments."""
    doc = copy.deepcopy(root)
    sig = doc[-1]
    if sig.tail is not None:
        before = sig.getprevious()
        if before is None:
            doc.text = (doc.text or "") + sig.tail
        else:
            before.tail = (before.tail or "") + sig.tail
    doc.remove(sig)
    prefixes = None
    for transform in ref.iterfind(f"{_ds('Transforms')}/{_ds('Transform')}"):
        listed = transform.find(f"{{{EXC_C14N}}}InclusiveNamespaces[@PrefixList]")
        if transform.get("Algorithm") == EXC_C14N and listed is not None:
            prefixes = listed.get("PrefixList", "").split(" ")
    return etree.tostring(doc, method="c14n", exclusive=True, with_comments=False, inclusive_ns_prefixes=prefixes)


class SigningKey(Protocol):
    """The gateway's (or a client's) private key as the Signer needs it, wherever the key lives: a PEM file
    (PemKey) or a PKCS#11 token (gateway/hsm.py), where the key never leaves the token."""

    certificate: x509.Certificate

    def sign(self, data: bytes) -> bytes:
        """The XML-DSig SignatureValue over `data`: RSA PKCS#1 v1.5 with SHA-256, ECDSA P-256 with SHA-256 or
        SM2 with SM3 (and the distinguishing identifier), the last two as r and s side by side, 32 bytes each
        (RFC 4050), not DER."""
        ...


def method_of(certificate: x509.Certificate) -> str:
    """The profile's SignatureMethod for a certificate's key; ValueError for a key outside the profile."""
    key = public_key(certificate)
    if isinstance(key, sm2.PublicKey):
        return SM2_SM3
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return ECDSA_SHA256
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
        return RSA_SHA256
    raise ValueError("keys must be RSA-2048+, ECDSA P-256 or SM2")


class PemKey:
    """A private key from PEM (encrypted with `passphrase`, or not) with its certificate."""

    def __init__(self, key_pem: bytes, cert_pem: bytes, passphrase: bytes | None = None):
        self.certificate = x509.load_pem_x509_certificate(cert_pem)
        self.private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | sm2.PrivateKey
        public = sm2.public_key_of(self.certificate)
        if public is not None:
            if passphrase:
                raise ValueError("SM2 keys are read unencrypted (protect the file, or keep the key in a token)")
            self.private = sm2.load_private(key_pem, public)
            return
        key = serialization.load_pem_private_key(key_pem, password=passphrase)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError("keys must be RSA-2048+, ECDSA P-256 or SM2")
        self.private = key

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.private, sm2.PrivateKey):
            return self.private.sign(data)
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class Signer:
    """Signs outgoing documents with one key; load once, sign many (key loading costs tens of ms).

    It writes the one profile of spec section 3 itself (enveloped, exclusive c14n, SHA-256 or with SM2 SM3,
    URI=""), with
    lxml's canonicalisation and the cryptography package: signxml took 0.6 ms a document for tree work
    around a 25 us ECDSA signature. What it writes is verified by signxml (every answer the tests read, every
    request the tests send) and by xmlsec1 (tests/scenarios/test_e2e_independent.py)."""

    def __init__(self, key: SigningKey):
        self.key = key
        self.certificate = key.certificate
        self.method = method_of(self.certificate)
        # A key that is not the certificate's (a wrong file or token label) fails here, at start-up, and not
        # in every answer's verification at the client.
        probe = b"directlink key check"
        self.digest_method = _DIGEST_OF[self.method]
        try:
            _check_signature(public_key(self.certificate), self.method, key.sign(probe), probe)
        except (InvalidSignature, SignatureRejected):
            raise ValueError("the key does not belong to the certificate") from None
        self.cert_pem = self.certificate.public_bytes(serialization.Encoding.PEM)
        self._cert_b64 = base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")

    @classmethod
    def from_pem(cls, key_pem: bytes, cert_pem: bytes, passphrase: bytes | None = None) -> Signer:
        return cls(PemKey(key_pem, cert_pem, passphrase))

    def sign(self, root: etree._Element) -> bytes:
        """Return the document, enveloped-signed, as UTF-8 bytes with an XML declaration. `root` is signed
        in place (its Signature is appended as the last child)."""
        if root.find(_ds("Signature")) is not None:
            raise ValueError("the document is signed already")
        # URI="" with the enveloped transform: the whole document without comments, and without the
        # Signature (not there yet).
        digest = _digest(self.digest_method, etree.tostring(root, method="c14n", exclusive=True, with_comments=False))
        sig = etree.SubElement(root, _ds("Signature"), nsmap={"ds": DS})
        info = etree.SubElement(sig, _ds("SignedInfo"))
        etree.SubElement(info, _ds("CanonicalizationMethod"), Algorithm=EXC_C14N)
        etree.SubElement(info, _ds("SignatureMethod"), Algorithm=self.method)
        ref = etree.SubElement(info, _ds("Reference"), URI="")
        transforms = etree.SubElement(ref, _ds("Transforms"))
        etree.SubElement(transforms, _ds("Transform"), Algorithm=ENVELOPED)
        etree.SubElement(transforms, _ds("Transform"), Algorithm=EXC_C14N)
        etree.SubElement(ref, _ds("DigestMethod"), Algorithm=self.digest_method)
        etree.SubElement(ref, _ds("DigestValue")).text = base64.b64encode(digest).decode("ascii")
        signed_info = etree.tostring(info, method="c14n", exclusive=True)
        etree.SubElement(sig, _ds("SignatureValue")).text = base64.b64encode(self.key.sign(signed_info))
        data = etree.SubElement(etree.SubElement(sig, _ds("KeyInfo")), _ds("X509Data"))
        etree.SubElement(data, _ds("X509Certificate")).text = self._cert_b64
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def digest_b64(data: bytes) -> str:
    """Base64 SHA-256, the form of RequestDigest and OrderDigest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
