"""The gateway writes its answers' signature itself (gateway/signing.py, Signer): xmlsec1 and signxml, two
independent implementations, must accept every document it signs, with either key type, and refuse it once
a byte of the signed content changes."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree
from processes import xmlsec_valid

from domain.codes import ResultCode
from gateway import keys
from gateway.protocol import messages, signing

NS = "urn:directlink:v1"
E = f"{{{NS}}}"


def documents() -> list[etree._Element]:
    """Answers as the gateway renders them, and shapes a c14n writer gets wrong: Chinese text, escapes,
    attributes in any order, whitespace between elements, a foreign namespace, a comment."""
    answer = messages.render_response(
        message_id="GW-1", created=dt.datetime(2026, 11, 25, 20, 0, tzinfo=dt.UTC).isoformat(),
        in_reply_to="M-1", request_digest="ZGlnZXN0", code=ResultCode.OK, detail="processed", answer=None)
    odd = etree.fromstring(
        f'<Response xmlns="{NS}" xmlns:x="urn:other" version="1">\n  <Header z="2" a="1">上海某某科技 &amp; &lt;co&gt;'
        f'</Header>\n  <!-- a comment -->\n  <x:Extra x:flag="yes">\t text\r\n</x:Extra>\n</Response>'.encode())
    return [answer, odd]


@pytest.mark.parametrize("key_type", ["p256", "rsa"])
def test_what_the_gateway_signs_verifies_with_xmlsec1_and_signxml_and_breaks_when_changed(tmp_path, key_type):
    key = keys.new_key(key_type)
    cert = keys.self_signed(key, "GATEWAY", "DirectLink test", days=30)
    signer = signing.Signer.from_pem(keys.key_pem(key), keys.cert_pem(cert))
    cert_file = tmp_path / "gateway.cert.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    for doc in documents():
        signed = signer.sign(doc)
        assert xmlsec_valid(signed, cert_file, tmp_path), signed.decode()
        root = etree.fromstring(signed)
        signing.check_profile(signing.signature_element(root))
        assert signing.verify(root, cert).signed.tag == f"{E}Response"
        tampered = signed.replace(b'version="1"', b'version="2"', 1)
        assert tampered != signed and not xmlsec_valid(tampered, cert_file, tmp_path)
        with pytest.raises(signing.SignatureRejected):
            signing.verify(etree.fromstring(tampered), cert)


def test_an_answer_without_requestdigest_is_trusted_only_as_a_refusal_that_accepted_nothing(gateway):
    """A signed answer that names no request could be any request's, replayed: the client takes one only
    with the codes the gateway signs before it has read a request (nothing was accepted)."""
    from domain.errors import SignatureRejected
    from gateway.protocol import client as dl

    def answer(code: ResultCode, digest: str | None) -> bytes:
        return gateway.signer.sign(messages.render_response(
            message_id="GW-1", created="2026-11-26T12:00:00+08:00", in_reply_to=None, request_digest=digest,
            code=code, detail="x", answer=None))

    cert = gateway.signer.certificate
    with pytest.raises(SignatureRejected, match="names no request"):
        dl.verify_answer(200, answer(ResultCode.OK, None), cert, "bXktcmVxdWVzdA==")
    assert dl.verify_answer(503, answer(ResultCode.OVERLOADED, None), cert, "bXktcmVxdWVzdA==").code == "OVERLOADED"
    assert dl.verify_answer(413, answer(ResultCode.XML_TOO_LARGE, None), cert, "bXktcmVxdWVzdA==").code == \
        "XML_TOO_LARGE"
    assert dl.verify_answer(200, answer(ResultCode.OK, "bXktcmVxdWVzdA=="), cert, "bXktcmVxdWVzdA==").code == "OK"
    with pytest.raises(SignatureRejected, match="another request"):
        dl.verify_answer(200, answer(ResultCode.OK, "b3RoZXI="), cert, "bXktcmVxdWVzdA==")


def test_an_answer_is_taken_only_for_the_message_it_names_in_inreplyto():
    """InReplyTo must be the MessageId sent: a signed answer quoting our RequestDigest under another
    MessageId is refused (before issue 29 only RequestDigest was compared). Without InReplyTo (INTERNAL is
    answered so) RequestDigest binds it alone."""
    from domain.errors import SignatureRejected
    from gateway.protocol import client as dl
    key = keys.new_key("p256")
    cert = keys.self_signed(key, "GATEWAY", "DirectLink test", days=1)
    signer = signing.Signer.from_pem(keys.key_pem(key), keys.cert_pem(cert))

    def answer(code: ResultCode, in_reply_to: str | None, digest: str | None = "ZGln") -> bytes:
        return signer.sign(messages.render_response(
            message_id="GW-1", created="2026-11-26T12:00:00+08:00", in_reply_to=in_reply_to,
            request_digest=digest, code=code, detail="x", answer=None))

    assert dl.verify_answer(200, answer(ResultCode.OK, "ERP-1"), cert, "ZGln", in_reply_to="ERP-1").code == "OK"
    with pytest.raises(SignatureRejected, match="another message"):
        dl.verify_answer(200, answer(ResultCode.OK, "ERP-2"), cert, "ZGln", in_reply_to="ERP-1")
    assert dl.verify_answer(500, answer(ResultCode.INTERNAL, None), cert, "ZGln", in_reply_to="ERP-1").code == \
        "INTERNAL"
    with pytest.raises(SignatureRejected, match="another request"):
        dl.verify_answer(500, answer(ResultCode.INTERNAL, None, "b3RoZXI="), cert, "ZGln", in_reply_to="ERP-1")
    assert dl.verify_answer(503, answer(ResultCode.OVERLOADED, None, None), cert, "ZGln",
                            in_reply_to="ERP-1").code == "OVERLOADED"


def test_the_message_id_the_client_expects_back_is_the_one_the_gateway_echoes():
    from gateway.protocol import client as dl

    def request(message_id: str) -> bytes:
        return f'<Request xmlns="{NS}" version="1"><Header><MessageId>{message_id}</MessageId></Header>' \
               f'</Request>'.encode()

    assert dl.echoed_message_id(request("ERP-20261126-01")) == "ERP-20261126-01"
    assert dl.echoed_message_id(request("x" * 36)) is None          # too long: the gateway echoes none
    assert dl.echoed_message_id(request("two words")) is None
