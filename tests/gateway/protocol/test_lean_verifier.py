"""gateway/protocol/signing.py verifies the profile itself; signxml (the verifier it replaced) is the judge.

The vectors: documents signed by our Signer, by signxml's XMLSigner and by the xmlsec1 command, with either
key type, and shapes the attack suite forges; each gets the same verdict from our verifier, signxml and
xmlsec1 (xmlsec1 knows no profile, so it is asked only about documents inside it). The differential fuzz:
signed documents are mutated (texts, attributes, namespaces, whitespace, the reference, digest and signature
bytes, comments, KeyInfo, moved, duplicated and wrapped nodes), some then signed again so that odd shapes
arrive under a good signature; both verifiers must give the same verdict and the same signed tree.
Derandomized, so CI runs the same 6,000 cases every time (about 25 s).
"""
from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import subprocess
from functools import cache

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from processes import xmlsec_valid
from signature_judge import agree, signxml_verdict
from signxml import XMLSigner, methods

from gateway import keys
from gateway.protocol import client as dl
from gateway.protocol import signing
from gateway.protocol.messages import E

DS = f"{{{signing.DS}}}"
NS = "urn:directlink:v1"
EXAMPLES = 3000   # per key type


@cache
def identity(key_type: str):
    key = keys.new_key(key_type)
    return key, keys.self_signed(key, "DEMO/maker", "DirectLink test", days=30)


def request() -> etree._Element:
    """A one-payment order, as an ERP sends it."""
    return E.Request(E.Header(E.MessageId("ERP-1"), E.Created("2026-11-26T12:00:00+08:00"), E.Client("DEMO"),
                              E.Operator("maker")),
                     dl.payment_order(dl.payment("INV-1", "6222000000001001", "100.00", "上海某某科技",
                                                 "6222000000002001")), version="1")


def signed_by_us(key_type: str, root: etree._Element | None = None) -> bytes:
    key, cert = identity(key_type)
    return signing.Signer.from_pem(keys.key_pem(key), keys.cert_pem(cert)).sign(request() if root is None else root)


def signed_by_signxml(key_type: str) -> bytes:
    key, cert = identity(key_type)
    algorithm = "ecdsa-sha256" if key_type == "p256" else "rsa-sha256"
    root = XMLSigner(method=methods.enveloped, signature_algorithm=algorithm, digest_algorithm="sha256",
                     c14n_algorithm=signing.EXC_C14N).sign(request(), key=keys.key_pem(key),
                                                           cert=keys.cert_pem(cert).decode())
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def signed_by_xmlsec1(key_type: str, tmp_path) -> bytes:
    """xmlsec1 fills in a template: the profile's shape, without KeyInfo."""
    key, _ = identity(key_type)
    method = signing.ECDSA_SHA256 if key_type == "p256" else signing.RSA_SHA256
    template = request()
    template.append(_signature(method, digest="", value=""))
    (tmp_path / "template.xml").write_bytes(etree.tostring(template))
    (tmp_path / "key.pem").write_bytes(keys.key_pem(key))
    done = subprocess.run(["xmlsec1", "--sign", "--privkey-pem", str(tmp_path / "key.pem"),
                           str(tmp_path / "template.xml")], capture_output=True, timeout=30, check=True)
    return done.stdout


def _signature(method: str, *, digest: str, value: str) -> etree._Element:
    sig = etree.Element(f"{DS}Signature", nsmap={"ds": signing.DS})
    info = etree.SubElement(sig, f"{DS}SignedInfo")
    etree.SubElement(info, f"{DS}CanonicalizationMethod", Algorithm=signing.EXC_C14N)
    etree.SubElement(info, f"{DS}SignatureMethod", Algorithm=method)
    ref = etree.SubElement(info, f"{DS}Reference", URI="")
    transforms = etree.SubElement(ref, f"{DS}Transforms")
    etree.SubElement(transforms, f"{DS}Transform", Algorithm=signing.ENVELOPED)
    etree.SubElement(transforms, f"{DS}Transform", Algorithm=signing.EXC_C14N)
    etree.SubElement(ref, f"{DS}DigestMethod", Algorithm=signing.SHA256)
    etree.SubElement(ref, f"{DS}DigestValue").text = digest
    etree.SubElement(sig, f"{DS}SignatureValue").text = value
    return sig


