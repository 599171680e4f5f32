"""What the agent will not read from its outbox (issue 29, holes 1 and 7), in process and without a gateway:
each case is refused before anything is signed, so nothing here needs one (the configured gateway is a
port nobody listens on, and a pass that tried to send would report it unreachable).

Before the fix, a link in the outbox was followed (`Path.is_file()`), its target sent, and the link itself
moved to processed/; a file named `processed` stopped the agent with "key or certificate: File exists"."""
from __future__ import annotations

import os
import stat

import pytest
from processes import free_port

from agent import folders
from agent.config import load
from agent.runner import Agent
from gateway.keys import write_key_pair


@pytest.fixture
def agent(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    write_key_pair(keys, "maker", "maker", "DEMO", kind="p256")
    write_key_pair(keys, "gateway", "gateway", "Bank", kind="p256")
    (tmp_path / "agent.toml").write_text(f"""
gateway = "http://127.0.0.1:{free_port()}"
gateway_certificate = "keys/gateway.cert.pem"
client = "DEMO"
operator = "maker"
key = "keys/maker.key.pem"
certificate = "keys/maker.cert.pem"
outbox = "erp/out"
inbox = "erp/in"
state = "erp/agent.db"
payment_format = "kingdee.json"
status_format = "pain.002.001.03"
statement_format = "mt940"
accounts = []
schedule = "*/5 * * * *"
log_file = "erp/agent.log"
""", "utf-8")
    (tmp_path / "erp" / "out").mkdir(parents=True)
    a = Agent(load(tmp_path / "agent.toml"))
    yield a
    a.close()


def one_pass(agent: Agent):
    return agent.run_pass(statements=False, poll_all=True)


def reason(agent: Agent, name: str) -> str:
    return (agent.cfg.failed / f"{name}.reason.txt").read_text("utf-8")


def test_a_link_to_a_payment_file_elsewhere_is_refused_and_moved_as_a_link(agent, tmp_path):
    elsewhere = tmp_path / "secret-payments.json"
    elsewhere.write_text('{"formid": "bei_bankpaybill", "data": []}', "utf-8")
    (agent.cfg.outbox / "run.json").symlink_to(elsewhere)
    (agent.cfg.outbox / "dangling.json").symlink_to(tmp_path / "gone.json")
    summary = one_pass(agent)
    assert summary.failed == 2 and summary.submitted == 0 and summary.problems == []
    assert list(agent.cfg.processed.iterdir()) == []
    for name in ("run.json", "dangling.json"):
        assert (agent.cfg.failed / name).is_symlink()          # the link itself, not a copy of its target
        assert reason(agent, name).startswith(f"UNSAFE_FILE: {name} is a symbolic link to ")
    assert elsewhere.read_text("utf-8").startswith("{") and sorted(os.listdir(agent.cfg.outbox)) == \
        [".directlink-agent.lock", "failed", "processed"]
    assert agent.state.db.execute("SELECT count(*) FROM files").fetchone()[0] == 0   # nothing recorded or signed


def test_pipes_and_other_users_files_are_refused_with_a_reason(agent, monkeypatch):
    os.mkfifo(agent.cfg.outbox / "pipe.json")
    (agent.cfg.outbox / "theirs.json").write_text("{}", "utf-8")
    # The agent's user as another one: the file, made by this process, is then someone else's.
    real = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: real + 1)
    summary = one_pass(agent)
    assert summary.failed == 2 and summary.submitted == 0
    assert stat.S_ISFIFO((agent.cfg.failed / "pipe.json").lstat().st_mode)
    assert "not a regular file" in reason(agent, "pipe.json")
    assert f"owned by user id {real}, not by the agent's user ({real + 1})" in reason(agent, "theirs.json")


def test_a_hard_link_to_a_file_elsewhere_is_refused(agent, tmp_path):
    """Owned by the agent's user, but the same file under a name outside the outbox (its key, say)."""
    elsewhere = tmp_path / "keys" / "maker.key.pem"
    os.link(elsewhere, agent.cfg.outbox / "key.json")
    assert one_pass(agent).failed == 1
    assert "a file with 2 names (hard links)" in reason(agent, "key.json")
    assert agent.state.db.execute("SELECT count(*) FROM files").fetchone()[0] == 0


def test_reading_never_follows_a_link_swapped_in_after_the_look(agent, tmp_path):
    """O_NOFOLLOW on the open itself: the check before it (lstat) is not what keeps a link out."""
    target = tmp_path / "target.json"
    target.write_text("{}", "utf-8")
    (agent.cfg.outbox / "late.json").symlink_to(target)
    with pytest.raises(folders.UnsafeFile, match="symbolic link"):
        folders.read_own(agent.cfg.outbox / "late.json")
    assert folders.same_bytes(agent.cfg.outbox / "late.json", b"{}") is False


def test_a_file_named_like_the_processed_folder_is_refused_and_the_agent_goes_on(agent):
    agent.cfg.processed.write_text('{"formid": "bei_bankpaybill"}', "utf-8")
    summary = one_pass(agent)
    assert summary.failed == 1 and summary.problems == []
    assert agent.cfg.processed.is_dir() and (agent.cfg.failed / "processed").is_file()
    assert "in the way of the agent's own folder processed/" in reason(agent, "processed")
    assert not any(p.name.endswith(".in-the-way") for p in agent.cfg.outbox.iterdir())


def test_a_file_named_like_the_failed_folder_is_refused_into_it(agent):
    agent.cfg.failed.write_text("x", "utf-8")
    assert one_pass(agent).failed == 1
    assert (agent.cfg.failed / "failed").read_text("utf-8") == "x"


def test_the_command_starts_with_a_file_named_processed_in_the_outbox(tmp_path, agent):
    """Before the fix: exit 2, "key or certificate: [Errno 17] File exists"."""
    from agent.runner import main
    agent.close()
    agent.cfg.processed.write_text("not a folder", "utf-8")
    assert main(tmp_path / "agent.toml", once=True) == 0
    assert agent.cfg.processed.is_dir() and (agent.cfg.failed / "processed").is_file()


def test_an_inbox_that_is_a_file_is_named_as_such(tmp_path, agent, capsys):
    from agent.runner import main
    agent.close()
    (tmp_path / "erp" / "in").rmdir()
    (tmp_path / "erp" / "in").write_text("", "utf-8")
    assert main(tmp_path / "agent.toml", once=True) == 2
    err = capsys.readouterr().err
    assert "inbox:" in err and "cannot be made a folder" in err and "key or certificate" not in err


def test_folders_module_reads_a_regular_file_of_ours(tmp_path):
    (tmp_path / "ok.json").write_bytes(b"{}")
    files, unsafe = folders.waiting(tmp_path)
    assert [(f.name, f.data) for f in files] == [("ok.json", b"{}")] and unsafe == []


def test_an_inbox_file_is_never_written_through_a_link_left_under_its_temporary_name(agent, tmp_path):
    """The inbox is the ERP's folder too: a link planted under the name of the agent's temporary file must
    not make the agent overwrite the link's target (before, open(temp, "wb") followed it)."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", "utf-8")
    agent.cfg.inbox.mkdir(parents=True, exist_ok=True)
    (agent.cfg.inbox / ".000001-status-x.xml.tmp").symlink_to(victim)
    folders.write_atomically(agent.cfg.inbox, "000001-status-x.xml", b"<report/>")
    assert victim.read_text("utf-8") == "keep me"
    assert (agent.cfg.inbox / "000001-status-x.xml").read_bytes() == b"<report/>"
    assert not (agent.cfg.inbox / "000001-status-x.xml").is_symlink()
