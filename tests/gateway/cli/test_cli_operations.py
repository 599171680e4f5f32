"""The command line as an operator runs the gateway with it (issue 24): changes that are all or nothing and
say what they did, certificates with their state, listings for people and for scripts (--json), a gateway
key rollover without a flag day, delivery health, dry runs, and help that shows flags as flags.

The commands run in this process through `gateway.cli.main` (the `directlink` entry point, with its one-line
failures and exit statuses), on a SQLite home made once per module: seconds, not a process per command."""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import OPERATING, SUPPLIER
from cryptography import x509
from fastapi.testclient import TestClient
from kingdee_files import as_json, batch, bill
from lxml import etree
from typer.testing import CliRunner

from gateway import directory
from gateway.app import build_gateway, create_app
from gateway.cli import app, main
from gateway.keys import cert_pem, key_pem, new_key, self_signed
from gateway.protocol import client as dl
from gateway.protocol.messages import E
from gateway.protocol.signing import SignatureRejected
from gateway.settings import Settings
from gateway.setup import init_home
from gateway.storage.engine import make_engine


def run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`directlink ARGS` in this process: (exit status, standard output, standard error)."""
    monkeypatch.setattr(sys, "argv", ["directlink", *args])
    with pytest.raises(SystemExit) as stop:
        main()
    out, err = capsys.readouterr()
    return stop.value.code or 0, out, err


def one_line(err: str, says: str) -> None:
    assert "Traceback" not in err and "╭" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], err


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ops") / "gw"
    init_home(path)
    return path


@pytest.fixture
def gw(made, tmp_path) -> Path:
    """A fresh copy of the made home for each test (init costs keys; copying costs nothing)."""
    copy = tmp_path / "gw"
    shutil.copytree(made, copy)
    return copy


@pytest.fixture
def sh(monkeypatch, capsys, gw):
    """`sh("certs", "list")`: run a command against the test's home."""
    return lambda *args: run(monkeypatch, capsys, *args, "--home", str(gw))


def operator_cert(days: int = 730, start: dt.datetime | None = None, key=None) -> tuple[bytes, bytes]:
    key = key or new_key("p256")
    return key_pem(key), cert_pem(self_signed(key, "DEMO/extra", "Demo", days=days, not_before=start))


# ---- the command line itself ------------------------------------------------------------------------------

def test_flags_show_as_flags_in_help():
    for command in (["agent", "--help"], ["send", "--help"], ["keys", "rotate", "--help"]):
        shown = CliRunner().invoke(app, command, env={"COLUMNS": "200"}).output
        assert "<bool>" not in shown and "--help" in shown, shown
    assert "<path>" in CliRunner().invoke(app, ["agent", "--help"], env={"COLUMNS": "200"}).output


@pytest.mark.parametrize(("args", "says"), [
    (["send", "--bogus"], "No such option: --bogus; `directlink send --help` lists"),
    (["agent", "--config", "a.toml", "--once", "true"], "unexpected extra argument"),
    (["serve", "--port", "abc"], "Invalid value for '--port'"),
    (["config", "grant"], "Missing argument 'client'"),
])
def test_usage_errors_are_one_line(monkeypatch, capsys, args, says):
    status, _, err = run(monkeypatch, capsys, *args)
    assert status == 2
    one_line(err, says)


def test_a_group_without_its_command_shows_its_help_and_exits_2(monkeypatch, capsys):
    status, out, _ = run(monkeypatch, capsys, "certs")
    assert status == 2 and "add" in out and "list" in out


def test_every_command_has_help():
    def walk(group, path):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from walk(command, [*path, name])
            else:
                yield [*path, name], command
    from typer.main import get_command
    missing = [" ".join(path) for path, command in walk(get_command(app), []) if not (command.help or "").strip()]
    assert missing == []


# ---- init: all or nothing ---------------------------------------------------------------------------------

