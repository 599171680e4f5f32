"""Enrolment, sign-in, the inbox and approvals signed with a security key, in Chromium."""
from __future__ import annotations

from console_kit import pending, shot


def test_enrol_sign_in_and_approve_one(console):
    pid, _ = pending(console.xml("maker"), "CON-1")
    page = console.page("en")
    console.enrol(page, "checker")
    console.sign_in(page, "checker")
    assert page.locator(f"#row-{pid}").is_visible()
    page.check(f"#pick-{pid}")
    page.click("#approve")
    page.wait_for_selector("#results li")
    assert page.inner_text("#results") .startswith(f"{pid}: ")
    assert console.state(pid) == "SETTLED"   # within the bank: settled at once
    shot(page, "inbox-approved")
