"""The enterprise-side agent (`directlink agent`, spec section 7) as an ERP team runs it: a real gateway
process, a drop folder the "ERP" writes into (sepaxml pain.001, Kingdee JSON), the agent as a real process,
and the inbox read back by independent parsers (official pain.002 XSD, mt-940, bai2, pycamt).

The kill tests make the agent SIGKILL itself at each crash point (agent/crash.py), start it again, and
prove: every payment exactly once at the gateway, no file lost, every status change reported once, and
the union of the statement files equal to the gateway's whole statement, with no gap and no repeat."""
from __future__ import annotations

import signal
import sqlite3
import subprocess
import time

import pytest
from agent_helpers import EUR_DIRECTORY, KILLED, Erp, Gateway, kingdee_bills, token
from conftest import OPERATING, PAYROLL
from iso20022_helpers import DEBTOR_IBAN
from kingdee_files import bill
from lxml import etree
from processes import CLI, ROOT, Servers, env_with, free_port

from agent import crash
from gateway.setup import apply_directory, init_home

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    root = tmp_path_factory.mktemp("agent-gateway")
    settings = init_home(root / "home")                   # SQLite
    (root / "eur.toml").write_text(EUR_DIRECTORY, "utf-8")
    apply_directory(settings, root / "eur.toml")
    servers = Servers(settings.home, root)
    try:
        _, base = servers.start(DIRECTLINK_CLEARING_INTERVAL_SECONDS="3600")
        yield Gateway(settings, base)
    finally:
        servers.stop_all()


@pytest.fixture
def erp(tmp_path, gateway) -> Erp:
    return Erp(tmp_path, gateway)


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"agent exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


# ---- one pass, then another --------------------------------------------------------------------------------

