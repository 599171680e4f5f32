"""The console's frame in Chromium: languages, CSRF, sessions (sign-out, idle expiry, an operator disabled
or a certificate revoked), the sign-in rate limit, enrolment links, balances and the cash chart, the
headers every page carries, and how fast pages draw. On SQLite only: nothing here depends on the database
(the approvals, which do, run on both in test_console_approvals.py)."""
from __future__ import annotations

import datetime as dt
import statistics
import time

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from console.console_kit import pending, shot
from gateway import directory, ledger
from gateway.cli import app as cli
from gateway.console.frame import CSP
from gateway.console.labels import CATALOGUE
from gateway.setup import DEMO_ACCOUNTS
from gateway.storage.tables import audit_log, certificates, console_challenges, console_sessions


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'gateway.db'}"


def console_codes(console) -> list[str]:
    with console.gateway.engine.connect() as conn:
        return conn.execute(select(audit_log.c.code).where(audit_log.c.kind == "console")
                            .order_by(audit_log.c.id)).scalars().all()


def test_every_label_has_both_languages():
    assert all(zh and en and zh != en for zh, en in CATALOGUE.values())


def test_chinese_by_default_english_by_the_link_and_back(console):
    page = console.page()
    page.goto(f"{console.url}/console/signin")
    assert page.inner_text("h1") == "登录" and page.get_attribute("html", "lang") == "zh-CN"
    assert page.inner_text("#signin-form button") == "使用安全密钥登录"
    page.click("#lang")
    assert page.inner_text("h1") == "Sign in" and page.get_attribute("html", "lang") == "en"
    assert page.url.endswith("/console/signin")
    shot(page, "signin-en")
    page.click("#lang")
    assert page.inner_text("h1") == "登录"
    # Only a path of the console may follow the switch: never another site.
    page.goto(f"{console.url}/console/lang/en?next=//elsewhere.example/")
    assert page.url.startswith(f"{console.url}/console/signin")


def test_pages_carry_a_strict_policy_and_the_session_cookie_is_strict(console):
    page = console.signed_in("checker")
    answer = page.request.get(f"{console.url}/console/inbox")
    assert answer.headers["content-security-policy"] == CSP
    assert "script-src 'self';" in CSP and "unsafe" not in CSP
    assert answer.headers["cache-control"] == "no-store" and answer.headers["x-frame-options"] == "DENY"
    [cookie] = [c for c in page.context.cookies() if c["name"] == "dl_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    # No inline script anywhere: every script element names this origin's file, and the browser reports
    # nothing the policy blocked.
    said = []
    page.on("console", lambda message: said.append(message.text))
    for name in ("inbox", "balances", "payments", "statements", "reconcile", "audit", "delivery"):
        page.goto(f"{console.url}/console/{name}")
        assert not [m for m in said if "Content Security Policy" in m], said
        assert page.eval_on_selector_all("script", "s => s.map(e => e.src.endsWith('/console/static/console.js') "
                                                   "&& !e.textContent.trim())") == [True]


def test_a_request_without_the_csrf_token_is_refused_and_changes_nothing(console):
    pid, digest = pending(console.xml("maker"), "CSRF-1")
    page = console.signed_in("checker")
    status = page.evaluate("""async (items) => (await fetch('/console/approvals/options', {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify({decision: 'APPROVE', items})})).status""",
                           [{"payment_id": pid, "order_digest": digest}])
    assert status == 403
    forged = page.evaluate("""async () => (await fetch('/console/signout', {method: 'POST',
        headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'csrf=guess'})).status""")
    assert forged == 403
    page.goto(f"{console.url}/console/inbox")   # still signed in, the payment untouched
    assert page.locator(f"#row-{pid}").is_visible() and console.state(pid) == "PENDING_APPROVAL"
    assert console_codes(console).count("CSRF_REFUSED") == 2
    huge = page.request.post(f"{console.url}/console/approvals/options", data="x" * (300 * 1024),
                             headers={"Content-Type": "application/json"})
    assert huge.status == 413


def test_sign_out_and_the_idle_timeout_end_the_session(console, clock):
    console.gateway.clock = clock
    page = console.signed_in("checker")
    page.click("#signout")
    page.wait_for_url(lambda url: url.endswith("/console/signin?out=1"))
    page.goto(f"{console.url}/console/inbox")
    assert "/console/signin" in page.url
    console.sign_in(page, "checker")
    clock.offset = dt.timedelta(minutes=console.gateway.settings.console_idle_minutes, seconds=5)
    page.goto(f"{console.url}/console/balances")
    assert page.url.endswith("/console/signin?ended=1")
    assert page.inner_text("#note") == "Your session has ended. Please sign in again."
    assert "SIGNOUT" in console_codes(console)
    # A sign-in clears the sessions and challenges of more than a day ago.
    clock.offset = dt.timedelta(days=2)
    console.sign_in(page, "checker")
    with console.gateway.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(console_sessions)).scalar() == 1
        assert conn.execute(select(func.count()).select_from(console_challenges)).scalar() == 1


@pytest.mark.parametrize("how", ["disabled", "certificate revoked", "keys revoked"])
def test_disabling_the_operator_or_revoking_a_certificate_ends_their_session(console, how):
    page = console.signed_in("checker")
    now = dt.datetime.now(dt.UTC)
    if how == "keys revoked":
        done = CliRunner().invoke(cli, ["operators", "revoke-keys", "DEMO", "checker", "--home", str(console.home.home)])
        assert done.exit_code == 0 and "1 security key(s) of DEMO/checker revoked" in done.output
    with console.gateway.engine.begin() as conn:
        if how == "disabled":
            directory.set_operator_enabled(conn, "DEMO", "checker", False, now)
        elif how == "certificate revoked":
            fp = conn.execute(select(certificates.c.fingerprint).where(certificates.c.operator_id == "checker")).scalar()
            directory.revoke_certificate(conn, fp, now)
    page.goto(f"{console.url}/console/inbox")
    assert page.url.endswith("/console/signin?ended=1")
    page.fill("#client", "DEMO")
    page.fill("#operator", "checker")
    page.click("#signin-form button")
    if how != "certificate revoked":   # disabled, or without a key: no sign-in either
        page.wait_for_selector("#status[data-kind=error]")
        assert "/console/signin" in page.url
    else:                   # the key still works: a new session, begun after the revocation
        page.wait_for_url("**/console/inbox")