def resign(root: etree._Element, key) -> None:
    """Give the (mutated) document a good signature again: digest of what its Reference covers, then the
    SignatureValue over SignedInfo, by the rules of XML-DSig rather than by gateway code."""
    sig = root.find(f"{DS}Signature")
    info = None if sig is None else sig.find(f"{DS}SignedInfo")
    ref = None if info is None else info.find(f"{DS}Reference")
    if ref is not None and ref.find(f"{DS}DigestValue") is not None and sig.find(f"{DS}SignatureValue") is not None:
        whole = etree.fromstring(etree.tostring(root))
        inner = whole.find(f"{DS}Signature")
        if inner is not None:   # the enveloped transform: the element goes, the text after it stays
            before = inner.getprevious()
            if inner.tail and before is not None:
                before.tail = (before.tail or "") + inner.tail
            elif inner.tail:
                whole.text = (whole.text or "") + inner.tail
            whole.remove(inner)
        listed = ref.find(f"{DS}Transforms/{DS}Transform/{{{signing.EXC_C14N}}}InclusiveNamespaces")
        prefixes = None if listed is None else (listed.get("PrefixList") or "").split(" ")
        data = etree.tostring(whole, method="c14n", exclusive=True, inclusive_ns_prefixes=prefixes)
        ref.find(f"{DS}DigestValue").text = base64.b64encode(hashlib.sha256(data).digest()).decode()
        standalone = etree.fromstring(etree.tostring(sig, with_tail=False)).find(f"{DS}SignedInfo")
        to_sign = etree.tostring(standalone, method="c14n", exclusive=True)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(key.sign(to_sign, ec.ECDSA(hashes.SHA256())))
            value = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            value = key.sign(to_sign, padding.PKCS1v15(), hashes.SHA256())
        sig.find(f"{DS}SignatureValue").text = base64.b64encode(value).decode()


# ---- the vectors --------------------------------------------------------------------------------------

def vectors(key_type: str, tmp_path) -> dict[str, bytes]:
    ours = signed_by_us(key_type)
    forged = etree.fromstring(ours)
    resign(forged, stranger(key_type))
    evil = ours.replace(b"100.00", b"9000.00")
    wrapped = etree.fromstring(ours)   # the signed content moved into an Object, an evil one in its place
    obj = etree.SubElement(wrapped[-1], f"{DS}Object")
    obj.append(copy.deepcopy(wrapped[1]))
    wrapped[1].find(f".//{{{NS}}}Amount").text = "9000.00"
    commented = etree.fromstring(ours)
    commented.find(f".//{{{NS}}}Amount").text = "10"
    commented.find(f".//{{{NS}}}Amount").append(etree.Comment("x"))
    commented.find(f".//{{{NS}}}Amount")[0].tail = "0.00"
    return {
        "ours": ours, "signxml": signed_by_signxml(key_type), "xmlsec1": signed_by_xmlsec1(key_type, tmp_path),
        "other key": etree.tostring(forged), "amount changed": evil,
        "wrapped into Object": etree.tostring(wrapped), "comment in the amount": etree.tostring(commented),
        "base64 in lines": ours.replace(b"</ds:SignatureValue>", b"\n</ds:SignatureValue>").replace(
            b"<ds:SignatureValue>", b"<ds:SignatureValue>\n"),
        "second signature": ours.replace(b"</Request>", f'<ds:Signature xmlns:ds="{signing.DS}"/></Request>'.encode()),
        "no signature": etree.tostring(request()),
    }


EXPECTED = {"ours": True, "signxml": True, "xmlsec1": True, "comment in the amount": True,
            "base64 in lines": True}


@pytest.mark.parametrize("key_type", ["p256", "rsa"])
def test_every_vector_gets_the_same_verdict_from_us_signxml_and_xmlsec1(key_type, tmp_path):
    _, cert = identity(key_type)
    cert_file = tmp_path / "cert.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    for name, body in vectors(key_type, tmp_path).items():
        root = etree.fromstring(body)
        verdict = agree(root, cert)
        assert (verdict is not None) == EXPECTED.get(name, False), name
        try:
            in_profile = signing.check_profile(signing.signature_element(root)) is None
        except signing.SignatureRejected:
            in_profile = False
        if in_profile:
            assert xmlsec_valid(body, cert_file, tmp_path) == (verdict is not None), name


