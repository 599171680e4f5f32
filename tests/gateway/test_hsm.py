"""The gateway's signing key in a PKCS#11 token, on SoftHSM2: `init` makes the key inside the token, the
gateway signs its answers there (signxml and xmlsec1 verify them), the key cannot be read out, rotation and
audit anchors work with it, and a wrong or missing PIN stops the start with a clear message.

SoftHSM2 is required, not optional: `make test` installs it, and without it these tests fail."""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pkcs11
import pytest
from conftest import operator_client
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from pkcs11.util.ec import encode_ec_public_key
from processes import CLI, env_with, xmlsec_valid
from signxml import XMLVerifier

from gateway import audit
from gateway.app import build_gateway, create_app
from gateway.protocol import client as dl
from gateway.rotation import rotate_gateway_key
from gateway.settings import Pkcs11Key, Settings
from gateway.setup import init_home

PIN, SO_PIN, TOKEN = "4711-0815", "so-secret", "directlink-test"
MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
           "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so")


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory) -> Path:
    """One SoftHSM2 token for the session, in a directory of its own (SOFTHSM2_CONF); returns the module.
    The PKCS#11 library reads its configuration once per process, so every test shares this token and
    tells its keys apart by label."""
    util, module = shutil.which("softhsm2-util"), next((Path(m) for m in MODULES if Path(m).is_file()), None)
    if util is None or module is None:
        pytest.fail("SoftHSM2 is not installed (apt-get install softhsm2; `make test` does it)")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run([util, "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", SO_PIN],
                   check=True, capture_output=True)
    yield module
    if previous is None:
        del os.environ["SOFTHSM2_CONF"]
    else:
        os.environ["SOFTHSM2_CONF"] = previous


def token_config(module: Path) -> Pkcs11Key:
    return Pkcs11Key(module=module, token_label=TOKEN, key_label=f"gw-{secrets.token_hex(4)}")


@pytest.fixture
def hsm_home(tmp_path, db_url, softhsm, monkeypatch) -> Settings:
    """A gateway home whose key was made in the token by `init` (P-256)."""
    monkeypatch.setenv("DIRECTLINK_GATEWAY_PKCS11_PIN", PIN)
    return init_home(tmp_path / "home", "p256", db_url, token_config(softhsm))


def stop(gateway) -> None:
    """Dispose of the database and close the token session: a process's login lasts while a session is open,
    and the PIN tests need none open."""
    gateway.engine.dispose()
    gateway.signer.key.close()


@contextlib.contextmanager
def token_keys(config: Pkcs11Key, object_class):
    """The token's objects of a class under the configured label, while a session is open."""
    with pkcs11.lib(str(config.module)).get_token(token_label=TOKEN).open(user_pin=PIN) as session:
        yield list(session.get_objects({pkcs11.Attribute.CLASS: object_class,
                                        pkcs11.Attribute.LABEL: config.key_label}))


@pytest.mark.parametrize("key_type", ["p256", "rsa"])
def test_the_gateway_signs_its_answers_in_the_token(tmp_path, db_url, softhsm, monkeypatch, key_type):
    monkeypatch.setenv("DIRECTLINK_GATEWAY_PKCS11_PIN", PIN)
    home = init_home(tmp_path / "home", key_type, db_url, token_config(softhsm))
    assert not (home.home / "certs" / "gateway.key.pem").exists()          # no key on disk
    assert PIN not in (home.home / "directlink.toml").read_text()
    cert_file = home.path(home.gateway_cert)
    certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    certificate.verify_directly_issued_by(certificate)                      # self-signed by the token key
    gateway = build_gateway(home)
    try:
        with TestClient(create_app(gateway)) as http:
            maker = operator_client(home, http, "maker")
            body = maker.request(dl.balance_query())
            reply = http.post("/v1/messages", content=body, headers={"Content-Type": "application/xml"})
            answer = dl.verify_answer(reply.status_code, reply.content, maker.gateway_cert, dl.signing.digest_b64(body))
            assert answer.code == "OK"
            assert XMLVerifier().verify(reply.content, x509_cert=cert_file.read_text()).signed_xml is not None
            assert xmlsec_valid(reply.content, cert_file, tmp_path)
            assert http.get("/v1/certificate").content == cert_file.read_bytes()
    finally:
        stop(gateway)


def test_the_private_key_cannot_leave_the_token(hsm_home):
    certificate = x509.load_pem_x509_certificate(hsm_home.path(hsm_home.gateway_cert).read_bytes())
    with token_keys(hsm_home.gateway_key_pkcs11, pkcs11.ObjectClass.PRIVATE_KEY) as [private]:
        assert private[pkcs11.Attribute.EXTRACTABLE] is False and private[pkcs11.Attribute.NEVER_EXTRACTABLE] is True
        assert private[pkcs11.Attribute.SENSITIVE] is True and private[pkcs11.Attribute.ALWAYS_SENSITIVE] is True
        assert private[pkcs11.Attribute.TOKEN] is True and private[pkcs11.Attribute.PRIVATE] is True
        with pytest.raises(pkcs11.AttributeSensitive):
            private[pkcs11.Attribute.VALUE]                                 # the secret scalar
        # The certificate names the pair in the token: CKA_ID is its subject key identifier.
        assert private[pkcs11.Attribute.ID] == x509.SubjectKeyIdentifier.from_public_key(
            certificate.public_key()).digest


