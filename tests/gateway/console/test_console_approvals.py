"""Enrolment, sign-in, the inbox and approvals signed with a security key, in Chromium (SQLite and
PostgreSQL). The browser does what a person does; the database and the audit chain are the judges."""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select, update
from typer.testing import CliRunner

from console.console_kit import pending, shot
from gateway import directory, rulebook
from gateway.clearing import Clearing
from gateway.cli import app as cli
from gateway.console import evidence
from gateway.protocol import client as dl
from gateway.setup import DEMO_ACCOUNTS
from gateway.storage.tables import audit_log, payment_approvals

OPERATING = DEMO_ACCOUNTS["operating"]


def grant(console, operator: str, rights: set[str], approve_limit: str | None = None) -> None:
    with console.gateway.engine.begin() as conn:
        directory.set_grant(conn, "DEMO", operator, OPERATING, rights, None, None, dt.datetime.now(dt.UTC),
                            approve_limit=approve_limit)


def rows(page) -> set[str]:
    return {r.removeprefix("row-") for r in page.eval_on_selector_all("tbody tr[id^=row-]", "rs => rs.map(r => r.id)")}


def decide(page, ids: list[str], button: str = "#approve") -> dict[str, str]:
    for pid in ids:
        page.check(f"#pick-{pid}")
    page.click(button)
    page.wait_for_selector("#results li")
    return dict(line.split(": ", 1) for line in page.inner_text("#results").splitlines())


def approvals_by(console, pid: str) -> list:
    with console.gateway.engine.connect() as conn:
        return conn.execute(select(payment_approvals.c.approver, payment_approvals.c.decision)
                            .where(payment_approvals.c.payment_id == pid)).all()


def test_enrol_sign_in_approve_one_and_the_evidence_verifies_offline(console):
    pid, _ = pending(console.xml("maker"), "CON-1", "250000.00", "<script>alert(1)</script> 上海某某科技")
    page = console.page()   # Chinese by default
    console.enrol(page, "checker")
    console.sign_in(page, "checker")
    assert page.inner_text("h1") == "待我审批"
    # A payee name holding markup is drawn as text: no element was made of it, no script ran.
    assert "<script>alert(1)</script> 上海某某科技" in page.inner_text(f"#row-{pid} .payee")
    assert page.locator("td.payee script").count() == 0
    shot(page, "inbox-zh")
    assert decide(page, [pid]) == {pid: "SETTLED"}   # within the bank: settled at once
    assert console.state(pid) == "SETTLED" and approvals_by(console, pid) == [("checker", "APPROVE")]
    shot(page, "inbox-approved-zh")
    page.reload()
    assert page.locator("#empty").is_visible()

    # The evidence: in the client's chain, and `directlink audit verify` checks its signature offline.
    with console.gateway.engine.connect() as conn:
        record = conn.execute(select(audit_log).where(audit_log.c.code == evidence.SIGNED)).one()
    proof = json.loads(record.request)
    said = json.loads(proof["statement"])
    assert said["decision"] == "APPROVE" and said["items"] == [{"payment_id": pid, "order_digest": said["items"][0]["order_digest"]}]
    result = CliRunner().invoke(cli, ["audit", "verify", "--home", str(console.home.home)])
    assert result.exit_code == 0, result.output
    assert "1 signed console decision(s)" in result.output and "intact" in result.output
    # The same evidence with another statement (another payment) does not verify.
    said["items"][0]["payment_id"] = "P20990101FFFFFFFFFFFF"
    forged = {**proof, "statement": json.dumps(said, sort_keys=True, ensure_ascii=False, separators=(",", ":"))}
    with console.gateway.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.id == record.id).values(request=json.dumps(forged).encode()))
        checked, problems = evidence.verify_all(conn)
    assert checked == 1 and len(problems) == 1 and "signature does not verify" in problems[0].problem


def test_the_inbox_shows_exactly_what_waits_for_this_operator(console):
    grant(console, "checker", {"query", "approve", "pay"}, approve_limit="300000.00")
    grant(console, "maker", {"query", "pay", "approve"})
    maker, checker = console.xml("maker"), console.xml("checker")
    mine, _ = pending(maker, "CON-A", "210000.00")            # the checker's to approve
    pending(maker, "CON-B", "310000.00")                      # over the checker's approval limit
    own, _ = pending(checker, "CON-C", "260000.00")           # the checker's own
    gone, _ = pending(maker, "CON-D", "220000.00")
    maker.call(dl.cancel(gone))                                # no longer waiting
    with console.gateway.engine.begin() as conn:               # a probable duplicate waits for an approver
        rulebook.set_rule(conn, "DEMO", "", "duplicate", {"window_days": 7}, dt.datetime.now(dt.UTC))
    again = [maker.call(dl.payment_order(dl.payment(ref, OPERATING, "3800.50", "上海某某科技有限公司", "31001234567890",
                                                    scheme="CNAPS", bank_code="102290012345")))
             for ref in ("CON-E1", "CON-E2")]
    held = again[1].body.find("{urn:directlink:v1}PaymentStatus").findtext("{urn:directlink:v1}PaymentId")
    page = console.signed_in("checker")
    assert rows(page) == {mine, held}
    assert "RULE_PROBABLE_DUPLICATE" in page.inner_text(f"#row-{held} td:nth-child(7)")   # the rule hits
    shot(page, "inbox-rules-en")
    other = console.signed_in("maker")
    assert rows(other) == {own}                               # never the maker's own
    viewer = console.page("en")
    console.enrol(viewer, "viewer")
    viewer.goto(f"{console.url}/console/signin")
    viewer.fill("#client", "DEMO")
    viewer.fill("#operator", "viewer")
    viewer.click("#signin-form button")
    viewer.wait_for_url("**/console/balances")                # no approve grant: straight to the balances
    viewer.goto(f"{console.url}/console/inbox")
    assert viewer.locator("#empty").is_visible()


