"""SM2 signatures over SM3 (GM/T 0003, GM/T 0004) and SM2 keys and certificates (GM/T 0010, GM/T 0015), as
the signature profile's third algorithm beside RSA and ECDSA P-256.

The `cryptography` package reads an SM2 certificate's fields but has no SM2 key, so:
- the signature itself is gmssl-pyx's (GmSSL, C, statically linked): SM2 over an SM3 digest we hand it;
- that digest is e = SM3(Z_A || M), with Z_A the hash of the signer's distinguishing identifier, the curve
  and the public key (GM/T 0003.2 section 5.5), computed here with hashlib's SM3 (OpenSSL's). gmssl-pyx can
  hash Z_A itself, but its whole-message call takes 8 ms against 0.4 ms for the digest call;
- keys and certificates are read and written with asn1crypto, in the forms OpenSSL and GmSSL use (PKCS#8
  with id-ecPublicKey and the curve sm2p256v1, certificates signed with SM2-with-SM3).

The distinguishing identifier defaults to 1234567812345678 (GM/T 0009); `set_distinguishing_id` changes it
for the process (the gateway sets it from `sm2_distinguishing_id`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import gmssl_pyx
from asn1crypto import core as asn1_core
from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

CURVE_OID = "1.2.156.10197.1.301"          # sm2p256v1 (GM/T 0006)
SIGNATURE_OID = "1.2.156.10197.1.501"      # SM2-with-SM3, for certificates (GM/T 0006)
EC_PUBLIC_KEY_OID = "1.2.840.10045.2.1"
DEFAULT_ID = b"1234567812345678"           # GM/T 0009's default distinguishing identifier
# The curve of GM/T 0003.5, for Z_A.
_A = bytes.fromhex("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC")
_B = bytes.fromhex("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93")
_GX = bytes.fromhex("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7")
_GY = bytes.fromhex("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0")
_distinguishing_id = DEFAULT_ID
# asn1crypto sizes EC private keys by their curve: it ships the NIST and SEC curves, not this one.
if CURVE_OID not in asn1_keys.NamedCurve._map:
    asn1_keys.NamedCurve.register("sm2p256v1", CURVE_OID, 32)


def set_distinguishing_id(value: bytes) -> None:
    """The identifier every SM2 signature of this process is made and checked with (both sides must agree)."""
    global _distinguishing_id
    if not 0 < len(value) < 8192:
        raise ValueError("an SM2 distinguishing identifier is 1 to 8191 bytes")
    _distinguishing_id = value


def distinguishing_id() -> bytes:
    return _distinguishing_id


def sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


def z_a(public: bytes, uid: bytes) -> bytes:
    """Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A), ENTL_A the identifier's length in bits."""
    return sm3((len(uid) * 8).to_bytes(2, "big") + uid + _A + _B + _GX + _GY + public)


def message_digest(public: bytes, data: bytes, uid: bytes | None = None) -> bytes:
    """e = SM3(Z_A || M): what the SM2 signature signs."""
    return sm3(z_a(public, _distinguishing_id if uid is None else uid) + data)


@dataclass(frozen=True)
class PublicKey:
    """An SM2 public key: x || y, 32 bytes each."""

    point: bytes

    def verify(self, signature: bytes, data: bytes, uid: bytes | None = None) -> bool:
        """`signature` as XML-DSig carries it: r || s, 32 bytes each."""
        if len(signature) != 64:
            return False
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        try:
            return bool(gmssl_pyx.sm2_verify_sm3_digest(self.point, message_digest(self.point, data, uid), der))
        except gmssl_pyx.GmsslInnerError:
            return False


