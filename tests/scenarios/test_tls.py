"""TLS terminated by `directlink serve` itself, with client certificates required (mutual TLS, as the direct
links of Chinese banks use; docs/deployment.md). A client holding a certificate of the configured client CA
gets through, and a signed request works over it as over plain HTTP, from `send`, the agent and the
reference client alike. Without a certificate, with one from another CA, or in plain HTTP, nothing gets
through and nothing reaches the gateway. TLS is transport only: the database plays no part, so one (SQLite)
is enough here."""
from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from processes import CLI, Servers, env_with
from sqlalchemy import func, select

from agent.config import load as load_agent_config
from agent.link import Link
from gateway import keys
from gateway.protocol import client as dl
from gateway.setup import init_home
from gateway.storage.engine import make_engine
from gateway.storage.tables import audit_log


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(directory: Path, cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256()))
    (directory / f"{cn}.pem").write_bytes(keys.cert_pem(cert))
    return key, cert


def _issued(directory: Path, ca: tuple, cn: str, *, server: bool) -> tuple[Path, Path]:
    """A TLS certificate and key issued by `ca`: for the server (127.0.0.1) or for a client."""
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    cert_file, key_file = directory / f"{cn}.cert.pem", directory / f"{cn}.key.pem"
    cert_file.write_bytes(keys.cert_pem(builder.sign(ca_key, hashes.SHA256())))
    key_file.write_bytes(keys.key_pem(key))
    return cert_file, key_file


@pytest.fixture(scope="module")
def tls_home(tmp_path_factory):
    """A gateway home with a server certificate from the bank's TLS CA and a client CA for mutual TLS; the
    client certificates of DEMO's ERP (from that client CA) and of a stranger (from another CA)."""
    root = tmp_path_factory.mktemp("tls")
    settings = init_home(root / "home")
    pki = root / "home" / "tls"
    pki.mkdir()
    bank_ca, client_ca, other_ca = _ca(pki, "bank-tls-ca"), _ca(pki, "client-ca"), _ca(pki, "other-ca")
    server = _issued(pki, bank_ca, "gateway", server=True)
    return {"settings": settings, "pki": pki, "server": server,
            "erp": _issued(pki, client_ca, "demo-erp", server=False),
            "stranger": _issued(pki, other_ca, "stranger", server=False),
            "env": {"DIRECTLINK_TLS_CERTIFICATE": str(server[0]), "DIRECTLINK_TLS_KEY": str(server[1]),
                    "DIRECTLINK_TLS_CLIENT_CA": str(pki / "client-ca.pem")}}


@pytest.fixture(scope="module")
def gateway_url(tls_home, tmp_path_factory):
    servers = Servers(tls_home["settings"].home, tmp_path_factory.mktemp("logs"))
    probe = dl.http_client(tls_ca=tls_home["pki"] / "bank-tls-ca.pem", tls_certificate=tls_home["erp"][0],
                           tls_key=tls_home["erp"][1])
    try:
        _, base = servers.start(tls=probe, **tls_home["env"])
        yield base
    finally:
        servers.stop_all()


def _maker(tls_home, http: httpx.Client, base: str) -> dl.Client:
    home = tls_home["settings"].home
    demo = home / "demo"
    return dl.Client(base, "DEMO", "maker", (demo / "maker.key.pem").read_bytes(),
                     (demo / "maker.cert.pem").read_bytes(), (home / "certs" / "gateway.cert.pem").read_bytes(),
                     http=http)


def _records(tls_home) -> int:
    engine = make_engine(tls_home["settings"].db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(audit_log)).scalar()
    finally:
        engine.dispose()


def test_a_client_certificate_of_the_client_ca_gets_a_signed_answer(tls_home, gateway_url):
    http = dl.http_client(tls_ca=tls_home["pki"] / "bank-tls-ca.pem", tls_certificate=tls_home["erp"][0],
                          tls_key=tls_home["erp"][1])
    assert gateway_url.startswith("https://")
    answer = _maker(tls_home, http, gateway_url).call(dl.balance_query("6222000000000001"))
    assert (answer.status, answer.code) == (200, "OK")


@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate", "plain HTTP"])
def test_nothing_gets_through_without_a_certificate_of_the_client_ca(tls_home, gateway_url, who):
    ca = tls_home["pki"] / "bank-tls-ca.pem"
    url = gateway_url
    if who == "no certificate":
        http = dl.http_client(tls_ca=ca)
    elif who == "another CA's certificate":
        http = dl.http_client(tls_ca=ca, tls_certificate=tls_home["stranger"][0], tls_key=tls_home["stranger"][1])
    else:
        http, url = httpx.Client(timeout=10), gateway_url.replace("https://", "http://")
    before = _records(tls_home)
    with pytest.raises(httpx.TransportError):
        _maker(tls_home, http, url).call(dl.balance_query("6222000000000001"))
    assert _records(tls_home) == before   # refused at the handshake: the gateway never saw the request