def test_a_batch_is_approved_with_one_signature_then_settles(console):
    maker = console.xml("maker")
    inside = [pending(maker, f"CON-{n}")[0] for n in range(2)]
    answer = maker.call(dl.payment_order(dl.payment("CON-X", OPERATING, "210000.00", "深圳某某电子有限公司",
                                                    "4000123412341234", scheme="CNAPS", bank_code="102290012345")))
    outside = answer.body.find("{urn:directlink:v1}PaymentStatus").findtext("{urn:directlink:v1}PaymentId")
    page = console.signed_in("checker")
    assert decide(page, [*inside, outside]) == {inside[0]: "SETTLED", inside[1]: "SETTLED", outside: "ACCEPTED"}
    shot(page, "inbox-batch-en")
    Clearing(console.gateway.engine, console.gateway.settings, console.gateway.clock).run_once()
    assert console.state(outside) == "SETTLED"
    with console.gateway.engine.connect() as conn:
        assert conn.execute(select(audit_log.c.detail).where(audit_log.c.code == evidence.SIGNED)).scalar() \
            == "APPROVE " + " ".join([*inside, outside])


def test_the_maker_cannot_approve_their_own_payment_even_by_forging_the_page(console):
    grant(console, "maker", {"query", "pay", "approve"})
    grant(console, "checker", {"query", "pay", "approve"})
    own, digest = pending(console.xml("maker"), "CON-OWN")
    checkers, _ = pending(console.xml("checker"), "CON-OWN2")
    page = console.signed_in("maker")
    assert own not in rows(page)
    row = page.locator("tbody tr").first   # the page is forged to offer the maker's own payment
    row.evaluate("(r, a) => { const box = r.querySelector('input'); box.value = a[0]; box.dataset.digest = a[1];"
                 " r.id = 'row-' + a[0]; box.id = 'pick-' + a[0]; }", [own, digest])
    assert decide(page, [own]) == {own: "APPROVAL_BY_MAKER (the maker of a payment may not approve it)"}
    assert console.state(own) == "PENDING_APPROVAL" and approvals_by(console, own) == []
    assert console.state(checkers) == "PENDING_APPROVAL"


def test_a_payment_changed_after_the_page_was_drawn_is_refused_and_nothing_changes(console):
    maker = console.xml("maker")
    cancelled, _ = pending(maker, "CON-CAN")
    fine, _ = pending(maker, "CON-FINE")
    other, _ = pending(maker, "CON-DIG")
    page = console.signed_in("checker")
    assert rows(page) == {cancelled, fine, other}
    maker.call(dl.cancel(cancelled))   # after the page was drawn
    # One signed decision is taken whole or not at all: the batch with the cancelled payment changes nothing.
    refused = decide(page, [cancelled, fine])
    assert refused[cancelled].startswith("CANCELLED") and refused[fine].startswith("-")
    assert console.state(cancelled) == "CANCELLED" and console.state(fine) == "PENDING_APPROVAL"
    assert approvals_by(console, fine) == []
    shot(page, "inbox-refused-en")
    # What the approver saw is what they sign: a digest that is not the payment's is refused.
    page.reload()
    page.locator(f"#pick-{other}").evaluate("box => box.dataset.digest = 'A'.repeat(43) + '='")
    assert decide(page, [other])[other].startswith("APPROVAL_DIGEST_MISMATCH")
    assert console.state(other) == "PENDING_APPROVAL"
    page.reload()
    assert decide(page, [fine, other], "#reject") == {fine: "REJECTED", other: "REJECTED"}
    with console.gateway.engine.connect() as conn:
        codes = conn.execute(select(audit_log.c.code).where(audit_log.c.kind == "console")
                             .order_by(audit_log.c.chain, audit_log.c.seq)).scalars().all()
    assert codes.count(evidence.REFUSED) == 2 and codes.count(evidence.SIGNED) == 1


FLOW = """async ([decision, items, tamper]) => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const post = async (url, body) => {
    const r = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
                                body: JSON.stringify(body)});
    return [r.status, await r.json()];
  };
  const sign = async (options) => (await navigator.credentials.get(
    {publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)})).toJSON();
  const [, begun] = await post('/console/approvals/options', {decision, items});
  const credential = await sign(begun.options);
  if (tamper === 'other-statement') {   // signed over one statement, sent as the answer to another
    const [, second] = await post('/console/approvals/options', {decision: 'REJECT', items});
    return [await post('/console/approvals/decide', {handle: second.handle, credential})];
  }
  const first = await post('/console/approvals/decide', {handle: begun.handle, credential});
  const again = await post('/console/approvals/decide', {handle: begun.handle, credential});
  return [first, again];
}"""


def test_a_forged_or_replayed_assertion_is_refused(console):
    pid, digest = pending(console.xml("maker"), "CON-R")
    page = console.signed_in("checker")
    items = [{"payment_id": pid, "order_digest": digest}]
    [(status, answer)] = page.evaluate(FLOW, ["APPROVE", items, "other-statement"])
    assert (status, answer["code"]) == (400, "SIG_INVALID")
    assert console.state(pid) == "PENDING_APPROVAL"
    (status, answer), (again, replayed) = page.evaluate(FLOW, ["APPROVE", items, None])
    assert status == 200 and answer["ok"] and console.state(pid) == "SETTLED"
    assert (again, replayed["code"]) == (400, "PERMISSION_DENIED")   # its challenge was spent
    assert approvals_by(console, pid) == [("checker", "APPROVE")]