def test_an_expired_certificate_is_refused_by_both():
    key, _ = identity("p256")
    old = keys.self_signed(key, "DEMO/maker", "DirectLink test", days=1,
                           not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    root = etree.fromstring(signed_by_us("p256"))
    assert agree(root, old) is None and signxml_verdict(root, identity("p256")[1]) is not None


# ---- the differential fuzz ----------------------------------------------------------------------------

TEXTS = st.sampled_from(["9000.00", "", " ", "\n  ", "x", "上海", "&<>", "AAAA", "\t"])
NAMES = st.sampled_from([f"{DS}Object", f"{DS}KeyName", f"{DS}Signature", f"{DS}Foo", f"{{{NS}}}Amount",
                         "{urn:other}Extra", "plain"])
ATTRS = st.sampled_from(["Id", "URI", "Algorithm", "version", "{urn:other}a", "PrefixList"])
VALUES = st.sampled_from(["", "#x", "x", signing.EXC_C14N, signing.ENVELOPED, signing.RSA_SHA256,
                          signing.ECDSA_SHA256, "http://www.w3.org/2000/09/xmldsig#sha1", "1", "ds xs #default"])


def _elements(root):
    return [el for el in root.iter() if isinstance(el.tag, str)]


def _bits(text: str | None, at: int) -> str:
    raw = bytearray(base64.b64decode(text or ""))
    if raw:
        raw[at % len(raw)] ^= 1 << (at % 8)
    return base64.b64encode(bytes(raw)).decode()


@cache
def stranger(key_type: str):
    return keys.new_key(key_type)


@cache
def originals(key_type: str) -> tuple[bytes, bytes]:
    return signed_by_us(key_type), signed_by_signxml(key_type)


def key_value(key_type: str, matching: bool) -> etree._Element:
    key = identity(key_type)[0] if matching else stranger(key_type)
    numbers = key.public_key().public_numbers()
    kv = etree.Element(f"{DS}KeyValue")
    if key_type == "p256":
        dsig11 = "{http://www.w3.org/2009/xmldsig11#}"
        point = b"\x04" + numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")
        ec_value = etree.SubElement(kv, f"{dsig11}ECKeyValue")
        etree.SubElement(ec_value, f"{dsig11}NamedCurve", URI="urn:oid:1.2.840.10045.3.1.7")
        etree.SubElement(ec_value, f"{dsig11}PublicKey").text = base64.b64encode(point).decode()
    else:
        rsa_value = etree.SubElement(kv, f"{DS}RSAKeyValue")
        for name, n in (("Modulus", numbers.n), ("Exponent", numbers.e)):
            etree.SubElement(rsa_value, f"{DS}{name}").text = base64.b64encode(
                n.to_bytes((n.bit_length() + 7) // 8, "big")).decode()
    return kv


def der_key_value(key_type: str, matching: bool) -> etree._Element:
    key = identity(key_type)[0] if matching else stranger(key_type)
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    el = etree.Element("{http://www.w3.org/2009/xmldsig11#}DEREncodedKeyValue")
    el.text = base64.b64encode(der).decode()
    return el


def mutate(data, root: etree._Element, key_type: str) -> None:
    """One mutation of the tree, drawn by Hypothesis."""
    els = _elements(root)
    sig = root.find(f"{DS}Signature")
    pick = lambda: data.draw(st.sampled_from(els))   # noqa: E731
    kind = data.draw(st.sampled_from(
        ["text", "attribute", "drop attribute", "namespace", "whitespace", "reference", "digest", "signature",
         "signature lines", "comment", "move", "duplicate", "wrap", "drop", "insert", "key info", "tail",
         "inclusive namespaces"]))
    if kind == "text":
        pick().text = data.draw(TEXTS)
    elif kind == "attribute":
        pick().set(data.draw(ATTRS), data.draw(VALUES))
    elif kind == "drop attribute":
        el = pick()
        if el.attrib:
            del el.attrib[data.draw(st.sampled_from(sorted(el.attrib)))]
    elif kind == "namespace":   # re-create an element under a new prefix, or with an unused declaration
        el = pick()
        nsmap = {data.draw(st.sampled_from(["x", "ds", "dl", None])): data.draw(
            st.sampled_from(["urn:other", signing.DS, NS]))}
        twin = etree.Element(el.tag, attrib=dict(el.attrib), nsmap=nsmap)
        twin.text, twin.tail = el.text, el.tail
        twin.extend(list(el))
        parent = el.getparent()
        if parent is not None:
            parent.replace(el, twin)
    elif kind == "whitespace":
        el = pick()
        if len(el):
            el[0].tail = data.draw(st.sampled_from(["", " ", "\n\t", "\r\n"]))
        else:
            el.text = (el.text or "") + data.draw(st.sampled_from([" ", "\n"]))
    elif kind == "reference" and sig is not None:
        ref = sig.find(f"{DS}SignedInfo/{DS}Reference")
        if ref is not None:
            ref.set("URI", data.draw(st.sampled_from(["", "#x", "#ERP-1", "urn:x"])))
            root.set(data.draw(st.sampled_from(["Id", "ID", "id"])), "x")
    elif kind in ("digest", "signature") and sig is not None:
        el = sig.find(f".//{DS}{'DigestValue' if kind == 'digest' else 'SignatureValue'}")
        if el is not None:
            el.text = _bits(el.text, data.draw(st.integers(0, 4096)))
    elif kind == "signature lines" and sig is not None:
        el = sig.find(f"{DS}SignatureValue")
        if el is not None and el.text:
            at = data.draw(st.integers(0, len(el.text)))
            el.text = el.text[:at] + data.draw(st.sampled_from(["\n", " ", "\r\n", "=", "*", "A"])) + el.text[at:]
    elif kind == "comment":
        el = pick()
        el.insert(data.draw(st.integers(0, len(el))), etree.Comment(data.draw(st.sampled_from(["c", " x "]))))
    elif kind in ("move", "duplicate", "wrap", "drop"):
        el = pick()
        parent = el.getparent()
        if parent is None:
            return
        if kind == "drop":
            parent.remove(el)
        elif kind == "wrap":   # the element moves into a new one, in its place
            wrapper = etree.Element(data.draw(NAMES))
            parent.replace(el, wrapper)
            wrapper.append(el)
        else:
            target = pick()
            node = copy.deepcopy(el) if kind == "duplicate" else el
            if target is not el and el not in target.iterancestors():
                target.insert(data.draw(st.integers(0, len(target))), node)
    elif kind == "insert":
        el = pick()
        el.insert(data.draw(st.integers(0, len(el))), etree.Element(data.draw(NAMES)))
    elif kind == "key info" and sig is not None:
        info = sig.find(f"{DS}KeyInfo")
        if info is None:
            info = etree.SubElement(sig, f"{DS}KeyInfo")
        choice = data.draw(st.sampled_from(["remove", "key name", "key value", "wrong key value", "der",
                                            "wrong der", "empty", "object"]))
        if choice == "remove":
            sig.remove(info)
        elif choice == "key name":
            etree.SubElement(info, f"{DS}KeyName").text = "maker"
        elif choice in ("key value", "wrong key value"):
            info.insert(0, key_value(key_type, choice == "key value"))
        elif choice in ("der", "wrong der"):
            info.append(der_key_value(key_type, choice == "der"))
        elif choice == "empty":
            for child in list(info):
                info.remove(child)
        else:
            etree.SubElement(sig, f"{DS}Object").append(copy.deepcopy(root[0]))
    elif kind == "tail" and sig is not None:
        sig.tail = data.draw(st.sampled_from(["\n", " x ", "\u00a0", ""]))
    elif kind == "inclusive namespaces" and sig is not None:
        transform = sig.find(f".//{DS}Transform[@Algorithm='{signing.EXC_C14N}']")
        if transform is not None:
            etree.SubElement(transform, f"{{{signing.EXC_C14N}}}InclusiveNamespaces",
                             PrefixList=data.draw(st.sampled_from(["ds", "x #default", "", "dl"])))


def _differential(data, key_type: str, outcomes: dict[str, int]) -> None:
    key, cert = identity(key_type)
    root = etree.fromstring(data.draw(st.sampled_from(originals(key_type)), label="document"))
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        mutate(data, root, key_type)
    # Through bytes, as a request arrives (a tree built by hand may hold what no parser gives: lxml renames
    # prefixes an element's new namespace map takes from its children).
    try:
        root = etree.fromstring(etree.tostring(root))
    except etree.XMLSyntaxError:
        return
    if data.draw(st.booleans(), label="signed again"):
        resign(root, key)
        root = etree.fromstring(etree.tostring(root))
    outcomes["accepted" if agree(root, cert) is not None else "refused"] += 1


@pytest.mark.parametrize("key_type", ["p256", "rsa"])
def test_mutated_documents_get_the_same_verdict_and_signed_tree_from_us_and_signxml(key_type):
    outcomes = {"accepted": 0, "refused": 0}

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        _differential(data, key_type, outcomes)

    run()
    # Both verdicts are exercised, each many times: the fuzz is not all refusals.
    assert min(outcomes.values()) >= EXAMPLES // 10, outcomes


@pytest.mark.parametrize("key_type", ["p256", "rsa"])
def test_non_ascii_text_in_a_cdata_node_is_judged_on_what_it_holds(key_type):
    """A tree mutated in memory may hold a CDATA node (a parsed request never does: the parser merges them
    into text). Its content is what was signed, so both verifiers accept it; the judge once refused it,
    because lxml writes non-ASCII text inside CDATA as character references when it serialises in ASCII,
    which signxml did with the tree it was given (a CI run's fuzz test found this)."""
    _, cert = identity(key_type)
    root = etree.fromstring(signed_by_us(key_type))
    name = root.find(".//{urn:directlink:v1}Creditor/{urn:directlink:v1}Name")
    name.text = etree.CDATA(name.text)
    assert agree(root, cert) is not None
