"""The SM2/SM3 signature profile, judged by an independent implementation: the `openssl` command (OpenSSL 3,
SM2 with `-sigopt distid:`) signs what we verify and verifies what we sign, in both directions, with the
default identifier and with another; and the published example of GM/T 0003.5-2012 Annex A.2 (also
GB/T 32918.5-2017 Annex A): its Z_A, its digest e and its signature (r, s) over "message digest"."""
from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree
from sm2_judge import DS, openssl, openssl_pair, signed_by_openssl

from domain.codes import ResultCode
from domain.errors import SignatureRejected
from gateway import keys
from gateway.protocol import signing, sm2

# GM/T 0003.5-2012 Annex A.2: the example on the recommended curve, identifier 1234567812345678.
VECTOR = dict(
    private="3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8",
    public="09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
           "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13",
    z="B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3",
    e="F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640",
    r="F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3",
    s="B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA")


@pytest.fixture
def ids():
    yield
    sm2.set_distinguishing_id(sm2.DEFAULT_ID)


def test_the_published_example_z_digest_and_signature():
    public = bytes.fromhex(VECTOR["public"])
    assert sm2.z_a(public, b"1234567812345678").hex().upper() == VECTOR["z"]
    assert sm2.message_digest(public, b"message digest").hex().upper() == VECTOR["e"]
    rs = bytes.fromhex(VECTOR["r"] + VECTOR["s"])
    assert sm2.PublicKey(public).verify(rs, b"message digest")
    assert not sm2.PublicKey(public).verify(rs, b"message digesT")
    assert not sm2.PublicKey(public).verify(rs, b"message digest", b"ALICE123@YAHOO.COM")
    # our key reader takes the example's private key and signs what the public key verifies
    key = sm2.PrivateKey(bytes.fromhex(VECTOR["private"]), sm2.PublicKey(public))
    assert sm2.PublicKey(public).verify(key.sign(b"message digest"), b"message digest")


def test_sm3_of_the_standards_examples():
    # GM/T 0004-2012 Annex A: "abc" and "abcd" x 16
    assert sm2.sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert sm2.sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


DOC = "<Request xmlns='urn:directlink:v1'><Amount>1004.05</Amount><Name>深圳华为技术有限公司</Name></Request>"


def test_what_openssl_signs_verifies_here_and_an_edit_does_not(tmp_path):
    key, cert_file = openssl_pair(tmp_path)
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    signed = signed_by_openssl(DOC.encode(), key, cert_file, tmp_path)
    verified = signing.verify(etree.fromstring(signed), cert)
    assert verified.signed.findtext("{urn:directlink:v1}Amount") == "1004.05"
    with pytest.raises(SignatureRejected):
        signing.verify(etree.fromstring(signed.replace(b"1004.05", b"9004.05")), cert)


def test_what_we_sign_verifies_with_openssl(tmp_path):
    key_file, cert_file = openssl_pair(tmp_path)   # openssl's PEM forms load here too
    signer = signing.Signer.from_pem(key_file.read_bytes(), cert_file.read_bytes())
    signed = etree.fromstring(signer.sign(etree.fromstring(DOC.encode())))
    sig = signed[-1]
    info = etree.tostring(sig.find(f"{{{DS}}}SignedInfo"), method="c14n", exclusive=True)
    rs = base64.b64decode(sig.findtext(f"{{{DS}}}SignatureValue"))
    (tmp_path / "info.bin").write_bytes(info)
    (tmp_path / "sig.der").write_bytes(encode_dss_signature(int.from_bytes(rs[:32], "big"),
                                                            int.from_bytes(rs[32:], "big")))
    assert openssl("x509", "-in", str(cert_file), "-pubkey", "-noout").returncode == 0
    (tmp_path / "pub.pem").write_bytes(openssl("x509", "-in", str(cert_file), "-pubkey", "-noout").stdout)

    def openssl_verifies(distid: str) -> bool:
        done = openssl("dgst", "-sm3", "-verify", str(tmp_path / "pub.pem"), "-sigopt", f"distid:{distid}",
                       "-signature", str(tmp_path / "sig.der"), str(tmp_path / "info.bin"))
        return done.returncode == 0 and b"Verified OK" in done.stdout

    assert openssl_verifies("1234567812345678") and not openssl_verifies("ALICE123@YAHOO.COM")
    # and the digest of the document is SM3's, as openssl computes it
    unsigned = etree.fromstring(DOC.encode())
    expected = openssl("dgst", "-sm3", "-binary", data=etree.tostring(unsigned, method="c14n", exclusive=True)).stdout
    assert base64.b64decode(sig.findtext(f".//{{{DS}}}DigestValue")) == expected


def test_another_distinguishing_identifier_both_ways(tmp_path, ids):
    key, cert_file = openssl_pair(tmp_path)
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    signed = signed_by_openssl(DOC.encode(), key, cert_file, tmp_path, distid="DIRECTLINK-BANK-01")
    with pytest.raises(SignatureRejected):             # the default identifier does not fit
        signing.verify(etree.fromstring(signed), cert)
    sm2.set_distinguishing_id(b"DIRECTLINK-BANK-01")
    assert signing.verify(etree.fromstring(signed), cert)


def test_our_keys_and_certificates_are_read_by_openssl(tmp_path):
    cert_file = keys.write_key_pair(tmp_path, "gw", "DirectLink gateway", "演示银行", "sm2")
    text = openssl("x509", "-in", str(cert_file), "-noout", "-text").stdout.decode()
    assert "SM2-with-SM3" in text and "ASN1 OID: SM2" in text
    assert openssl("verify", "-CAfile", str(cert_file), str(cert_file)).returncode == 0   # its own signature
    # openssl signs with our key file; our verifier accepts it under our certificate
    signed = signed_by_openssl(DOC.encode(), tmp_path / "gw.key.pem", cert_file, tmp_path)
    assert signing.verify(etree.fromstring(signed), x509.load_pem_x509_certificate(cert_file.read_bytes()))


@pytest.mark.parametrize(("method", "digest"), [
    (signing.SM2_SM3, signing.SHA256),          # SM2 with a SHA-256 digest
    (signing.ECDSA_SHA256, signing.SM3),        # an SM3 digest with ECDSA
    ("http://www.w3.org/2000/09/xmldsig#sm2-sm3", signing.SM3),   # the older E-Port URI: not this profile
])
def test_mixed_or_foreign_sm_algorithms_are_forbidden(tmp_path, method, digest):
    key, cert_file = openssl_pair(tmp_path)
    signed = etree.fromstring(signed_by_openssl(DOC.encode(), key, cert_file, tmp_path))
    signed.find(f".//{{{DS}}}SignatureMethod").set("Algorithm", method)
    signed.find(f".//{{{DS}}}DigestMethod").set("Algorithm", digest)
    with pytest.raises(SignatureRejected) as err:
        signing.check_profile(signed[-1])
    assert err.value.code == ResultCode.SIG_ALGORITHM_FORBIDDEN


def test_an_sm2_signature_under_a_p256_certificate_does_not_verify(tmp_path):
    key, cert_file = openssl_pair(tmp_path)
    other = keys.write_key_pair(tmp_path, "p", "P-256 operator", "Demo", "p256")
    signed = signed_by_openssl(DOC.encode(), key, cert_file, tmp_path)
    with pytest.raises(SignatureRejected, match="does not verify"):
        signing.verify(etree.fromstring(signed), x509.load_pem_x509_certificate(other.read_bytes()))