def test_init_with_a_bad_key_type_leaves_nothing_and_can_be_run_again(monkeypatch, capsys, tmp_path):
    status, _, err = run(monkeypatch, capsys, "init", str(tmp_path / "x1"), "--key-type", "dsa")
    assert status == 2
    one_line(err, "unknown key kind 'dsa'")
    assert not (tmp_path / "x1").exists()
    (tmp_path / "empty").mkdir()
    status, _, err = run(monkeypatch, capsys, "init", str(tmp_path / "empty"), "--database-url",
                         f"sqlite:///{tmp_path}/no/such/folder/x.db")
    assert status == 2 and list((tmp_path / "empty").iterdir()) == []   # the folder stays, emptied again
    status, out, err = run(monkeypatch, capsys, "init", str(tmp_path / "x1"), "--key-type", "p256")
    assert status == 0 and "initialised" in out, err


# ---- certificates -----------------------------------------------------------------------------------------

def test_certs_add_refuses_another_operators_expired_future_and_weak_certificates(sh, gw):
    _, before, _ = sh("certs", "list", "--json")
    viewer = str(gw / "demo" / "viewer.cert.pem")
    status, _, err = sh("certs", "add", "DEMO", "checker", viewer)
    assert status == 2
    one_line(err, "registered to DEMO/viewer already")
    now = dt.datetime.now(dt.UTC)
    cases = {"expired": (operator_cert(days=5, start=now - dt.timedelta(days=10))[1], "expired on"),
             "future": (operator_cert(start=now + dt.timedelta(days=3))[1], "not valid before"),
             "weak": (cert_pem(self_signed(_rsa1024(), "DEMO/weak", "Demo")),
                      "RSA-2048+ or ECDSA P-256")}
    for name, (pem, says) in cases.items():
        (gw / f"{name}.pem").write_bytes(pem)
        status, _, err = sh("certs", "add", "DEMO", "checker", str(gw / f"{name}.pem"))
        assert status == 2, name
        one_line(err, says)
    assert sh("certs", "list", "--json")[1] == before          # nothing registered
    status, out, _ = sh("certs", "add", "DEMO", "viewer", viewer)
    assert status == 0 and "has" in out and "already" in out and "nothing changed" in out
    (gw / "new.pem").write_bytes(operator_cert()[1])
    status, out, _ = sh("certs", "add", "DEMO", "checker", str(gw / "new.pem"))
    assert status == 0 and out.startswith("registered ") and "DEMO/checker" in out


def _rsa1024():
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.generate_private_key(65537, 1024)


def test_certs_list_shows_expiring_expired_and_revoked(sh, gw):
    settings = Settings.load(gw)
    engine = make_engine(settings.db_url)
    now = dt.datetime.now(dt.UTC)
    soon, old = operator_cert(days=10)[1], operator_cert(days=5, start=now - dt.timedelta(days=10))[1]
    with engine.begin() as conn:
        soon_fp = directory.register_certificate(conn, "DEMO", "maker", soon, now)
        old_fp = directory.register_certificate(conn, "DEMO", "maker", old, now, check_validity=False)
    engine.dispose()
    checker = x509.load_pem_x509_certificate((gw / "demo" / "checker.cert.pem").read_bytes())
    from gateway.protocol.signing import fingerprint
    assert sh("certs", "revoke", fingerprint(checker))[0] == 0
    out = sh("certs", "list")[1]
    lines = {line.split()[1]: line for line in out.splitlines()}
    assert lines[soon_fp].endswith("expires in 9 day(s)")
    assert lines[old_fp].endswith(f"expired {now - dt.timedelta(days=5):%Y-%m-%d}")
    assert "revoked" in lines[fingerprint(checker)]
    rows = {r["fingerprint"]: r for r in json.loads(sh("certs", "list", "--json")[1])}
    assert (rows[soon_fp]["state"], rows[soon_fp]["days_left"]) == ("expiring", 9)
    assert rows[old_fp]["state"] == "expired" and rows[fingerprint(checker)]["state"] == "revoked"
    assert dt.datetime.fromisoformat(rows[soon_fp]["not_after"]) > now


# ---- listings ---------------------------------------------------------------------------------------------

