"""signxml as the judge of gateway/protocol/signing.py's own verifier: the verdict the gateway gave before
it verified the profile itself (signature_element, check_profile, then signxml's XMLVerifier against the
pinned certificate), and what was signed, as canonical bytes (None: refused)."""
from __future__ import annotations

from cryptography import x509
from lxml import etree
from signxml import DigestAlgorithm, SignatureConfiguration, SignatureMethod, XMLVerifier

from domain.errors import SignatureRejected
from gateway.protocol import signing, sm2

CONFIG = SignatureConfiguration(
    location="./", expect_references=1, require_x509=False,
    signature_methods=frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.ECDSA_SHA256}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
)


def signxml_verdict(root: etree._Element, cert: x509.Certificate) -> bytes | None:
    try:
        signing.check_profile(signing.signature_element(root))
        # As UTF-8 bytes, as a request arrives: given the tree, signxml serialises it itself, in ASCII, and
        # lxml then writes non-ASCII text inside a CDATA node as character references, which are literal
        # text there: a tree mutated in memory (the fuzz tests make such nodes; parsed trees have none) would
        # be judged on other content than it holds.
        result = XMLVerifier().verify(etree.tostring(root, encoding="UTF-8"), x509_cert=cert,
                                      expect_config=CONFIG)
    except Exception:   # noqa: BLE001 - any failure of any kind is a refusal, as in the gateway
        return None
    signed = result.signed_xml   # type: ignore[union-attr]
    if signed is None or signed.tag != root.tag:
        return None
    return etree.tostring(signed, method="c14n")


def lean_verdict(root: etree._Element, cert: x509.Certificate, verify=None) -> bytes | None:
    try:
        return etree.tostring((verify or signing.verify)(root, cert).signed, method="c14n")
    except SignatureRejected:
        return None


def agree(root: etree._Element, cert: x509.Certificate, verify=None) -> bytes | None:
    """Both verdicts, which must be the same (and the tree unchanged by either); returns it. `verify`: the
    gateway's verifier, where signing.verify is itself wrapped."""
    before = etree.tostring(root)
    lean = lean_verdict(root, cert, verify)
    assert etree.tostring(root) == before, "the verifier changed the document"
    if sm2.public_key_of(cert) is not None:
        # signxml (like xmlsec1) knows no SM2: under an SM2 certificate only the structure is judged here, by
        # the profile's checks; the SM2 signature itself is judged by openssl (tests/sm2_judge.py).
        return lean
    judged = signxml_verdict(root, cert)
    verdicts = ("accepts" if lean else "refuses", "accepts" if judged else "refuses")
    assert lean == judged, (f"lean {verdicts[0]}, signxml {verdicts[1]} (or the signed trees differ)",
                            before.decode(errors="replace"))
    return lean
