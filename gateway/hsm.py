"""The gateway's signing key in a PKCS#11 token (an HSM; SoftHSM2 in the tests): created there by
`directlink init --key-store pkcs11`, used there through `TokenKey`, a `signing.SigningKey`. The private key
is generated inside the token as sensitive and not extractable, so no file, process or backup ever holds it.

python-pkcs11 is the optional extra `directlink-gateway[hsm]`: imported here only, when a token is configured.

A key is found by its label and its CKA_ID, which is the certificate's subject key identifier (SHA-1 of the
public key): `keys rotate` adds a new pair under the same label, and each replica picks the one its
certificate file names."""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from gateway.keys import new_key, self_signed
from gateway.settings import Pkcs11Key, Settings

if TYPE_CHECKING:
    import pkcs11


class TokenError(Exception):
    """The token cannot be used as configured: what is wrong and what to set, never the PIN."""


class TokenKey:
    """A private key inside a token, with its certificate: signs, never exports.

    One logged-in session signs for every thread of the process, one signature at a time: a PKCS#11
    session runs one operation at a time, and a second login of the same process is refused by the token."""

    def __init__(self, session: pkcs11.Session, private: Any, certificate: x509.Certificate):
        self._session, self._private, self.certificate = session, private, certificate
        self._lock = threading.Lock()

    def sign(self, data: bytes) -> bytes:
        with self._lock:
            return _signature(self._private, data)

    def close(self) -> None:
        self._session.close()


def open_key(settings: Settings) -> TokenKey:
    """The configured token key for the configured certificate, in a logged-in session kept open."""
    config = _config(settings)
    certificate = x509.load_pem_x509_certificate(settings.path(settings.gateway_cert).read_bytes())
    session = _session(config, _pin(settings), rw=False)
    import pkcs11
    try:
        private = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=config.key_label,
                                  id=_key_id(certificate.public_key()))
    except pkcs11.NoSuchKey:
        session.close()
        raise TokenError(f"token {config.token_label!r} holds no private key labelled {config.key_label!r} for "
                         f"the certificate {settings.gateway_cert} (its subject key identifier)") from None
    return TokenKey(session, private, certificate)