@pytest.mark.parametrize(("pin", "says"), [("0000-0000", "refused the PIN"), (None, "DIRECTLINK_GATEWAY_PKCS11_PIN")])
def test_a_wrong_or_missing_pin_stops_the_start_with_a_clear_message(hsm_home, monkeypatch, pin, says):
    if pin is None:
        monkeypatch.delenv("DIRECTLINK_GATEWAY_PKCS11_PIN")
    else:
        monkeypatch.setenv("DIRECTLINK_GATEWAY_PKCS11_PIN", pin)
    with pytest.raises(SystemExit) as stopped:
        build_gateway(Settings.load(hsm_home.home))
    assert says in str(stopped.value) and "PKCS#11 token" in str(stopped.value)
    assert PIN not in str(stopped.value) and (pin is None or pin not in str(stopped.value))


def test_a_certificate_of_another_key_is_a_clear_startup_error(hsm_home, tmp_path):
    other = init_home(tmp_path / "other", "p256", "sqlite:///" + str(tmp_path / "other.db"))
    shutil.copy(other.path(other.gateway_cert), hsm_home.path(hsm_home.gateway_cert))
    with pytest.raises(SystemExit) as stopped:
        build_gateway(hsm_home)
    assert "holds no private key labelled" in str(stopped.value)


def test_serve_with_a_wrong_pin_exits_at_once_naming_the_token(hsm_home):
    done = subprocess.run([*CLI, "serve", "--home", str(hsm_home.home)], capture_output=True, text=True,
                          timeout=60, env=env_with(DIRECTLINK_GATEWAY_PKCS11_PIN="1234"))
    assert done.returncode != 0 and "refused the PIN" in done.stderr and "Traceback" not in done.stderr


def test_init_with_a_wrong_pin_leaves_no_home_and_a_right_one_makes_the_key(tmp_path, softhsm):
    args = [*CLI, "init", str(tmp_path / "home"), "--key-type", "p256", "--key-store", "pkcs11",
            "--pkcs11-module", str(softhsm), "--token-label", TOKEN, "--key-label", "gw-cli"]
    refused = subprocess.run(args, capture_output=True, text=True, timeout=60,
                             env=env_with(DIRECTLINK_GATEWAY_PKCS11_PIN="1234"))
    assert refused.returncode == 2 and "refused the PIN" in refused.stderr
    assert not (tmp_path / "home" / "directlink.toml").exists()
    made = subprocess.run(args, capture_output=True, text=True, timeout=60,
                          env=env_with(DIRECTLINK_GATEWAY_PKCS11_PIN=PIN))
    assert made.returncode == 0, made.stderr
    settings = Settings.load(tmp_path / "home")
    assert settings.gateway_key_pkcs11 == Pkcs11Key(module=softhsm, token_label=TOKEN, key_label="gw-cli")


def test_rotation_makes_a_new_key_in_the_token_and_keeps_the_old_certificate_published(hsm_home):
    old = hsm_home.path(hsm_home.gateway_cert).read_bytes()
    rotate_gateway_key(hsm_home, "p256")
    new = hsm_home.path(hsm_home.gateway_cert).read_bytes()
    assert new != old and hsm_home.path(hsm_home.gateway_previous_cert).read_bytes() == old
    with token_keys(hsm_home.gateway_key_pkcs11, pkcs11.ObjectClass.PRIVATE_KEY) as private:
        assert len(private) == 2                                            # the old key is kept
    rotated = build_gateway(hsm_home)
    try:
        with TestClient(create_app(rotated)) as http:
            bundle = http.get("/v1/certificates").content
            assert x509.load_pem_x509_certificates(bundle) == [x509.load_pem_x509_certificate(new),
                                                              x509.load_pem_x509_certificate(old)]
            maker = operator_client(hsm_home, http, "maker")
            assert maker.call(dl.balance_query()).code == "OK"          # verified with the new certificate
    finally:
        stop(rotated)


def test_audit_anchors_are_signed_in_the_token(hsm_home, clock):
    gateway = build_gateway(hsm_home)
    try:
        with gateway.engine.connect() as conn:
            heads = audit.heads(conn)
        anchor = audit.sign_anchor(gateway.signer.key, gateway.signer.cert_pem, heads, clock())
        assert audit.read_anchor(anchor, [gateway.signer.certificate]) == heads
    finally:
        stop(gateway)


def test_secrets_written_in_the_settings_file_are_refused(tmp_path):
    (tmp_path / "directlink.toml").write_text('[gateway]\ngateway_pkcs11_pin = "1234"\n'
                                              'gateway_key_passphrase = "open sesame"\n')
    with pytest.raises(SystemExit) as refused:
        Settings.load(tmp_path)
    message = str(refused.value)
    assert "DIRECTLINK_GATEWAY_PKCS11_PIN" in message and "DIRECTLINK_GATEWAY_KEY_PASSPHRASE" in message
    assert "1234" not in message and "open sesame" not in message


def test_the_certificate_init_makes_carries_the_token_public_key(hsm_home):
    certificate = x509.load_pem_x509_certificate(hsm_home.path(hsm_home.gateway_cert).read_bytes())
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with token_keys(hsm_home.gateway_key_pkcs11, pkcs11.ObjectClass.PUBLIC_KEY) as [public]:
        in_token = serialization.load_der_public_key(encode_ec_public_key(public))
        assert public[pkcs11.Attribute.ID] == x509.SubjectKeyIdentifier.from_public_key(in_token).digest
    assert in_token.public_bytes(*spki) == certificate.public_key().public_bytes(*spki)
