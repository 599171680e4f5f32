"""Delivery health in Chromium, on SQLite and PostgreSQL (the test event writes): a failing subscription
shows its last error and next attempt, a dead letter shows, an approver sends a test event (CSRF-protected,
audited, queued for the normal delivery and valid against schemas/notification.xsd), and a viewer (query
only) sees no button and is refused when the request is forged anyway."""
from __future__ import annotations

import socket
from pathlib import Path

from lxml import etree
from sqlalchemy import select

from console.console_kit import shot
from console.test_console_tracker import pay, sign_in
from gateway.notify import subscriptions
from gateway.notify.delivery import Delivery
from gateway.storage.tables import audit_log, outbox_events

SCHEMA = Path(__file__).parents[3] / "schemas" / "notification.xsd"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deliver(console, attempts: int) -> None:
    settings = console.gateway.settings.model_copy(update=dict(
        notify_private_addresses=True, notify_timeout_seconds=0.5, notify_max_attempts=attempts))
    Delivery(console.gateway.engine, settings, console.gateway.signer, clock=console.gateway.clock).run_once()


def events(console, **where) -> list:
    with console.gateway.engine.connect() as conn:
        query = select(outbox_events)
        for name, value in where.items():
            query = query.where(outbox_events.c[name] == value)
        return conn.execute(query.order_by(outbox_events.c.id)).all()


def test_failing_dead_and_a_test_event_by_an_approver_never_a_viewer(console):
    url = f"http://127.0.0.1:{closed_port()}/erp/hook"
    with console.gateway.engine.begin() as conn:
        sub = subscriptions.subscribe(conn, "DEMO", url, "payment", None, console.gateway.clock())
    maker = console.xml("maker")
    pay(maker, "DH-1", "10.00", "华为技术有限公司")
    deliver(console, attempts=1)                      # one attempt allowed: dead letters at once
    pay(maker, "DH-2", "11.00", "华为技术有限公司")
    deliver(console, attempts=12)                     # failing, to be tried again
    failing = [e for e in events(console, state="PENDING") if e.last_error]
    assert failing and all(e.attempts == 1 for e in failing)
    failing = failing[0]
    assert len(events(console, state="DEAD")) >= 1

    page = console.signed_in("checker")
    page.click("nav a[href='/console/delivery']")
    assert url in page.inner_text(f"#sub-{sub.id}")
    assert failing.last_error in page.inner_text("#failing") and failing.event_id in page.inner_text("#failing")
    assert page.locator("#dead tbody tr").count() == len(events(console, state="DEAD"))
    page.click(f"#sub-{sub.id} .test-button")
    page.wait_for_selector("#sent")
    [test] = events(console, kind="test")
    assert test.state == "PENDING" and test.event_id in page.inner_text("#sent")
    etree.XMLSchema(etree.parse(str(SCHEMA))).assertValid(etree.fromstring(test.payload))
    assert b"<RequestedBy>checker</RequestedBy>" in test.payload
    shot(page, "delivery-en")

    viewer = sign_in(console, "viewer")
    viewer.goto(f"{console.url}/console/delivery")
    assert url in viewer.inner_text(f"#sub-{sub.id}") and viewer.locator(".test-button").count() == 0
    csrf = viewer.get_attribute("meta[name=csrf-token]", "content")
    status = viewer.evaluate("""async ([csrf, id]) => (await fetch('/console/delivery/test', {method: 'POST',
        headers: {'Content-Type': 'application/x-www-form-urlencoded'},
        body: new URLSearchParams({csrf, subscription: id})})).status""", [csrf, str(sub.id)])
    assert status == 403 and len(events(console, kind="test")) == 1
    # Without the CSRF token, even the approver is refused.
    status = page.evaluate("""async (id) => (await fetch('/console/delivery/test', {method: 'POST',
        headers: {'Content-Type': 'application/x-www-form-urlencoded'},
        body: new URLSearchParams({subscription: id})})).status""", str(sub.id))
    assert status == 403 and len(events(console, kind="test")) == 1
    with console.gateway.engine.connect() as conn:
        said = conn.execute(select(audit_log.c.code, audit_log.c.operator_id).where(
            audit_log.c.code.in_(("NOTIFY_TEST", "NOTIFY_TEST_REFUSED", "CSRF_REFUSED")))
            .order_by(audit_log.c.id)).all()
    assert [tuple(r) for r in said] == [("NOTIFY_TEST", "checker"), ("NOTIFY_TEST_REFUSED", "viewer"),
                                        ("CSRF_REFUSED", "checker")]
