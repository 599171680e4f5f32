"""The agent believes an answer only if it answers the request it sent (issue 29, hole 4): the right
RequestDigest and the right InReplyTo, on top of the pinned gateway signature. In process, the gateway's
side played by an httpx transport that signs with a gateway key of the test's own; nothing listens anywhere.

Before the fix the InReplyTo case was taken: a genuine signed answer for another MessageId was believed."""
from __future__ import annotations

import httpx
import pytest
from lxml import etree

from agent.link import Link, NoAnswer
from domain.codes import ResultCode
from gateway import keys
from gateway.protocol import client as dl
from gateway.protocol import messages, signing
from gateway.protocol.xmlsafe import q, text


@pytest.fixture
def link(tmp_path):
    from types import SimpleNamespace
    gateway_key, maker_key = keys.new_key("p256"), keys.new_key("p256")
    gateway_cert = keys.self_signed(gateway_key, "GATEWAY", "Bank")
    for name, pem in (("gateway.cert.pem", keys.cert_pem(gateway_cert)), ("maker.key.pem", keys.key_pem(maker_key)),
                      ("maker.cert.pem", keys.cert_pem(keys.self_signed(maker_key, "maker", "DEMO")))):
        (tmp_path / name).write_bytes(pem)
    cfg = SimpleNamespace(gateway="http://gateway.invalid", client="DEMO", operator="maker",
                          key=tmp_path / "maker.key.pem", certificate=tmp_path / "maker.cert.pem",
                          gateway_certificate=tmp_path / "gateway.cert.pem", timeout_seconds=5,
                          tls_ca=None, tls_certificate=None, tls_key=None)
    made = Link(cfg)
    made.gateway_signer = signing.Signer.from_pem(keys.key_pem(gateway_key), keys.cert_pem(gateway_cert))
    return made


def answering(link: Link, answer) -> None:
    """The 'gateway': `answer(request bytes) -> (InReplyTo, RequestDigest)` of the signed answer it sends."""
    def handle(request: httpx.Request) -> httpx.Response:
        in_reply_to, digest = answer(request.content)
        body = link.gateway_signer.sign(messages.render_response(
            message_id="GW-1", created="2026-12-07T12:00:00+08:00", in_reply_to=in_reply_to, request_digest=digest,
            code=ResultCode.OK, detail="processed", answer=None))
        return httpx.Response(200, content=body)
    link.client.http = httpx.Client(transport=httpx.MockTransport(handle))


def message_id(body: bytes) -> str:
    return text(etree.fromstring(body).find(f"{q('Header')}/{q('MessageId')}"))


def test_the_answer_to_this_request_is_taken(link):
    answering(link, lambda body: (message_id(body), signing.digest_b64(body)))
    assert link.call(dl.account_query()).code == "OK"


def test_a_signed_answer_for_another_message_id_is_not_believed(link):
    answering(link, lambda body: ("ERP-SOMEONE-ELSE", signing.digest_b64(body)))
    with pytest.raises(NoAnswer, match="another message"):
        link.call(dl.account_query())


def test_a_signed_answer_to_another_request_replayed_is_not_believed(link):
    """Held before the fix too (RequestDigest was compared): kept as the other half of the binding."""
    earlier = link.sign(dl.account_query())[2]
    answering(link, lambda body: (message_id(body), signing.digest_b64(earlier)))
    with pytest.raises(NoAnswer, match="another request"):
        link.call(dl.account_query())
