"""The signature profile of spec section 3, both directions.

Requests: the shape and algorithms are checked first (so a forbidden algorithm gets its own code), then
signxml verifies against the operator's pinned certificate, and only the tree that signxml returns
(`signed_xml`, re-parsed from the digested bytes) is ever read by business code. Answers: Signer writes
the one profile itself (see there).
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree
from signxml import DigestAlgorithm, SignatureConfiguration, SignatureMethod, XMLVerifier

from domain.codes import ResultCode
from domain.errors import SignatureRejected

DS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"

_VERIFY_CONFIG = SignatureConfiguration(
    location="./",                  # the Signature is a child of the root, nowhere deeper
    expect_references=1,
    require_x509=False,             # trust comes from the pinned certificate, KeyInfo is a hint
    signature_methods=frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.ECDSA_SHA256}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
)


def _ds(name: str) -> str:
    return f"{{{DS}}}{name}"


@dataclass(frozen=True)
class Verified:
    """What a good signature proves: this tree, signed by this certificate."""

    signed: etree._Element
    certificate: x509.Certificate


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint of a certificate's DER, lowercase hex: how certificates are registered."""
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
    if method.get("Algorithm") not in (RSA_SHA256, ECDSA_SHA256):
        forbidden.append(f"signature method {method.get('Algorithm')}")
    if digest is None or digest.get("Algorithm") != SHA256:
        forbidden.append(f"digest {None if digest is None else digest.get('Algorithm')}")
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
        return x509.load_der_x509_certificate(base64.b64decode("".join(el.text.split()), validate=True))
    except Exception as exc:  # any failure here is a bad signature, never a 500
        raise SignatureRejected("KeyInfo holds an unreadable certificate") from exc


def verify(root: etree._Element, certificate: x509.Certificate) -> Verified:
    """Verify the enveloped signature with a pinned certificate; any failure of any kind is SIG_INVALID."""
    try:
        result = XMLVerifier().verify(root, x509_cert=certificate, expect_config=_VERIFY_CONFIG)
        if isinstance(result, list):   # signxml answers a list only when told to expect several references
            raise TypeError("several signed references")
        signed = result.signed_xml
    except Exception as exc:  # signxml raises TypeError, DocumentInvalid, ... (rule 4)
        raise SignatureRejected(f"signature does not verify: {type(exc).__name__}") from exc
    if signed is None or signed.tag != root.tag:
        raise SignatureRejected("the signature does not cover the root element")
    return Verified(signed, certificate)


class Signer:
    """Signs outgoing documents with one key; load once, sign many (key loading costs tens of ms).

    It writes the one profile of spec section 3 itself (enveloped, exclusive c14n, SHA-256, URI=""), with
    lxml's canonicalisation and the cryptography package: signxml took 0.6 ms a document for tree work
    around a 25 us ECDSA signature. What it writes is verified by signxml (every answer the tests read, every
    request the tests send) and by xmlsec1 (tests/scenarios/test_e2e_independent.py)."""

    def __init__(self, key_pem: bytes, cert_pem: bytes, passphrase: bytes | None = None):
        key = serialization.load_pem_private_key(key_pem, password=passphrase)
        self.cert_pem = cert_pem
        self.certificate = x509.load_pem_x509_certificate(cert_pem)
        self.key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            self.key, self.method = key, ECDSA_SHA256
        elif isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
            self.key, self.method = key, RSA_SHA256
        else:
            raise ValueError("keys must be RSA-2048+ or ECDSA P-256")
        self._cert_b64 = base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")

    def sign(self, root: etree._Element) -> bytes:
        """Return the document, enveloped-signed, as UTF-8 bytes with an XML declaration. `root` is signed
        in place (its Signature is appended as the last child)."""
        if root.find(_ds("Signature")) is not None:
            raise ValueError("the document is signed already")
        # URI="" with the enveloped transform: the whole document without comments, and without the
        # Signature (not there yet).
        digest = hashlib.sha256(etree.tostring(root, method="c14n", exclusive=True, with_comments=False)).digest()
        sig = etree.SubElement(root, _ds("Signature"), nsmap={"ds": DS})
        info = etree.SubElement(sig, _ds("SignedInfo"))
        etree.SubElement(info, _ds("CanonicalizationMethod"), Algorithm=EXC_C14N)
        etree.SubElement(info, _ds("SignatureMethod"), Algorithm=self.method)
        ref = etree.SubElement(info, _ds("Reference"), URI="")
        transforms = etree.SubElement(ref, _ds("Transforms"))
        etree.SubElement(transforms, _ds("Transform"), Algorithm=ENVELOPED)
        etree.SubElement(transforms, _ds("Transform"), Algorithm=EXC_C14N)
        etree.SubElement(ref, _ds("DigestMethod"), Algorithm=SHA256)
        etree.SubElement(ref, _ds("DigestValue")).text = base64.b64encode(digest).decode("ascii")
        signed_info = etree.tostring(info, method="c14n", exclusive=True)
        etree.SubElement(sig, _ds("SignatureValue")).text = base64.b64encode(self._signature(signed_info))
        data = etree.SubElement(etree.SubElement(sig, _ds("KeyInfo")), _ds("X509Data"))
        etree.SubElement(data, _ds("X509Certificate")).text = self._cert_b64
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def _signature(self, data: bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):   # method RSA_SHA256, as __init__ paired them
            return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        # XML-DSig's ECDSA value is r and s side by side, 32 bytes each (RFC 4050), not DER.
        r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def digest_b64(data: bytes) -> str:
    """Base64 SHA-256, the form of RequestDigest and OrderDigest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
