"""The command-line contract (spec section 7): `directlink init`, `serve`, `send`, `demo`, `config grant`,
`certs list/revoke` and the listings on an old database, run as real processes the way operators' scripts
and schedulers run them.
SQLite homes only (the PostgreSQL path of the same server is judged by test_e2e_independent.py)."""
from __future__ import annotations

import re
import sqlite3
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest
from conftest import database_before
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from processes import Servers, cli

NS = "urn:directlink:v1"
OPERATING, SUPPLIER = "6222000000000001", "6222000000009001"
OPERATORS = ("maker", "checker", "viewer")

pytestmark = pytest.mark.slow


def request_file(directory: Path, name: str, operator: str, operation: str) -> Path:
    """A Request for `directlink send`: MessageId and Created left empty for the command to fill in."""
    path = directory / f"{name}.xml"
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<Request xmlns="{NS}" version="1">
  <Header>
    <MessageId></MessageId><Created></Created><Client>DEMO</Client><Operator>{operator}</Operator>
  </Header>
  {operation}
</Request>
""", "utf-8")
    return path


def payment_order(ref: str, amount: str = "1.00") -> str:
    return (f"<PaymentOrder><Payment><ClientRef>{ref}</ClientRef><DebtorAccount>{OPERATING}</DebtorAccount>"
            f'<Amount currency="CNY">{amount}</Amount>'
            f'<Creditor><Name>ACME</Name><Account>{SUPPLIER}</Account>'
            f'<BankCode scheme="INTERNAL"/></Creditor><Purpose>货款</Purpose></Payment></PaymentOrder>')


def answer_of(stdout: str) -> etree._Element:
    """The Response that `send` printed."""
    root = etree.fromstring(stdout[stdout.index("<Response"):].encode("utf-8"))
    assert root.tag == f"{{{NS}}}Response"
    return root


def result_code(root: etree._Element) -> str:
    return root.find(f"{{{NS}}}Result").get("code")


def payment_states(root: etree._Element) -> list[tuple[str, str | None]]:
    out = []
    for s in root.iter(f"{{{NS}}}PaymentStatus"):
        reason = s.find(f"{{{NS}}}Reason")
        out.append((s.find(f"{{{NS}}}State").text, None if reason is None else reason.get("code")))
    return out


def fingerprint(cert_file: Path) -> str:
    return x509.load_pem_x509_certificate(cert_file.read_bytes()).fingerprint(hashes.SHA256()).hex()


# ---- fixtures ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One `directlink init` home served by `directlink serve` for this module; yields (home, base URL)."""
    home = tmp_path_factory.mktemp("cli") / "gw"
    done = cli("init", str(home))
    assert done.returncode == 0, done.stderr
    servers = Servers(home, home)
    try:
        yield home, servers.start()[1]
    finally:
        servers.stop_all()


def send(served, file: Path, operator: str, key_of: str | None = None) -> subprocess.CompletedProcess:
    """`directlink send FILE --operator OP --key HOME/demo/OP.key.pem --url URL --gateway-cert ...`."""
    home, url = served
    key = home / "demo" / f"{key_of or operator}.key.pem"
    return cli("send", str(file), "--operator", operator, "--key", str(key),
               "--url", url, "--gateway-cert", str(home / "certs" / "gateway.cert.pem"))


# ---- init -------------------------------------------------------------------------------------------------

def test_init_creates_a_complete_home(tmp_path):
    """`directlink init DIR` writes settings, the gateway key (0600) and certificate, demo operator keys
    (0600) and certificates (ECDSA P-256 unless told otherwise), the directory file and the SQLite database,
    and exits 0."""
    home = tmp_path / "gw"
    done = cli("init", str(home))
    assert done.returncode == 0, done.stderr
    settings = tomllib.loads((home / "directlink.toml").read_text("utf-8"))
    assert "gateway" in settings
    for key in [home / "certs" / "gateway.key.pem", *(home / "demo" / f"{op}.key.pem" for op in OPERATORS)]:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
        assert isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(private.curve, ec.SECP256R1)
    for cert in [home / "certs" / "gateway.cert.pem", *(home / "demo" / f"{o}.cert.pem" for o in OPERATORS)]:
        x509.load_pem_x509_certificate(cert.read_bytes())
    directory = tomllib.loads((home / "config" / "directory.toml").read_text("utf-8"))
    assert {c["id"] for c in directory["clients"]} >= {"DEMO"}
    assert (home / "directlink.db").stat().st_size > 0