def test_a_gateway_certificate_from_an_unknown_ca_is_refused_by_the_client(tls_home, gateway_url):
    """The client checks the server too: trusting only another CA, it will not talk to the gateway."""
    http = dl.http_client(tls_ca=tls_home["pki"] / "other-ca.pem", tls_certificate=tls_home["erp"][0],
                          tls_key=tls_home["erp"][1])
    with pytest.raises(httpx.ConnectError):
        http.get(f"{gateway_url}/v1/certificate")


def test_the_agent_talks_mutual_tls_from_its_configuration(tls_home, gateway_url, tmp_path):
    home, pki = tls_home["settings"].home, tls_home["pki"]
    config = tmp_path / "agent.toml"
    config.write_text(f"""
gateway = "{gateway_url}"
gateway_certificate = "{home / 'certs' / 'gateway.cert.pem'}"
client = "DEMO"
operator = "maker"
key = "{home / 'demo' / 'maker.key.pem'}"
certificate = "{home / 'demo' / 'maker.cert.pem'}"
outbox = "out"
inbox = "in"
state = "agent.db"
payment_format = "sap.pain.001.001.03"
status_format = "pain.002.001.03"
statement_format = "mt940"
accounts = ["6222000000000001"]
schedule = "*/5 * * * *"
tls_ca = "{pki / 'bank-tls-ca.pem'}"
tls_certificate = "{tls_home['erp'][0]}"
tls_key = "{tls_home['erp'][1]}"
""", "utf-8")
    link = Link(load_agent_config(config))
    _, _, body = link.sign(dl.balance_query("6222000000000001"))
    assert link.post(body).code == "OK"


def test_send_takes_the_client_certificate_on_the_command_line(tls_home, gateway_url, tmp_path):
    home, pki = tls_home["settings"].home, tls_home["pki"]
    request = tmp_path / "balance.xml"
    request.write_text('<Request xmlns="urn:directlink:v1" version="1"><Header><MessageId/><Created/>'
                       '<Client>DEMO</Client><Operator>maker</Operator></Header><BalanceQuery>'
                       '<Account>6222000000000001</Account></BalanceQuery></Request>', "utf-8")
    args = [*CLI, "send", str(request), "--operator", "maker", "--key", str(home / "demo" / "maker.key.pem"),
            "--url", gateway_url, "--gateway-cert", str(home / "certs" / "gateway.cert.pem"),
            "--tls-ca", str(pki / "bank-tls-ca.pem")]
    with_cert = [*args, "--tls-cert", str(tls_home["erp"][0]), "--tls-key", str(tls_home["erp"][1])]
    done = subprocess.run(with_cert, capture_output=True, text=True, timeout=60, env=env_with())
    assert done.returncode == 0, done.stderr
    assert "HTTP 200 OK" in done.stderr
    refused = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env_with())
    assert refused.returncode != 0 and "HTTP 200" not in refused.stderr


@pytest.mark.parametrize("env, problem", [
    ({"DIRECTLINK_TLS_KEY": "tls/gateway.key.pem"}, "need tls_certificate"),
    ({"DIRECTLINK_TLS_CERTIFICATE": "tls/missing.pem"}, "tls_certificate: no such file"),
    ({"DIRECTLINK_TLS_CERTIFICATE": "tls/gateway.cert.pem"}, "no PEM certificate with its private key"),
    ({"DIRECTLINK_TLS_CERTIFICATE": "tls/gateway.cert.pem", "DIRECTLINK_TLS_KEY": "tls/gateway.key.pem",
      "DIRECTLINK_TLS_CLIENT_CA": "tls/gateway.key.pem"}, "tls_client_ca: "),
])
def test_serve_refuses_an_incomplete_tls_configuration(tls_home, env, problem):
    done = subprocess.run([*CLI, "serve", "--home", str(tls_home["settings"].home), "--port", "1"],
                          capture_output=True, text=True, timeout=60, env=env_with(**env))
    assert done.returncode == 2 and problem in done.stderr, (done.returncode, done.stderr)


@pytest.mark.parametrize("files, problem", [
    ({"tls_ca": "missing.pem"}, "tls_ca: no such file"),
    ({"tls_ca": "gateway.key.pem"}, "tls_ca: "),
    ({"tls_certificate": "demo-erp.key.pem"}, "no PEM certificate with its private key"),
    ({"tls_certificate": "demo-erp.cert.pem", "tls_key": "missing.pem"}, "tls_key: no such file"),
])
def test_the_client_names_the_tls_file_that_is_wrong(tls_home, files, problem):
    with pytest.raises(ValueError, match=problem):
        dl.http_client(**{name: tls_home["pki"] / file for name, file in files.items()})
