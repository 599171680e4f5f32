"""Everyday mistakes on the command line (issue 24, spec section 7 and docs/protocol.md): each is one line on
standard error, never a traceback, with its documented exit status (2 usage or configuration, 3 the gateway
unreachable or its answer untrusted), and changes nothing: no file appears, the home and its database stay
byte for byte as they were. Run as real processes, the way an operator types them."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import typer
from processes import Servers, cli, free_port

from gateway.cli import app

USAGE, UNREACHABLE = 2, 3
REQUEST = """<Request xmlns="urn:directlink:v1" version="1">
  <Header><MessageId/><Created/><Client>DEMO</Client><Operator>maker</Operator></Header>
  <BalanceQuery><Account>6222000000000001</Account></BalanceQuery>
</Request>
"""

pytestmark = pytest.mark.slow


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` with its content: what "nothing changed" is judged by."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def refused(done: subprocess.CompletedProcess, status: int, says: str) -> None:
    """The command failed with `status` and exactly one line on standard error that says `says`."""
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == status, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert says in lines[0], lines[0]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A gateway home that nothing serves, so that any change to it is the failed command's."""
    path = tmp_path_factory.mktemp("errors") / "gw"
    done = cli("init", str(path))
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Another home, served, for `send`'s mistakes against a running gateway; yields (home, base URL)."""
    path = tmp_path_factory.mktemp("errors-served") / "gw"
    assert cli("init", str(path)).returncode == 0
    servers = Servers(path, path)
    try:
        yield path, servers.start()[1]
    finally:
        servers.stop_all()


@pytest.fixture
def work(tmp_path) -> Path:
    """The folder the command runs in, with a good request in it."""
    (tmp_path / "request.xml").write_text(REQUEST, "utf-8")
    return tmp_path


# ---- send -------------------------------------------------------------------------------------------------

def send_cases(gw: Path, url: str) -> list[tuple[list[str], int, str]]:
    key, cert = str(gw / "demo" / "maker.key.pem"), str(gw / "certs" / "gateway.cert.pem")
    ok = ["--operator", "maker", "--key", key, "--gateway-cert", cert, "--url", url]
    return [
        (["send", "missing.xml", *ok], USAGE, "missing.xml: no such file"),
        (["send", "request.xml", *ok, "--key", "nokey.pem"], USAGE, "nokey.pem: no such file"),
        (["send", "request.xml", *ok, "--gateway-cert", "nocert.pem"], USAGE, "nocert.pem: no such file"),
        (["send", "request.xml", *ok, "--key", str(gw / "demo" / "maker.cert.pem")], USAGE, "holds no private key"),
        (["send", "request.xml", *ok, "--url", f"http://127.0.0.1:{free_port()}"], UNREACHABLE,
         "cannot reach the gateway"),
        (["send", "request.xml", *ok, "--url", url.removeprefix("http://")], USAGE, "with http:// or https://"),
        (["send", "notes.txt", *ok], USAGE, "notes.txt is not XML"),
        (["send", "request.xml", *ok, "--gateway-cert", str(gw / "demo" / "checker.cert.pem")], UNREACHABLE,
         "answer is not trusted"),
    ]


@pytest.mark.parametrize("case", range(8))
def test_send_mistakes(served, work, case):
    gw, url = served
    (work / "notes.txt").write_text("not a request\n", "utf-8")
    args, status, says = send_cases(gw, url)[case]
    before = snapshot(work)
    refused(cli(*args, cwd=work), status, says)
    assert snapshot(work) == before


def test_debug_shows_the_traceback(work):
    done = cli("--debug", "send", "missing.xml", "--operator", "maker", "--key", "k.pem", cwd=work)
    assert done.returncode != 0 and "Traceback" in done.stderr and "FileNotFoundError" in done.stderr


# ---- serve and the settings file --------------------------------------------------------------------------

def test_serve_outside_a_home_creates_nothing(tmp_path):
    refused(cli("serve", "--port", str(free_port()), cwd=tmp_path), USAGE, "is not a gateway home")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("setting", "says"), [
    ('port = "8080', "is not valid TOML"),
    ('cert_warning_days = "soon"', "cert_warning_days"),
    ('timezone = "Mars/Olympus"', "unknown time zone 'Mars/Olympus'"),
])
@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["certs", "list"], ["config", "accounts"],
                                     ["config", "grant", "DEMO", "viewer", "6222000000000001", "--permissions",
                                      "query"]])