def test_drop_folder_is_paid_once_reported_and_statements_arrive(erp, gateway):
    erp.write_config(payment_formats={"*.xml": "sap.pain.001.001.03"}, accounts=[OPERATING, DEBTOR_IBAN])
    _, sepa_refs = erp.sepa("f110-run1.xml")
    bills = kingdee_bills()
    _, kd_refs = erp.kingdee("kingdee-batch1.json", *bills)
    erp.drop("broken.json", b'{"formid": "bei_bankpaybill", "data": [')
    first = ok(erp.run())

    # every payment exists once at the gateway; the files moved; the broken one says why
    refs = sepa_refs + kd_refs
    assert gateway.payment_rows(*refs) == dict.fromkeys(refs, 1)
    assert [p.name for p in erp.files("processed")] == ["f110-run1.xml", "kingdee-batch1.json"]
    assert [p.name for p in erp.files("failed")] == ["broken.json", "broken.json.reason.txt"]
    reason = (erp.outbox / "failed" / "broken.json.reason.txt").read_text("utf-8")
    assert reason.startswith("DOCUMENT_INVALID: ") and "MessageId ERP-" in reason
    # and the ERP reads it where it reads every status: a pain.002 rejecting the whole file (XSD-checked below)
    [rejection] = [p for p in erp.files("inbox", ".xml") if "-status-broken" in p.name]
    ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"}
    group = etree.fromstring(rejection.read_bytes()).find("p:CstmrPmtStsRpt/p:OrgnlGrpInfAndSts", ns)
    assert (group.findtext("p:GrpSts", namespaces=ns), group.findtext("p:StsRsnInf/p:Rsn/p:Prtry", namespaces=ns)) \
        == ("RJCT", "DOCUMENT_INVALID")
    assert group.findtext("p:OrgnlMsgId", namespaces=ns).startswith("ERP-")
    # the sepa file's status report names its payments' block as the file did (its PmtInfId), not the MsgId
    sent = etree.fromstring((erp.outbox / "processed" / "f110-run1.xml").read_bytes())
    pmt_inf_id = sent.findtext(".//p1:PmtInfId", namespaces={"p1": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"})
    [report] = [p for p in erp.files("inbox", ".xml") if "-status-f110-run1" in p.name]
    assert [el.text for el in etree.fromstring(report.read_bytes()).iterfind(".//p:OrgnlPmtInfId", ns)] == [pmt_inf_id]
    assert erp.files("outbox") == []
    assert "files submitted 2, failed 1" in first.stdout and "sent kingdee-batch1.json" in first.stdout

    # status reports: valid pain.002 (official XSD), one line per payment, in the ISO codes of spec section 6
    assert sorted(erp.status_reports()) == sorted([
        (sepa_refs[0], "ACSC", None), (sepa_refs[1], "ACTC", None),
        (kd_refs[0], "ACSC", None), (kd_refs[1], "ACTC", None)])
    # statements: MT940 read by mt-940 equals the gateway's own statement, entry for entry
    assert erp.mt940_entries(OPERATING) == gateway.statement(OPERATING)
    assert erp.mt940_entries(DEBTOR_IBAN) == gateway.statement(DEBTOR_IBAN)

    # between passes: clearing settles the payments abroad, and the treasury books a payment by hand
    gateway.clear()
    assert gateway.states(sepa_refs[1], kd_refs[1]) == {sepa_refs[1]: "SETTLED", kd_refs[1]: "SETTLED"}
    gateway.pay_internal(f"HAND-{token()}", "7.77")
    inbox_before = {p.name for p in erp.files("inbox")}
    second = ok(erp.run())
    new = sorted({p.name for p in erp.files("inbox")} - inbox_before)
    assert sorted(n.split("-", 1)[1] for n in new) == [
        f"statement-{OPERATING}.mt940", f"statement-{DEBTOR_IBAN}.mt940",
        "status-f110-run1.xml", "status-kingdee-batch1.xml"]
    reports = erp.status_reports()
    assert reports.count((sepa_refs[1], "ACSC", None)) == reports.count((kd_refs[1], "ACSC", None)) == 1
    whole = gateway.statement(OPERATING)
    assert erp.mt940_entries(OPERATING) == whole and len(whole) == len(set(whole))   # the booking, once
    assert "polled 2 (2 changed)" in second.stdout

    # a third pass with nothing new writes nothing and sends nothing
    third = ok(erp.run())
    assert {p.name for p in erp.files("inbox")} == inbox_before | set(new)
    assert "files submitted 0, failed 0" in third.stdout and "statement entries 0" in third.stdout


def test_a_pain001_refused_whole_is_rejected_under_its_own_msg_id(erp, gateway):
    """The pain.002 refusing a whole file names it by the file's own GrpHdr/MsgId when it has one (here a
    control sum is wrong: the file parses, the gateway refuses it); a file with none to read keeps the
    agent's request MessageId (broken.json in the test above)."""
    erp.write_config(payment_formats={"*.xml": "sap.pain.001.001.03"}, accounts=[OPERATING, DEBTOR_IBAN])
    path, refs = erp.sepa("f110-bad.xml")
    data = path.read_bytes().replace(b"<CtrlSum>17.34<", b"<CtrlSum>17.35<", 1)
    assert b"17.35" in data
    path.write_bytes(data)
    ok(erp.run())
    assert gateway.payment_rows(*refs) == dict.fromkeys(refs, 0)
    reason = (erp.outbox / "failed" / "f110-bad.xml.reason.txt").read_text("utf-8")
    assert reason.startswith("DOCUMENT_INVALID: ") and "GrpHdr/CtrlSum" in reason
    [rejection] = [p for p in erp.files("inbox", ".xml") if "-status-f110-bad" in p.name]
    assert erp.status_reports() == []               # XSD-checked; no transaction in it
    ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"}
    group = etree.fromstring(rejection.read_bytes()).find("p:CstmrPmtStsRpt/p:OrgnlGrpInfAndSts", ns)
    msg_id = etree.fromstring(data).findtext(".//p1:GrpHdr/p1:MsgId",
                                             namespaces={"p1": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"})
    assert (group.findtext("p:OrgnlMsgId", namespaces=ns), group.findtext("p:GrpSts", namespaces=ns)) == (msg_id, "RJCT")
    assert not msg_id.startswith("ERP-") and "MessageId ERP-" in reason   # the request's id is another one


@pytest.mark.parametrize("fmt", ["bai2", "camt.053.001.08"])
def test_other_statement_formats_read_back_by_independent_parsers(erp, gateway, fmt):
    erp.write_config(statement_format=fmt, accounts=[PAYROLL], status_format="kingdee.status.json")
    _, refs = erp.kingdee("payroll.json", bill(f"KD-{token()}", "123.45", fpayeracct=PAYROLL))
    ok(erp.run())
    gateway.pay_internal(f"HAND-{token()}", "0.99", debtor=PAYROLL)
    ok(erp.run())
    whole = gateway.statement(PAYROLL)
    if fmt == "bai2":
        assert erp.bai2_entries(PAYROLL) == [amount for _, amount in whole]
    else:
        assert erp.camt_entries(PAYROLL) == whole
    (report,) = erp.files("inbox", "-status-payroll.json")
    assert f'"fpayunique": "{refs[0]}"' in report.read_text("utf-8")


def test_same_content_is_never_sent_twice(erp, gateway):
    _, refs = erp.kingdee("batch.json", *kingdee_bills())
    data = (erp.outbox / "batch.json").read_bytes()
    erp.drop("batch-copy.json", data)                     # the same bytes under another name, same pass
    ok(erp.run())
    erp.drop("batch.json", data)                          # and the very same file once more, later
    ok(erp.run())
    assert gateway.payment_rows(*refs) == dict.fromkeys(refs, 1)
    assert [p.name for p in erp.files("processed")] == ["batch.json"]
    failed = erp.files("failed", ".reason.txt")
    assert [p.name for p in failed] == ["batch-copy.json.reason.txt", "batch.json.reason.txt"]
    assert all(p.read_text("utf-8").startswith("DUPLICATE_FILE: the same content as batch.json")
               for p in failed)
    assert len(erp.files("inbox", "-status-batch.xml")) == 1


# ---- the gateway away, or not the gateway ------------------------------------------------------------------

def test_unreachable_gateway_keeps_the_file_and_fails_the_run(erp, gateway):
    erp.write_config(gateway=f"http://127.0.0.1:{free_port()}")   # nothing listens there
    _, refs = erp.kingdee("waiting.json", *kingdee_bills())
    done = erp.run()
    assert done.returncode == 3 and "unreachable" in done.stdout
    assert [p.name for p in erp.files("outbox")] == ["waiting.json"] and erp.files("failed") == []
    erp.write_config()
    ok(erp.run())
    assert gateway.payment_rows(*refs) == dict.fromkeys(refs, 1)
    assert [p.name for p in erp.files("processed")] == ["waiting.json"]


def test_answers_not_signed_by_the_pinned_certificate_are_ignored(erp, gateway):
    # Pinned to the wrong certificate, the agent must not believe what comes back -- but the gateway did
    # take the payments. Pinned correctly again, it sends the identical bytes and gets the original answer.
    erp.write_config(gateway_certificate=str(gateway.home / "demo" / "checker.cert.pem"))
    _, refs = erp.kingdee("signed.json", *kingdee_bills())
    done = erp.run()
    assert done.returncode == 3 and "failed verification" in done.stdout
    assert [p.name for p in erp.files("outbox")] == ["signed.json"] and erp.files("inbox") == []
    with sqlite3.connect(erp.root / "erp" / "agent.db") as db:
        (first_id,) = db.execute("SELECT message_id FROM files").fetchone()
    erp.write_config()
    ok(erp.run())
    assert gateway.payment_rows(*refs) == dict.fromkeys(refs, 1)
    with sqlite3.connect(erp.root / "erp" / "agent.db") as db:
        assert db.execute("SELECT message_id, state FROM files").fetchall() == [(first_id, "done")]


def test_bad_configuration_names_the_key(erp):
    erp.write_config(schedule="every five minutes", status_format="pain.002.999")
    done = erp.run()
    assert done.returncode == 2 and "schedule" in done.stderr and "crontab" in done.stderr
    erp.write_config(accounts="6222000000000001")
    done = erp.run()
    assert done.returncode == 2 and "accounts: must be a list" in done.stderr
    erp.write_config(status_format="pain.002.999")
    done = erp.run()
    assert done.returncode == 2 and "status_format" in done.stderr and "pain.002.999" in done.stderr


# ---- kill and restart --------------------------------------------------------------------------------------

@pytest.mark.parametrize("point", crash.ALL)
def test_killed_at_any_crash_point_restart_loses_and_doubles_nothing(erp, gateway, point):
    erp.write_config(payment_formats={"*.xml": "sap.pain.001.001.03"})
    _, refs = erp.kingdee("first.json", *kingdee_bills())
    killed = erp.run(crash=point)
    assert killed.returncode == KILLED, killed.stdout + killed.stderr
    ok(erp.run())                                            # the restart finishes what was open
    # More work, and the same crash point again where it now has something to lose: a new file, a status
    # change (clearing settles the payment abroad) and a new booking on the statement.
    _, more = erp.sepa("second.xml")
    gateway.clear()
    gateway.pay_internal(f"HAND-{token()}", "3.21")
    killed = erp.run(crash=point)
    assert killed.returncode == KILLED, killed.stdout + killed.stderr
    ok(erp.run())

    refs += more
    assert gateway.payment_rows(*refs) == dict.fromkeys(refs, 1)
    assert [p.name for p in erp.files("processed")] == ["first.json", "second.xml"]
    assert erp.files("outbox") == [] and erp.files("failed") == []
    reports = erp.status_reports()
    assert len(reports) == len(set(reports)), f"a status reported twice: {reports}"
    assert {(ref, status) for ref, status, _ in reports} >= {(refs[0], "ACSC"), (refs[1], "ACTC"),
                                                              (refs[1], "ACSC"), (refs[2], "ACSC")}
    whole = gateway.statement(OPERATING)
    assert erp.mt940_entries(OPERATING) == whole and len(set(whole)) == len(whole)


def test_request_too_old_to_resend_goes_in_a_new_message_and_still_pays_once(erp, gateway):
    _, refs = erp.kingdee("late.json", *kingdee_bills())
    assert erp.run(crash=crash.AFTER_SEND).returncode == KILLED   # the gateway took it; the answer is lost
    erp.write_config(resend_within_seconds=0)                     # as if the agent came back much later
    ok(erp.run())
    assert gateway.payment_rows(*refs) == dict.fromkeys(refs, 1)
    log = (erp.root / "erp" / "agent.log").read_text("utf-8")
    assert '"event": "request_renewed"' in log
    assert sorted(erp.status_reports()) == sorted([(refs[0], "ACSC", None), (refs[1], "ACTC", None)])


# ---- running on its schedule -------------------------------------------------------------------------------

def test_runs_until_sigterm_and_stops_cleanly(erp, gateway):
    erp.write_config(watch_interval_seconds=1)
    proc = subprocess.Popen([*CLI, "agent", "--config", str(erp.config)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env_with())
    try:
        _, refs = erp.kingdee("live.json", *kingdee_bills())
        deadline = time.monotonic() + 30
        while not erp.files("processed") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [p.name for p in erp.files("processed")] == ["live.json"]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "watching" in out and "SIGTERM" in out and out.rstrip().endswith("directlink agent: stopped")
    assert gateway.payment_rows(*refs) == dict.fromkeys(refs, 1)


def test_a_refusal_that_is_not_the_files_fault_keeps_the_file_until_it_goes_through(erp, gateway):
    """A wrong operator (CERT_UNKNOWN), as a rate limit or an expired certificate would: the pass reports
    it and exits 1, the file stays in the outbox and nothing is paid; once the configuration is fixed the
    next pass sends it afresh and it is paid once."""
    erp.write_config(operator="checker")          # the maker's key under checker's name
    _, refs = erp.kingdee("w.json", *kingdee_bills())
    refused = erp.run()
    assert refused.returncode == 1 and "CERT_UNKNOWN" in refused.stdout + refused.stderr, refused.stderr[-2000:]
    assert "Traceback" not in refused.stderr
    assert [p.name for p in erp.files("outbox")] == ["w.json"] and erp.files("failed") == []
    assert gateway.payment_rows(*refs) == dict.fromkeys(refs, 0)
    erp.write_config()
    ok(erp.run())
    assert erp.files("outbox") == [] and [p.name for p in erp.files("processed")] == ["w.json"]
    assert gateway.payment_rows(*refs) == dict.fromkeys(refs, 1)


def test_a_file_too_large_for_the_gateway_fails_here_unsent(erp, gateway):
    """The agent knows the gateway's limit (max_body_bytes) and refuses a larger request itself: the file
    goes to failed/ with the reason, and nothing reaches the gateway."""
    erp.write_config(max_body_bytes=1024)
    _, refs = erp.kingdee("big.json", *kingdee_bills())
    ok(erp.run())
    assert erp.files("outbox") == [] and [p.name for p in erp.files("failed", ".json")] == ["big.json"]
    reason = erp.files("failed", ".reason.txt")[0].read_text("utf-8")
    assert reason.startswith("XML_TOO_LARGE: the signed request is") and "not sent" in reason
    assert gateway.payment_rows(*refs) == dict.fromkeys(refs, 0)


def test_a_too_large_answer_from_the_gateway_keeps_the_file(erp, tmp_path):
    """XML_TOO_LARGE names no request (the gateway signs it before reading one), so it could be a replay
    from someone on the path: the agent keeps the file and sends it again, as for any refusal that is not
    the file's fault; it never moves it to failed/ on that answer."""
    home = init_home(tmp_path / "small-gateway").home
    servers = Servers(home, tmp_path)
    try:
        _, base = servers.start(DIRECTLINK_MAX_BODY_BYTES="1024")
        erp.write_config(gateway=base, gateway_certificate=str(home / "certs" / "gateway.cert.pem"),
                         key=str(home / "demo" / "maker.key.pem"), certificate=str(home / "demo" / "maker.cert.pem"))
        erp.kingdee("big.json", *kingdee_bills())
        done = erp.run()
    finally:
        servers.stop_all()
    assert done.returncode == 1 and "XML_TOO_LARGE" in done.stdout + done.stderr, done.stderr[-2000:]
    assert [p.name for p in erp.files("outbox")] == ["big.json"] and erp.files("failed") == []


def test_a_payment_no_longer_visible_does_not_stop_the_others_being_reported(erp, gateway):
    """The operator loses 'query' on one account: the gateway answers NOT_FOUND for any status query that
    names a payment of it. The agent finds that one, stops asking about it (and says so), and goes on
    reporting the others."""
    import datetime as dt

    from agent_helpers import EXTERNAL_ACCOUNT, EXTERNAL_CNAPS

    from gateway.directory import set_grant
    from gateway.storage.engine import make_engine
    seen, hidden = (bill(f"KD-{token()}-{tag}", "30.00", fpayeracct=debtor, fpayeename="外部供应商",
                         fpayeeacct=EXTERNAL_ACCOUNT, frecbanknumber=EXTERNAL_CNAPS)
                    for tag, debtor in (("OP", OPERATING), ("PR", PAYROLL)))
    erp.kingdee("two.json", seen, hidden)
    ok(erp.run())
    engine = make_engine(gateway.settings.db_url)

    def grant(rights):
        with engine.begin() as conn:
            set_grant(conn, "DEMO", "maker", PAYROLL, rights, "100000.00", "300000.00",
                      dt.datetime.now(dt.UTC))
    grant({"pay"})
    try:
        gateway.clear()
        first = erp.run()
        assert first.returncode == 1 and "NOT_FOUND" in first.stdout + first.stderr
        reported = {(ref, status) for ref, status, _ in erp.status_reports()}
        assert (seen["fpayunique"], "ACSC") in reported
        assert not any(ref == hidden["fpayunique"] and status == "ACSC" for ref, status in reported)
        ok(erp.run())                                   # it is not asked about again
    finally:
        grant({"query", "pay"})
        engine.dispose()


def test_a_second_agent_on_the_same_state_file_or_outbox_refuses_to_start(tmp_path):
    from agent.state import State, StateBusy
    outbox = tmp_path / "out"
    outbox.mkdir()
    first = State(tmp_path / "a.db", outbox)
    try:
        with pytest.raises(StateBusy, match="state file"):
            State(tmp_path / "a.db", tmp_path)
        with pytest.raises(StateBusy, match="outbox"):
            State(tmp_path / "b.db", outbox)
    finally:
        first.close()
    State(tmp_path / "b.db", outbox).close()      # free again once the first has gone


def test_receipts_arrive_in_the_inbox_once_each_and_verify(erp, gateway):
    from cryptography import x509

    from gateway.protocol import receipts
    erp.write_config(accounts=[PAYROLL], receipts="both", status_format="kingdee.status.json")
    gateway.pay_internal(f"HAND-{token()}", "1004.05", debtor=PAYROLL)
    ok(erp.run())
    cert = x509.load_pem_x509_certificate((gateway.home / "certs" / "gateway.cert.pem").read_bytes())
    xml, pdf = erp.files("inbox", ".xml"), erp.files("inbox", ".pdf")
    assert len(xml) == len(pdf) == len(gateway.statement(PAYROLL)) and all("-receipt-R" in p.name for p in xml)
    checked = [receipts.verify_file(p.read_bytes(), cert).receipt for p in xml + pdf]
    assert [r.capital for r in checked].count("壹仟零肆元零伍分") == 2
    gateway.pay_internal(f"HAND-{token()}", "0.50", debtor=PAYROLL)
    before = {p.name for p in erp.files("inbox")}
    ok(erp.run())
    new = sorted({p.name for p in erp.files("inbox")} - before)
    got = sorted(n.rsplit(".", 1)[1] for n in new if "-receipt-" in n)
    assert got == ["pdf", "xml"] and len(new) == 3      # and the statement page
    assert {receipts.verify_file((erp.inbox / n).read_bytes(), cert).receipt.capital
            for n in new if "-receipt-" in n} == {"伍角整"}
    ok(erp.run())
    assert {p.name for p in erp.files("inbox")} == before | set(new)      # nothing twice