@dataclass(frozen=True)
class PrivateKey:
    scalar: bytes      # 32 bytes
    public: PublicKey

    def sign(self, data: bytes, uid: bytes | None = None) -> bytes:
        """r || s, 32 bytes each."""
        der = gmssl_pyx.sm2_sign_sm3_digest(self.scalar, message_digest(self.public.point, data, uid))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def pem(self) -> bytes:
        """PKCS#8, unencrypted, as `openssl genpkey -algorithm SM2` writes it."""
        info = asn1_keys.PrivateKeyInfo({
            "version": 0,
            "private_key_algorithm": asn1_keys.PrivateKeyAlgorithm({
                "algorithm": "ec", "parameters": asn1_keys.ECDomainParameters(name="named", value=CURVE_OID)}),
            "private_key": asn1_keys.ECPrivateKey({
                "version": "ecPrivkeyVer1", "private_key": int.from_bytes(self.scalar, "big"),
                "public_key": b"\x04" + self.public.point}),
        })
        return asn1_pem.armor("PRIVATE KEY", info.dump())


def generate() -> PrivateKey:
    public, private = gmssl_pyx.sm2_key_generate()
    return PrivateKey(private, PublicKey(public))


def load_private(pem: bytes, public: PublicKey) -> PrivateKey:
    """An SM2 private key from PEM (PKCS#8 or SEC1 "EC PRIVATE KEY", unencrypted); `public` is its
    certificate's key, which it must match (checked by signing once)."""
    kind, _, der = asn1_pem.unarmor(pem)
    if kind == "PRIVATE KEY":
        info = asn1_keys.PrivateKeyInfo.load(der)
        if _curve(info["private_key_algorithm"]["parameters"]) != CURVE_OID:
            raise ValueError("not an SM2 private key")
        ec_key = info["private_key"].parsed
    elif kind == "EC PRIVATE KEY":
        ec_key = asn1_keys.ECPrivateKey.load(der)
    else:
        raise ValueError(f"an SM2 key must be an unencrypted PKCS#8 or EC private key, not {kind}")
    key = PrivateKey(int(ec_key["private_key"].native).to_bytes(32, "big"), public)
    probe = b"directlink sm2 key check"
    if not public.verify(key.sign(probe), probe):
        raise ValueError("the SM2 key does not belong to the certificate")
    return key


def _curve(parameters: Any) -> str | None:
    if isinstance(parameters, asn1_keys.ECDomainParameters) and parameters.name == "named":
        value: str = parameters.chosen.dotted
        return value
    return None


def public_key_of(certificate: x509.Certificate) -> PublicKey | None:
    """The certificate's key if it is SM2 (id-ecPublicKey on sm2p256v1), else None."""
    if certificate.public_key_algorithm_oid.dotted_string != EC_PUBLIC_KEY_OID:
        return None
    der = certificate.public_bytes(serialization.Encoding.DER)
    spki = asn1_x509.Certificate.load(der)["tbs_certificate"]["subject_public_key_info"]
    if _curve(spki["algorithm"]["parameters"]) != CURVE_OID:
        return None
    point = bytes(spki["public_key"].native)
    if len(point) != 65 or point[0] != 4:
        raise ValueError("an SM2 public key must be an uncompressed point")
    return PublicKey(point[1:])


def certificate(key: PrivateKey, tbs: asn1_x509.TbsCertificate) -> x509.Certificate:
    """Finish a drafted TBSCertificate for `key`: its public key and algorithms set to SM2, signed by `key`
    itself (a self-signed certificate, signed with the default identifier as GM/T 0015 certificates are)."""
    algorithm = asn1_x509.SignedDigestAlgorithm({"algorithm": SIGNATURE_OID})
    tbs["signature"] = algorithm
    tbs["subject_public_key_info"] = asn1_keys.PublicKeyInfo({
        "algorithm": asn1_keys.PublicKeyAlgorithm({
            "algorithm": "ec", "parameters": asn1_keys.ECDomainParameters(name="named", value=CURVE_OID)}),
        "public_key": b"\x04" + key.public.point})
    rs = key.sign(tbs.dump(force=True), DEFAULT_ID)
    der = encode_dss_signature(int.from_bytes(rs[:32], "big"), int.from_bytes(rs[32:], "big"))
    cert = asn1_x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": algorithm,
                                  "signature_value": asn1_core.OctetBitString(der)})
    return x509.load_der_x509_certificate(cert.dump())