def create_key(settings: Settings, kind: str, common_name: str, organization: str) -> bytes:
    """Generate a key pair inside the token (sensitive, not extractable) and return its self-signed
    certificate in PEM. A key of the same label stays where it is (rotation keeps the old one until the
    operator deletes it), so the new one is told apart by its CKA_ID."""
    config = _config(settings)
    import pkcs11
    from pkcs11.util.ec import encode_named_curve_parameters

    private_template = {pkcs11.Attribute.SENSITIVE: True, pkcs11.Attribute.EXTRACTABLE: False,
                        pkcs11.Attribute.PRIVATE: True, pkcs11.Attribute.SIGN: True}
    usage = pkcs11.MechanismFlag.SIGN | pkcs11.MechanismFlag.VERIFY
    with _session(config, _pin(settings), rw=True) as session:
        if kind == "p256":
            params = session.create_domain_parameters(
                pkcs11.KeyType.EC, {pkcs11.Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                local=True)
            public, private = params.generate_keypair(store=True, label=config.key_label, capabilities=usage,
                                                      private_template=private_template)
        elif kind == "rsa":
            public, private = session.generate_keypair(pkcs11.KeyType.RSA, 2048, store=True,
                                                       label=config.key_label, capabilities=usage,
                                                       private_template=private_template)
        else:
            raise ValueError(f"unknown key kind {kind!r} (rsa or p256)")
        public_key = _public_key(public)
        public[pkcs11.Attribute.ID] = private[pkcs11.Attribute.ID] = _key_id(public_key)
        certificate = _self_signed(partial(_signature, private), public_key, common_name, organization)
    return certificate.public_bytes(serialization.Encoding.PEM)


def _signature(private: Any, data: bytes) -> bytes:
    """The SigningKey form: RSA PKCS#1 v1.5 SHA-256, or ECDSA as r||s."""
    import pkcs11
    if private.key_type == pkcs11.KeyType.EC:
        # Raw ECDSA over our own SHA-256: every token has CKM_ECDSA, not every one CKM_ECDSA_SHA256 (SoftHSM
        # 2.6 has not). Its output is r||s already, the form XML-DSig wants.
        return bytes(private.sign(hashlib.sha256(data).digest(), mechanism=pkcs11.Mechanism.ECDSA))
    return bytes(private.sign(data, mechanism=pkcs11.Mechanism.SHA256_RSA_PKCS))


def _self_signed(sign: Callable[[bytes], bytes], public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey, common_name: str,
                 organization: str) -> x509.Certificate:
    """keys.self_signed, signed by the token. cryptography signs certificates with its own keys only, so a
    throw-away key of the same kind signs first (its signature algorithm is the one to name), the
    certificate is built around the token's public key, and the token's signature replaces the throw-away's."""
    from asn1crypto import x509 as asn1_x509

    kind = "p256" if isinstance(public_key, ec.EllipticCurvePublicKey) else "rsa"
    draft = asn1_x509.Certificate.load(
        self_signed(new_key(kind), common_name, organization, public_key=public_key)
        .public_bytes(serialization.Encoding.DER))
    tbs = draft["tbs_certificate"].dump()
    signature = sign(tbs)
    if kind == "p256":   # certificates carry ECDSA signatures in DER, not XML-DSig's r||s
        signature = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    der = asn1_x509.Certificate({"tbs_certificate": draft["tbs_certificate"],
                                 "signature_algorithm": draft["signature_algorithm"],
                                 "signature_value": signature}).dump()
    certificate = x509.load_der_x509_certificate(der)
    certificate.verify_directly_issued_by(certificate)   # the token's signature over what was drafted
    return certificate


def _config(settings: Settings) -> Pkcs11Key:
    if settings.gateway_key_pkcs11 is None:
        raise TokenError("no token is configured (gateway_key_pkcs11 in directlink.toml)")
    return settings.gateway_key_pkcs11


def _pin(settings: Settings) -> str:
    if settings.gateway_pkcs11_pin is None:
        raise TokenError("the token's PIN is not set: set DIRECTLINK_GATEWAY_PKCS11_PIN in the environment")
    return settings.gateway_pkcs11_pin.get_secret_value()


def _session(config: Pkcs11Key, pin: str, *, rw: bool) -> pkcs11.Session:
    try:
        import pkcs11
    except ImportError:
        raise TokenError("a PKCS#11 token needs python-pkcs11: pip install 'directlink-gateway[hsm]'") from None
    if not config.module.is_file():
        raise TokenError(f"the PKCS#11 module {config.module} does not exist")
    try:
        token = pkcs11.lib(str(config.module)).get_token(token_label=config.token_label)
    except pkcs11.NoSuchToken:
        raise TokenError(f"no token labelled {config.token_label!r} in {config.module}") from None
    except pkcs11.PKCS11Error as err:
        raise TokenError(f"cannot load the PKCS#11 module {config.module}: {err}") from None
    try:
        return token.open(user_pin=pin, rw=rw)
    except pkcs11.UserAlreadyLoggedIn:
        # A login holds for the whole process and token: another session of this process (a gateway's key
        # while `rotate` or a test makes one) logged in with the PIN, and this session shares that login.
        return token.open(rw=rw)
    except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange):
        raise TokenError(f"token {config.token_label!r} refused the PIN (DIRECTLINK_GATEWAY_PKCS11_PIN)") from None
    except pkcs11.PinLocked:
        raise TokenError(f"token {config.token_label!r} has locked its user PIN after wrong tries") from None


def _public_key(public: Any) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    """The token's public key object as a cryptography key."""
    import pkcs11
    from pkcs11.util.ec import encode_ec_public_key
    if public.key_type == pkcs11.KeyType.RSA:
        return rsa.RSAPublicNumbers(int.from_bytes(public[pkcs11.Attribute.PUBLIC_EXPONENT], "big"),
                                    int.from_bytes(public[pkcs11.Attribute.MODULUS], "big")).public_key()
    key = serialization.load_der_public_key(encode_ec_public_key(public))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise TokenError(f"the token made a {type(key).__name__}, not an EC key")
    return key


def _key_id(public_key: Any) -> bytes:
    return x509.SubjectKeyIdentifier.from_public_key(public_key).digest