def test_second_init_fails_clearly_and_changes_nothing(tmp_path):
    """A second `directlink init` of the same DIR exits non-zero with a clear message and keeps the keys."""
    home = tmp_path / "gw"
    assert cli("init", str(home)).returncode == 0
    key_before = (home / "certs" / "gateway.key.pem").read_bytes()
    maker_before = (home / "demo" / "maker.key.pem").read_bytes()
    again = cli("init", str(home))
    assert again.returncode != 0
    message = (again.stderr + again.stdout).lower()
    assert "exists" in message or "initialised" in message or "initialized" in message, message
    assert "traceback" not in message
    assert (home / "certs" / "gateway.key.pem").read_bytes() == key_before
    assert (home / "demo" / "maker.key.pem").read_bytes() == maker_before


def test_init_with_rsa_makes_rsa_keys(tmp_path):
    """`directlink init DIR --key-type rsa` makes RSA-2048 keys and certificates throughout."""
    home = tmp_path / "gw"
    done = cli("init", str(home), "--key-type", "rsa")
    assert done.returncode == 0, done.stderr
    for stem in [home / "certs" / "gateway", *(home / "demo" / op for op in OPERATORS)]:
        key = serialization.load_pem_private_key(Path(f"{stem}.key.pem").read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048
        assert stat.S_IMODE(Path(f"{stem}.key.pem").stat().st_mode) == 0o600
        cert = x509.load_pem_x509_certificate(Path(f"{stem}.cert.pem").read_bytes())
        assert isinstance(cert.public_key(), rsa.RSAPublicKey)


# ---- send, demo -------------------------------------------------------------------------------------------

def test_send_prints_the_answer_and_exits_0_for_ok(served, tmp_path):
    """`directlink send` fills MessageId/Created, signs, posts, verifies and prints the Response; exit 0."""
    file = request_file(tmp_path, "balance", "maker", "<BalanceQuery/>")
    done = send(served, file, "maker")
    assert done.returncode == 0, done.stderr
    root = answer_of(done.stdout)
    assert result_code(root) == "OK"
    accounts = {b.findtext(f"{{{NS}}}Account") for b in root.iter(f"{{{NS}}}Balance")}
    assert accounts == {OPERATING, "6222000000000002"}
    again = send(served, file, "maker")        # the same file twice: a fresh MessageId each time, no REPLAY
    assert again.returncode == 0 and result_code(answer_of(again.stdout)) == "OK"


def test_send_exits_nonzero_for_a_rejection(served, tmp_path):
    """A rejected request (no grant on another client's account; a key not registered for the operator)
    is still printed, and `directlink send` exits non-zero."""
    foreign = f"<BalanceQuery><Account>{SUPPLIER}</Account></BalanceQuery>"
    file = request_file(tmp_path, "foreign", "maker", foreign)
    done = send(served, file, "maker")
    assert done.returncode != 0
    assert result_code(answer_of(done.stdout)) in {"PERMISSION_DENIED", "NOT_FOUND"}

    wrong_key = request_file(tmp_path, "wrong-key", "viewer", "<BalanceQuery/>")
    done = send(served, wrong_key, "viewer", key_of="maker")
    assert done.returncode != 0
    assert result_code(answer_of(done.stdout)) == "CERT_UNKNOWN"


def test_demo_runs_the_story():
    """`directlink demo` needs no set-up, exits 0, and shows settled, accepted and rejected payments."""
    done = cli("demo", timeout=120)
    assert done.returncode == 0, done.stderr
    for word in ("SETTLED", "ACCEPTED", "REJECTED", "RULE_PROBABLE_DUPLICATE", "RULE_BLOCKED_COUNTERPARTY"):
        assert word in done.stdout, word
    # the receipts it books are reconciled, each by the rule that fits it
    for rule, refs in (("exact-reference", "AR-1001"), ("one-to-many", "AR-1002, AR-1003"),
                       ("reference-text", "AR-1004")):
        assert re.search(rf"{rule} .*<- {refs}", done.stdout), rule
    # it ends with the treasury console's address and a one-time enrolment link for the demo checker
    assert re.search(r"console: http://localhost:\d+/console/\n", done.stdout)
    assert re.search(r"enrolment link for DEMO/checker .*: http://localhost:\d+/console/enrol/[\w-]{40,}\n", done.stdout)


# ---- config grant, certs ----------------------------------------------------------------------------------

def test_config_grant_lets_viewer_pay(served, tmp_path):
    """viewer may not pay until `directlink config grant DEMO viewer ACCOUNT --permissions query,pay`;
    then the running gateway settles viewer's payment."""
    home, _ = served
    before = send(served, request_file(tmp_path, "pay1", "viewer", payment_order("CLI-VIEW-1")), "viewer")
    assert payment_states(answer_of(before.stdout)) == [("REJECTED", "PERMISSION_DENIED")]

    granted = cli("config", "grant", "DEMO", "viewer", OPERATING, "--permissions", "query,pay",
                  "--home", str(home))
    assert granted.returncode == 0, granted.stderr

    after = send(served, request_file(tmp_path, "pay2", "viewer", payment_order("CLI-VIEW-2")), "viewer")
    assert after.returncode == 0, after.stderr
    assert payment_states(answer_of(after.stdout)) == [("SETTLED", None)]


def test_certs_list_and_revoke(served, tmp_path):
    """`directlink certs list` shows each operator's certificate fingerprint; after `certs revoke FP` the
    running gateway answers that operator CERT_REVOKED, and revoking it again or an unknown FP fails."""
    home, _ = served
    listed = cli("certs", "list", "--home", str(home))
    assert listed.returncode == 0, listed.stderr
    fps = {op: fingerprint(home / "demo" / f"{op}.cert.pem") for op in OPERATORS}
    for op, fp in fps.items():
        [line] = [ln for ln in listed.stdout.splitlines() if fp in ln.lower()]
        assert f"DEMO/{op}" in line and "active" in line

    file = request_file(tmp_path, "balance", "checker", "<BalanceQuery/>")
    assert send(served, file, "checker").returncode == 0

    revoked = cli("certs", "revoke", fps["checker"], "--home", str(home))
    assert revoked.returncode == 0, revoked.stderr
    listed = cli("certs", "list", "--home", str(home))
    [line] = [ln for ln in listed.stdout.splitlines() if fps["checker"] in ln.lower()]
    assert "revoked" in line

    done = send(served, file, "checker")
    assert done.returncode != 0
    assert result_code(answer_of(done.stdout)) == "CERT_REVOKED"
    assert send(served, request_file(tmp_path, "m", "maker", "<BalanceQuery/>"), "maker").returncode == 0

    assert cli("certs", "revoke", fps["checker"], "--home", str(home)).returncode != 0
    assert cli("certs", "revoke", "00" * 32, "--home", str(home)).returncode != 0


def test_operators_disable_and_enable(served, tmp_path):
    """`directlink operators disable DEMO viewer`: the running gateway refuses viewer's next request
    (PERMISSION_DENIED, saying so); `enable` lets it through again; an unknown operator fails, changing nothing."""
    home, _ = served
    file = request_file(tmp_path, "balance", "viewer", "<BalanceQuery/>")
    assert send(served, file, "viewer").returncode == 0
    done = cli("operators", "disable", "DEMO", "viewer", "--home", str(home))
    assert done.returncode == 0 and "DEMO/viewer disabled" in done.stdout, done.stderr
    assert "already disabled" in cli("operators", "disable", "DEMO", "viewer", "--home", str(home)).stdout
    try:
        refused = send(served, file, "viewer")
        assert refused.returncode != 0 and result_code(answer_of(refused.stdout)) == "PERMISSION_DENIED"
        assert "DEMO/viewer is disabled" in refused.stderr
    finally:
        assert cli("operators", "enable", "DEMO", "viewer", "--home", str(home)).returncode == 0
    assert send(served, file, "viewer").returncode == 0
    unknown = cli("operators", "disable", "DEMO", "nobody", "--home", str(home))
    assert unknown.returncode != 0 and "no operator nobody of client DEMO" in unknown.stderr


# ---- read-only commands on an old database ----------------------------------------------------------------

LISTINGS = (["certs", "list"], ["config", "accounts"], ["notify", "list"], ["notify", "dead"],
            ["rules", "list", "C"], ["audit", "verify"])


def test_listings_never_migrate_an_old_database(tmp_path):
    """A read-only command on a database at an older schema exits non-zero, names the revision and
    `directlink db upgrade`, and leaves the database as it was; after `db upgrade` the same command runs."""
    database_before(tmp_path, "0009", []).dispose()
    home = tmp_path / "home"
    home.mkdir()
    old = tmp_path / "old.db"
    (home / "directlink.toml").write_text(f'[gateway]\ndatabase_url = "sqlite:///{old}"\n', "utf-8")

    def revision() -> str:
        with sqlite3.connect(old) as db:
            return db.execute("SELECT version_num FROM alembic_version").fetchone()[0]

    for listing in LISTINGS:
        done = cli(*listing, "--home", str(home))
        assert done.returncode != 0, listing
        assert "revision 0009" in done.stderr and "directlink db upgrade" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert revision() == "0009"
    assert cli("db", "upgrade", "--home", str(home)).returncode == 0
    listed = cli("config", "accounts", "--home", str(home))
    assert listed.returncode == 0, listed.stderr
    assert "D1" in listed.stdout


def test_a_listing_without_a_database_creates_none(tmp_path):
    """`certs list` in a directory with no database says so and does not create an empty one."""
    done = cli("certs", "list", "--home", str(tmp_path))
    assert done.returncode != 0 and "no database" in done.stderr, done.stderr
    assert not (tmp_path / "directlink.db").exists()