def test_operators_and_grants_list_per_client_and_account(sh):
    status, out, _ = sh("operators", "list")
    assert status == 0 and len(out.splitlines()) == 3 and "DEMO/maker" in out and "enabled" in out
    assert sh("operators", "disable", "DEMO", "viewer")[0] == 0
    ops = {r["operator"]: r for r in json.loads(sh("operators", "list", "--json")[1])}
    assert ops["viewer"]["state"] == "disabled" and ops["maker"]["accounts"] == 2 and ops["maker"]["certificates"] == 1
    assert sh("operators", "list", "--client", "ACME")[1].strip() == "no operators of ACME"

    grants = json.loads(sh("grants", "list", "--account", OPERATING, "--json")[1])
    assert {(g["operator"], tuple(g["permissions"])) for g in grants} == {
        ("maker", ("query", "pay")), ("checker", ("query", "approve")), ("viewer", ("query",))}
    maker = next(g for g in grants if g["operator"] == "maker")
    assert (maker["single_limit"], maker["daily_limit"], maker["approve_limit"]) == ("500000.00", "800000.00", None)
    assert len(json.loads(sh("grants", "list", "--client", "DEMO", "--json")[1])) == 6
    assert sh("grants", "list", "--client", "ACME")[1].strip() == "no grants"
    status, _, err = sh("grants", "list", "--account", "NOSUCH")
    assert status == 2
    one_line(err, "no account NOSUCH")


def test_every_list_command_has_json_and_says_when_it_is_empty(sh):
    for command in (["certs", "list"], ["operators", "list"], ["grants", "list"], ["rules", "list", "DEMO"],
                    ["notify", "list"], ["notify", "dead"], ["config", "accounts"], ["adapters"]):
        status, out, err = sh(*command, "--json")
        assert status == 0 and isinstance(json.loads(out), list), (command, err)
    assert sh("rules", "list", "DEMO")[1].startswith("no rules for DEMO")
    assert sh("notify", "list")[1].startswith("no subscriptions")
    assert sh("notify", "dead")[1].strip() == "no dead letters"
    assert sh("rules", "payee", "remove", "--help")[1].count("Remove a registered counterparty") == 1


# ---- gateway key rollover ---------------------------------------------------------------------------------

def test_key_rollover_without_a_flag_day(sh, gw):
    """prepare -> clients take the published bundle -> switch and restart -> the same clients keep working;
    a client that pinned only the old certificate is the one that stops trusting the answers."""
    settings = Settings.load(gw)
    maker = ((gw / "demo" / "maker.key.pem").read_bytes(), (gw / "demo" / "maker.cert.pem").read_bytes())
    old_pin = (gw / "certs" / "gateway.cert.pem").read_bytes()

    status, out, _ = sh("keys", "rotate", "--prepare", "--key-type", "p256")
    assert status == 0 and "published" in out
    one_line(sh("keys", "rotate", "--prepare")[2], "prepared already")
    before = build_gateway(settings)
    with TestClient(create_app(before)) as http:
        listed = http.get("/v1/certificates", params={"format": "json"}).json()
        assert [c["role"] for c in listed] == ["current", "next"]
        assert all(dt.datetime.fromisoformat(c["not_after"]) > dt.datetime.now(dt.UTC) for c in listed)
        bundle = http.get("/v1/certificates").content          # the PEM bundle, roles written between blocks
        assert x509.load_pem_x509_certificates(bundle) == [
            x509.load_pem_x509_certificate(c["pem"].encode()) for c in listed]
        assert bundle.startswith(b"# current ")
        with_bundle = dl.Client("http://testserver", "DEMO", "maker", *maker, bundle, http=http)
        assert with_bundle.call(dl.balance_query()).code == "OK"       # signed with the current key
    before.engine.dispose()

    status, out, _ = sh("keys", "rotate", "--switch")
    assert status == 0 and "restart" in out
    one_line(sh("keys", "rotate", "--switch")[2], "no next key is prepared")
    after = build_gateway(settings)                                     # the restart
    with TestClient(create_app(after)) as http:
        assert [c["role"] for c in http.get("/v1/certificates?format=json").json()] == ["current", "previous"]
        with_bundle = dl.Client("http://testserver", "DEMO", "maker", *maker, bundle, http=http)
        answer = with_bundle.call(dl.balance_query())
        assert answer.code == "OK"                                      # signed with the new key, still trusted
        only_old = dl.Client("http://testserver", "DEMO", "maker", *maker, old_pin, http=http)
        with pytest.raises(SignatureRejected):
            only_old.call(dl.balance_query())
    after.engine.dispose()


