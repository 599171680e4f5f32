"""The audit view in Chromium: an approval signed in the console shows in the client's chain with the key
that signed it, filters narrow it, and the chain's state turns to broken when a record is edited behind the
gateway's back. SQLite: the view only reads (the edit is the attacker's)."""
from __future__ import annotations

import pytest
from sqlalchemy import update

from console.console_kit import pending, shot
from console.test_console_approvals import decide
from gateway.storage.tables import audit_log


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'gateway.db'}"


def codes(page) -> list[str]:
    return page.eval_on_selector_all("#records tbody td.code", "cs => cs.map(c => c.textContent)")


def test_the_chain_shows_a_console_approval_filters_and_catches_an_edit(console):
    pid, _ = pending(console.xml("maker"), "AU-1")
    page = console.signed_in("checker")
    assert decide(page, [pid]) == {pid: "SETTLED"}
    page.click("nav a[href='/console/audit']")
    assert page.get_attribute("#chain-state", "data-state") == "intact"
    assert "1 signed decisions" in page.inner_text("#chain-state")
    shown = codes(page)
    assert shown[:1] != [] and {"APPROVAL_SIGNED", "SIGNIN", "KEY_ENROLLED"} <= set(shown)
    page.fill("#f-code", "APPROVAL_SIGNED")
    page.press("#f-code", "Enter")
    page.wait_for_load_state()
    assert codes(page) == ["APPROVAL_SIGNED"]
    assert page.inner_text("#records tbody td:nth-child(5)") == "checker"
    page.goto(f"{console.url}/console/audit?payment={pid}")
    assert set(codes(page)) >= {"PENDING_APPROVAL", "SETTLED"}
    shot(page, "audit-en")
    with console.gateway.engine.begin() as conn:   # someone edits a record in the database
        conn.execute(update(audit_log).where(audit_log.c.code == "APPROVAL_SIGNED").values(detail="APPROVE nothing"))
    page.goto(f"{console.url}/console/audit")
    assert page.get_attribute("#chain-state", "data-state") == "broken"
    assert "content does not match its hash" in page.inner_text("#chain-state")