def test_a_bad_settings_file_is_named(home, tmp_path, setting, says, command):
    copy = tmp_path / "gw"
    shutil.copytree(home, copy)
    settings = copy / "directlink.toml"
    lines = [line for line in settings.read_text("utf-8").splitlines() if not line.startswith("timezone")]
    settings.write_text("\n".join(line + ("\n" + setting if line == "[gateway]" else "") for line in lines),
                        "utf-8")
    before = snapshot(copy)
    refused(cli(*command, "--home", str(copy)), USAGE, says)
    assert snapshot(copy) == before


# ---- the directory: config apply, config grant, certs add -------------------------------------------------

@pytest.mark.parametrize(("content", "says"), [
    (None, "no such file"),
    ("clients = [", "is not valid TOML"),
    ('[[clients]]\nid = "ACME"\n', "an entry lacks 'name'"),
    ('[[operators]]\nclient = "NOBODY"\nid = "x"\n', "no client NOBODY"),
    ('[[clients]]\nid = "ACME"\nname = "Acme"\n[[grants]]\nclient = "DEMO"\noperator = "nobody"\n'
     'account = "6222000000000001"\npermissions = ["query"]\n', "no operator nobody of client DEMO"),
])
def test_config_apply_refuses_a_bad_file_whole(home, tmp_path, content, says):
    file = tmp_path / "directory.toml"
    if content is not None:
        file.write_text(content, "utf-8")
    before = snapshot(home)
    refused(cli("config", "apply", str(file), "--home", str(home)), USAGE, says)
    assert snapshot(home) == before   # ACME of the last file is not added either


@pytest.mark.parametrize(("args", "says"), [
    (["config", "grant", "DEMO", "nobody", "6222000000000001", "--permissions", "query"],
     "no operator nobody of client DEMO"),
    (["config", "grant", "DEMO", "viewer", "0000", "--permissions", "query"], "does not belong to client DEMO"),
    (["certs", "add", "NOBODY", "maker", "demo/maker.cert.pem"], "no operator maker of client NOBODY"),
    (["certs", "add", "DEMO", "maker", "demo/maker.key.pem"], "BEGIN CERTIFICATE"),
    (["certs", "add", "DEMO", "maker", "missing.pem"], "missing.pem: no such file"),
])
def test_directory_changes_refuse_unknown_names(home, args, says):
    before = snapshot(home)
    refused(cli(*args, "--home", str(home), cwd=home), USAGE, says)
    assert snapshot(home) == before


# ---- every command ----------------------------------------------------------------------------------------

def home_commands() -> list[list[str]]:
    """Every command that works on a gateway home (it takes --home), with each required value given as "1":
    walked from the command itself, so that a command added later is tried too."""
    def walk(command, path: list[str]):
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])
        elif any(p.name == "home" for p in command.params):
            args = []
            for p in command.params:
                if p.required:
                    args += ["1"] if p.param_type_name == "argument" else [p.opts[0], "1"]
            yield [*path, *args]
    return list(walk(typer.main.get_command(app), []))


@pytest.mark.parametrize("command", home_commands(), ids=" ".join)
def test_every_home_command_refuses_a_folder_that_is_no_home(tmp_path, command):
    """Run where there is no gateway, each fails in one line and leaves no stray database or key behind."""
    done = cli(*command, "--home", str(tmp_path), cwd=tmp_path)
    refused(done, USAGE, "")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "says"), [
    (["init", "."], "exists already"),
    (["agent", "--config", "missing.toml", "--once"], "missing.toml: cannot be read"),
    (["agent", "--config", "directlink.toml", "--once"], "missing key(s)"),
    (["reconcile", "--statement", "missing.sta", "--open-items", "missing.csv"], "missing.sta: cannot be read"),
])
def test_the_other_commands_name_the_mistake(home, args, says):
    before = snapshot(home)
    refused(cli(*args, cwd=home), USAGE, says)
    assert snapshot(home) == before