def test_a_bundle_of_strangers_is_refused_naming_how_many_were_tried(gw, made):
    settings = Settings.load(gw)
    strangers = b"".join(cert_pem(self_signed(new_key("p256"), "X", "Y")) for _ in range(2))
    gateway = build_gateway(settings)
    with TestClient(create_app(gateway)) as http:
        c = dl.Client("http://testserver", "DEMO", "maker", (gw / "demo" / "maker.key.pem").read_bytes(),
                      (gw / "demo" / "maker.cert.pem").read_bytes(), strangers, http=http)
        with pytest.raises(SignatureRejected, match="none of the 2 pinned"):
            c.call(dl.balance_query())
    gateway.engine.dispose()


# ---- notifications: refused at once, health on the list ---------------------------------------------------

def test_a_subscription_no_notification_would_reach_is_refused_when_made(sh, gw):
    for url, says in (("http://127.0.0.1:9/erp", "not a public address"), ("https://10.1.2.3/erp", "10.1.2.3"),
                      ("http://[::1]:9/erp", "::1")):
        status, _, err = sh("notify", "subscribe", "DEMO", url)
        assert status == 2, url
        one_line(err, says)
        assert "notify_private_addresses allows it" in err
    assert sh("notify", "list")[1].startswith("no subscriptions")
    with (gw / "directlink.toml").open("a", encoding="utf-8") as settings:
        settings.write("notify_private_addresses = true\nnotify_https_only = true\n")
    status, _, err = sh("notify", "subscribe", "DEMO", "http://127.0.0.1:9/erp")
    one_line(err, "must be https://")
    status, out, err = sh("notify", "subscribe", "DEMO", "https://127.0.0.1:9/erp")
    assert status == 0 and "subscribed #1" in out, err


