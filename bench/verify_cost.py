"""What verifying one signed one-payment PaymentOrder costs: the gateway's own verifier (signing.verify)
against signxml's XMLVerifier with the profile's configuration (what the gateway used before), for P-256 and
RSA-2048 keys; and for SM2/SM3, which signxml does not know, the gateway's verifier and signer alone.
Run: .venv/bin/python bench/verify_cost.py"""
from __future__ import annotations

import timeit

from lxml import etree
from signxml import DigestAlgorithm, SignatureConfiguration, SignatureMethod, XMLVerifier

from gateway import keys
from gateway.protocol import client as dl
from gateway.protocol import signing
from gateway.protocol.messages import E

CONFIG = SignatureConfiguration(
    location="./", expect_references=1, require_x509=False,
    signature_methods=frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.ECDSA_SHA256}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256}))
ROUNDS = 2000


def one_payment() -> etree._Element:
    return E.Request(E.Header(E.MessageId("ERP-1"), E.Created("2026-11-26T12:00:00+08:00"), E.Client("DEMO"),
                              E.Operator("maker")),
                     dl.payment_order(dl.payment("INV-1", "6222000000001001", "100.00", "上海某某科技",
                                                 "6222000000002001")), version="1")


def cost(call) -> float:
    """Microseconds a call, best of three runs of ROUNDS."""
    call()
    return min(timeit.repeat(call, number=ROUNDS, repeat=3)) / ROUNDS * 1e6


def main() -> None:
    for kind in ("p256", "rsa"):
        key = keys.new_key(kind)
        cert = keys.self_signed(key, "DEMO/maker", "bench")
        root = etree.fromstring(signing.Signer.from_pem(keys.key_pem(key), keys.cert_pem(cert)).sign(one_payment()))
        before = cost(lambda r=root, c=cert: XMLVerifier().verify(r, x509_cert=c, expect_config=CONFIG))
        now = cost(lambda r=root, c=cert: signing.verify(r, c))
        print(f"{kind:5} signxml {before:6.0f} us   signing.verify {now:6.0f} us   ({before / now:.1f}x)")
    for kind in ("p256", "sm2"):
        key = keys.new_key(kind)
        cert = keys.self_signed(key, "DEMO/maker", "bench")
        signer = signing.Signer.from_pem(keys.key_pem(key), keys.cert_pem(cert))
        root = etree.fromstring(signer.sign(one_payment()))
        signed = cost(lambda s=signer: s.sign(one_payment()))
        verified = cost(lambda r=root, c=cert: signing.verify(r, c))
        print(f"{kind:5} Signer.sign {signed:6.0f} us   signing.verify {verified:6.0f} us")


if __name__ == "__main__":
    main()