def test_sign_in_attempts_are_rate_limited_and_audited(console):
    page = console.page("en")
    console.enrol(page, "checker")
    # An operator nobody enrolled gets the same answer as one that does not exist (audited aside).
    unknown = page.request.post(f"{console.url}/console/signin/options", data={"client": "NOBODY", "operator": "x"})
    assert unknown.status == 400
    limit = console.gateway.settings.console_signin_attempts
    answers = [page.request.post(f"{console.url}/console/signin/options",
                                 data={"client": "DEMO", "operator": "checker"}).status for _ in range(limit + 1)]
    assert answers == [200] * limit + [429]
    page.goto(f"{console.url}/console/signin")
    page.fill("#client", "DEMO")
    page.fill("#operator", "checker")
    page.click("#signin-form button")
    page.wait_for_selector("#status[data-kind=error]")
    assert "RATE_LIMITED" in page.inner_text("#status")
    assert console_codes(console).count("SIGNIN_LIMITED") == 2


def test_an_enrolment_link_works_once_and_not_after_it_expires(console, clock):
    page = console.page("en")
    home = str(console.home.home)
    printed = CliRunner().invoke(cli, ["operators", "enrol", "DEMO", "checker", "--home", home, "--url", console.url])
    assert printed.exit_code == 0, printed.output
    link, said = printed.output.splitlines()
    assert link.startswith(f"{console.url}/console/enrol/") and said.startswith("one-time enrolment link for DEMO/checker")
    nobody = CliRunner().invoke(cli, ["operators", "enrol", "DEMO", "nobody", "--home", home])
    assert nobody.exit_code == 2 and "no operator nobody of client DEMO" in nobody.output
    page.goto(link)
    shot(page, "enrol-en")
    page.click("#enrol-form button")
    page.wait_for_selector("#signin-link:not([hidden])")
    again = page.goto(link)
    assert again.status == 404 and "unknown, used or expired" in page.inner_text("main")
    console.gateway.clock = clock
    later = console.enrolment_link("viewer", hours=1)
    clock.offset = dt.timedelta(hours=1, seconds=1)
    assert page.goto(later).status == 404
    assert "KEY_ENROLLED" in console_codes(console)


def test_balances_and_the_cash_position_chart(console):
    pending(console.xml("maker"), "CASH-1", "250000.00")
    page = console.page("en")
    console.enrol(page, "viewer")
    page.goto(f"{console.url}/console/signin")
    page.fill("#client", "DEMO")
    page.fill("#operator", "viewer")
    page.click("#signin-form button")
    page.wait_for_url("**/console/balances")
    with console.gateway.engine.connect() as conn:
        figures = ledger.balances(conn, [DEMO_ACCOUNTS["operating"], DEMO_ACCOUNTS["payroll"]])
    cells = page.eval_on_selector_all("#accounts tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.innerText))")
    assert {c[0]: (c[3], c[4]) for c in cells} == {a: (f"{b / 100:,.2f}", f"{v / 100:,.2f}")
                                                   for a, (b, v) in figures.items()}
    assert figures[DEMO_ACCOUNTS["operating"]][0] - figures[DEMO_ACCOUNTS["operating"]][1] == 25_000_000
    chart = page.locator("#position-CNY svg")
    assert chart.locator("circle").count() == 30 and chart.locator("rect").count() == 1   # today's outflow
    assert "250,000.00" in chart.locator("rect title").text_content()
    shot(page, "balances-en")
    page.click("#lang")
    assert page.inner_text("h1") == "余额与头寸"
    shot(page, "balances-zh")


def test_pages_draw_in_under_200_ms_on_the_demo_data(console):
    for n in range(3):
        pid, _ = pending(console.xml("maker"), f"FAST-{n}", "210000.00")
    page = console.signed_in("checker")
    timings = {}
    for name in ("inbox", "balances", "payments", "statements", "reconcile", "audit", "delivery", f"payments/{pid}"):
        runs = []
        for _ in range(7):
            started = time.perf_counter()
            assert page.request.get(f"{console.url}/console/{name}").status == 200
            runs.append(time.perf_counter() - started)
        timings[name] = statistics.median(runs)
    print("console page times (median of 7):", {k: f"{v * 1000:.1f} ms" for k, v in timings.items()})
    assert max(timings.values()) < 0.2, timings


def test_sign_in_and_approve_with_the_keyboard_alone(console):
    pid, _ = pending(console.xml("maker"), "KEYS-1")
    page = console.page("en")
    console.enrol(page, "checker")
    page.goto(f"{console.url}/console/signin")
    assert page.evaluate("document.activeElement.id") == "client"   # autofocus
    page.keyboard.type("DEMO")
    page.keyboard.press("Tab")
    page.keyboard.type("checker")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/inbox")
    for _ in range(14):   # skip link, the pages of the navigation, the language, sign-out, then the first payment
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == f"pick-{pid}":
            break
    page.keyboard.press("Space")
    for _ in range(2):                            # the comment, then Approve
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "approve"
    page.keyboard.press("Enter")
    page.wait_for_selector("#results li")
    assert console.state(pid) == "SETTLED"