def test_notify_list_shows_failing_then_dead_letters_with_the_error_and_next_attempt(sh, gw, monkeypatch):
    with (gw / "directlink.toml").open("a", encoding="utf-8") as settings:
        settings.write("notify_private_addresses = true\n")
    from processes import free_port
    assert sh("notify", "subscribe", "DEMO", f"http://127.0.0.1:{free_port()}/erp", "--kinds", "credit")[0] == 0
    assert sh("sandbox", "credit", OPERATING, "8.00", "--payer-name", "W", "--payer-account", "1")[0] == 0
    [row] = json.loads(sh("notify", "list", "--json")[1])
    assert (row["state"], row["pending"], row["retrying"]) == ("healthy", 1, 0)
    assert sh("notify", "run")[0] == 0                                 # nobody listens: a retry
    [row] = json.loads(sh("notify", "list", "--json")[1])
    assert (row["state"], row["retrying"], row["dead"]) == ("failing", 1, 0)
    assert "ConnectError" in row["last_error"] and dt.datetime.fromisoformat(row["next_attempt"])
    text = sh("notify", "list")[1]
    assert "failing" in text and "next attempt" in text and "last error: ConnectError" in text
    monkeypatch.setenv("DIRECTLINK_NOTIFY_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("DIRECTLINK_NOTIFY_BACKOFF_BASE_SECONDS", "0")
    engine = make_engine(Settings.load(gw).db_url)
    from sqlalchemy import update

    from gateway.storage.tables import outbox_events
    with engine.begin() as conn:   # due now, so that the next run tries (and gives up)
        conn.execute(update(outbox_events).values(due_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    engine.dispose()
    assert "1 dead" in sh("notify", "run")[1]
    [row] = json.loads(sh("notify", "list", "--json")[1])
    assert (row["state"], row["pending"], row["dead"]) == ("dead letters", 0, 1)


# ---- dry runs ---------------------------------------------------------------------------------------------

def test_agent_validate_reads_a_file_without_sending_it(monkeypatch, capsys, tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text('gateway = "http://127.0.0.1:9"\ngateway_certificate = "g.pem"\nclient = "DEMO"\n'
                      'operator = "maker"\nkey = "k.pem"\ncertificate = "c.pem"\noutbox = "out"\ninbox = "in"\n'
                      'state = "agent.db"\npayment_format = "kingdee.json"\nstatus_format = "pain.002.001.03"\n'
                      'statement_format = "mt940"\naccounts = []\n'
                      'schedule = "*/5 * * * *"\n', "utf-8")
    for name in ("g.pem", "k.pem", "c.pem"):     # the configuration names them; validating reads none
        (tmp_path / name).write_bytes(b"")
    good, bad, broken = tmp_path / "good.json", tmp_path / "bad.json", tmp_path / "broken.json"
    good.write_bytes(as_json(batch("B1", bill("R1", "10.00"), bill("R2", "2.50"))))
    bad.write_bytes(as_json(batch("B2", bill("R3", "10.00"), bill("R4", "0.00"), total="10.00",
                                  count=2)))
    broken.write_bytes(as_json(batch("B3", bill("R5", "1.00"), total="99.00")))
    status, out, err = run(monkeypatch, capsys, "agent", "--config", str(config), "--validate", str(good))
    assert status == 0 and "2 payment(s) readable (CNY 12.50)" in out, err
    status, out, _ = run(monkeypatch, capsys, "agent", "--config", str(config), "--validate", str(bad))
    assert status == 1 and "1 refused" in out and "R4" in out
    status, out, _ = run(monkeypatch, capsys, "agent", "--config", str(config), "--validate", str(broken))
    assert status == 1 and "refused as a whole" in out
    assert not (tmp_path / "out").exists() and not (tmp_path / "agent.db").exists()   # nothing of the agent ran


def test_send_dry_run_decides_and_makes_nothing(sh, gw, monkeypatch, capsys, tmp_path):
    """In-process gateway over a real port is what `send` needs; the answer says dryRun and nothing is stored."""
    from sqlalchemy import func, select

    from gateway.storage.tables import payments
    request = tmp_path / "pay.xml"
    header = E.Header(E.MessageId(), E.Created(), E.Client("DEMO"), E.Operator("maker"))
    order = dl.payment_order(dl.payment("DRY-1", OPERATING, "5.00", "ACME", SUPPLIER))
    request.write_bytes(etree.tostring(E.Request(header, order, version="1")))
    balance = tmp_path / "balance.xml"
    balance.write_text('<Request xmlns="urn:directlink:v1" version="1"><Header><MessageId/><Created/>'
                       '<Client>DEMO</Client><Operator>maker</Operator></Header><BalanceQuery/></Request>', "utf-8")
    common = ["--operator", "maker", "--key", str(gw / "demo" / "maker.key.pem"), "--gateway-cert",
              str(gw / "certs" / "gateway.cert.pem"), "--dry-run"]
    status, _, err = run(monkeypatch, capsys, "send", str(balance), *common)
    assert status == 2
    one_line(err, "holds no PaymentOrder or DocumentSubmit")

    settings = Settings.load(gw)
    gateway = build_gateway(settings)
    with TestClient(create_app(gateway), base_url="http://testserver") as http:
        import httpx
        monkeypatch.setattr(dl, "http_client", lambda *a, **kw: http)
        monkeypatch.setattr(httpx.Client, "get", http.get, raising=False)
        status, out, err = run(monkeypatch, capsys, "send", str(request), *common, "--url", "http://testserver")
    assert status == 0, err
    assert 'dryRun="true"' in out and "DRY-1" in out
    with gateway.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(payments)).scalar() == 0
    gateway.engine.dispose()


@contextlib.contextmanager
def serving(gw: Path):
    """The home's gateway in this process: (its HTTP client, the maker's signed-request client)."""
    gateway = build_gateway(Settings.load(gw))
    maker = ((gw / "demo" / "maker.key.pem").read_bytes(), (gw / "demo" / "maker.cert.pem").read_bytes())
    try:
        with TestClient(create_app(gateway)) as http:
            yield http, dl.Client("http://testserver", "DEMO", "maker", *maker,
                                  (gw / "certs" / "gateway.cert.pem").read_bytes(), http=http)
    finally:
        gateway.engine.dispose()


# ---- metrics ----------------------------------------------------------------------------------------------

def test_metrics_count_what_waits_and_the_days_certificates_have(sh, gw):
    with serving(gw) as (http, c):
        answer = c.call(dl.payment_order(dl.payment("BIG-1", OPERATING, "250000.00", "ACME", SUPPLIER),
                                         dl.payment("BIG-2", OPERATING, "260000.00", "ACME", SUPPLIER)))
        assert answer.code == "OK"
        scraped = http.get("/metrics").text
    printed = sh("metrics")[1]
    for shown in (scraped, printed):
        assert "directlink_pending_approvals 2.0" in shown
        assert 'directlink_clearing_backlog{state="ACCEPTED"} 0.0' in shown
        assert 'directlink_notify_events{state="dead"} 0.0' in shown
        [days] = [line for line in shown.splitlines()
                  if line.startswith('directlink_certificate_days_left{certificate="gateway_current"}')]
        assert 729 < float(days.split()[-1]) <= 730
    sh("keys", "rotate", "--prepare", "--key-type", "p256")
    assert 'certificate="gateway_next"' in sh("metrics")[1]


# ---- a cancelled payment says why it stands where it does -----------------------------------------------

def test_a_cancelled_payment_gives_the_cancellation_not_the_reason_it_was_held(sh, gw):
    assert sh("rules", "set", "DEMO", "duplicate")[0] == 0
    with serving(gw) as (_, c):
        assert c.call(dl.payment_order(dl.payment("DUP-1", OPERATING, "10.00", "ACME", SUPPLIER))).code == "OK"
        held = c.call(dl.payment_order(dl.payment("DUP-2", OPERATING, "10.00", "ACME", SUPPLIER))).body
        status = held.find(f"{{{dl.NS}}}PaymentStatus")
        assert status.find(f"{{{dl.NS}}}Reason").get("code") == "RULE_PROBABLE_DUPLICATE"
        payment_id = dl.text(status.find(f"{{{dl.NS}}}PaymentId"))
        cancelled = c.call(dl.cancel(payment_id, "paid already with DUP-1")).body.find(f"{{{dl.NS}}}PaymentStatus")
    assert dl.text(cancelled.find(f"{{{dl.NS}}}State")) == "CANCELLED"
    reason = cancelled.find(f"{{{dl.NS}}}Reason")
    assert (reason.get("code"), reason.text) == ("CANCELLED_BY_CLIENT", "cancelled by maker: paid already with DUP-1")


def test_with_https_only_an_older_http_subscription_gets_nothing(sh, gw):
    with (gw / "directlink.toml").open("a", encoding="utf-8") as settings:
        settings.write("notify_private_addresses = true\n")
    assert sh("notify", "subscribe", "DEMO", "http://127.0.0.1:9/erp", "--kinds", "credit")[0] == 0
    with (gw / "directlink.toml").open("a", encoding="utf-8") as settings:
        settings.write("notify_https_only = true\n")
    assert sh("sandbox", "credit", OPERATING, "8.00", "--payer-name", "W", "--payer-account", "1")[0] == 0
    assert "1 retry" in sh("notify", "run")[1]
    [row] = json.loads(sh("notify", "list", "--json")[1])
    assert row["state"] == "failing" and row["last_error"] == "http:// is refused (setting notify_https_only)"
