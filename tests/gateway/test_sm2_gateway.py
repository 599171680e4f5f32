"""A gateway whose key and operators' keys are SM2 (`directlink init --key-type sm2`): requests signed by the
`openssl` command are accepted, the gateway's SM2 answers verify with it, and a whole payment runs through
to its signed receipt."""
from __future__ import annotations

import base64
import datetime as dt

import pytest
from conftest import OPERATING, SUPPLIER
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree
from sm2_judge import DS, openssl, signed_by_openssl

from gateway.protocol import client as dl
from gateway.protocol import receipts, signing
from gateway.protocol.xmlsafe import q, text

pytestmark = pytest.mark.key_type("sm2")


def test_an_sm2_home_pays_and_its_receipt_verifies(home, maker):
    cert = x509.load_pem_x509_certificate(home.path(home.gateway_cert).read_bytes())
    assert signing.method_of(cert) == signing.SM2_SM3
    answer = maker.call(dl.payment_order(dl.payment("SM2-1", OPERATING, "1004.05", "深圳华为技术有限公司", SUPPLIER)))
    assert answer.code == "OK" and text(answer.body.find(f"{q('PaymentStatus')}/{q('State')}")) == "SETTLED"
    payment_id = text(answer.body.find(f"{q('PaymentStatus')}/{q('PaymentId')}"))
    [item] = maker.call(dl.receipt_query(payment_ids=(payment_id,))).body.findall(q("Receipt"))
    for tag in ("Xml", "Pdf"):
        checked = receipts.verify_file(base64.b64decode(text(item.find(q(tag)))), cert)
        assert checked.receipt.capital == "壹仟零肆元零伍分"


def test_a_request_signed_by_openssl_is_accepted_and_the_answer_verifies_with_openssl(home, http, tmp_path):
    demo = home.home / "demo"
    now = dt.datetime.now(dt.UTC).astimezone().isoformat(timespec="seconds")
    request = (f"<Request xmlns='urn:directlink:v1' version='1'><Header><MessageId>OSSL-{tmp_path.name[-8:]}"
               f"</MessageId><Created>{now}</Created><Client>DEMO</Client><Operator>maker</Operator></Header>"
               f"<BalanceQuery><Account>{OPERATING}</Account></BalanceQuery></Request>").encode()
    body = signed_by_openssl(request, demo / "maker.key.pem", demo / "maker.cert.pem", tmp_path)
    reply = http.post("/v1/messages", content=body, headers={"Content-Type": "application/xml"})
    root = etree.fromstring(reply.content)
    assert root.find(q("Result")).get("code") == "OK", reply.content[:400]
    assert root.find(f"{q('BalanceReport')}/{q('Balance')}/{q('Booked')}") is not None
    # the answer: its SignatureValue checked by openssl over the canonical SignedInfo, its digest by SM3
    sig = root[-1]
    (tmp_path / "info.bin").write_bytes(etree.tostring(sig.find(f"{{{DS}}}SignedInfo"), method="c14n",
                                                       exclusive=True))
    rs = base64.b64decode(sig.findtext(f"{{{DS}}}SignatureValue"))
    (tmp_path / "sig.der").write_bytes(encode_dss_signature(int.from_bytes(rs[:32], "big"),
                                                            int.from_bytes(rs[32:], "big")))
    (tmp_path / "gw.pub.pem").write_bytes(openssl("x509", "-in", str(home.path(home.gateway_cert)), "-pubkey",
                                                  "-noout").stdout)
    done = openssl("dgst", "-sm3", "-verify", str(tmp_path / "gw.pub.pem"), "-sigopt", "distid:1234567812345678",
                   "-signature", str(tmp_path / "sig.der"), str(tmp_path / "info.bin"))
    assert b"Verified OK" in done.stdout, done.stderr
    unsigned = etree.fromstring(reply.content)
    unsigned.remove(unsigned[-1])
    digest = openssl("dgst", "-sm3", "-binary", data=etree.tostring(unsigned, method="c14n", exclusive=True)).stdout
    assert base64.b64decode(sig.findtext(f".//{{{DS}}}DigestValue")) == digest


def test_an_openssl_signed_request_with_an_edited_amount_is_refused(home, http, tmp_path):
    demo = home.home / "demo"
    now = dt.datetime.now(dt.UTC).astimezone().isoformat(timespec="seconds")
    op = etree.tostring(dl.payment_order(dl.payment("SM2-X", OPERATING, "1.00", "ACME", SUPPLIER))).decode()
    request = (f"<Request xmlns='urn:directlink:v1' version='1'><Header><MessageId>OSSLX-{tmp_path.name[-8:]}"
               f"</MessageId><Created>{now}</Created><Client>DEMO</Client><Operator>maker</Operator></Header>"
               f"{op}</Request>").encode()
    body = signed_by_openssl(request, demo / "maker.key.pem", demo / "maker.cert.pem", tmp_path)
    reply = http.post("/v1/messages", content=body.replace(b">1.00<", b">9.00<"),
                      headers={"Content-Type": "application/xml"})
    assert etree.fromstring(reply.content).find(q("Result")).get("code") == "SIG_INVALID"


@pytest.mark.slow
def test_init_rotate_and_certs_add_take_sm2(tmp_path):
    """The commands as an operator runs them: an SM2 home, an SM2 certificate made by openssl registered for
    an operator, and the gateway key rotated to a new SM2 key (the old certificate kept as the previous one)."""
    from processes import cli
    from sm2_judge import openssl_pair
    home = tmp_path / "gw"
    done = cli("init", str(home), "--key-type", "sm2")
    assert done.returncode == 0, done.stderr
    first = (home / "certs" / "gateway.cert.pem").read_bytes()
    assert signing.method_of(x509.load_pem_x509_certificate(first)) == signing.SM2_SM3
    _, cert = openssl_pair(tmp_path, "checker2")
    done = cli("certs", "add", "DEMO", "checker", str(cert), "--home", str(home))
    assert done.returncode == 0 and done.stdout.strip() == signing.fingerprint(
        x509.load_pem_x509_certificate(cert.read_bytes())), done.stderr
    done = cli("keys", "rotate", "--key-type", "sm2", "--home", str(home))
    assert done.returncode == 0, done.stderr
    rotated = x509.load_pem_x509_certificate((home / "certs" / "gateway.cert.pem").read_bytes())
    assert signing.method_of(rotated) == signing.SM2_SM3
    assert (home / "certs" / "gateway.previous.cert.pem").read_bytes() == first
    key = signing.PemKey((home / "certs" / "gateway.key.pem").read_bytes(),
                         (home / "certs" / "gateway.cert.pem").read_bytes())
    assert signing.Signer(key).method == signing.SM2_SM3
