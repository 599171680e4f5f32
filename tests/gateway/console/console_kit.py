"""What the console's tests share. The console in a real browser: Debian's Chromium driven by Playwright, WebAuthn through Chromium's
virtual authenticator (CDP WebAuthn.addVirtualAuthenticator), the gateway served on a free port.

One browser for the whole session (starting one costs about a second); a fresh context (cookies, its own
virtual security key) for each operator a test signs in."""
from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

from sqlalchemy import select

from gateway.console import keys
from gateway.protocol import client as dl
from gateway.storage.tables import payments

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
# Where the screenshots go: DIRECTLINK_SCREENSHOTS=docs/console refreshes those of docs/console.md.
SHOTS = Path(os.environ.get("DIRECTLINK_SCREENSHOTS") or Path(tempfile.gettempdir()) / "directlink-console-shots")


class Console:
    """A served gateway with its console, and what the tests do to it."""

    def __init__(self, gateway, home, browser, url: str):
        self.gateway, self.home, self.browser = gateway, home, browser
        self.url = url.replace("127.0.0.1", "localhost")   # WebAuthn needs a host name (and localhost is secure)
        self.contexts = []

    def xml(self, operator: str) -> dl.Client:
        demo = self.home.home / "demo"
        return dl.Client(self.url, "DEMO", operator, (demo / f"{operator}.key.pem").read_bytes(),
                         (demo / f"{operator}.cert.pem").read_bytes(),
                         self.home.path(self.home.gateway_cert).read_bytes())

    def enrolment_link(self, operator: str, client: str = "DEMO", hours: float = 1) -> str:
        with self.gateway.engine.begin() as conn:
            token, _ = keys.new_enrolment(conn, client, operator, dt.datetime.now(dt.UTC), hours)
        return f"{self.url}/console/enrol/{token}"

    def page(self, lang: str | None = None):
        """A new browser context with a virtual security key (user verification on), and a page in it."""
        context = self.browser.new_context(viewport={"width": 1280, "height": 860})
        self.contexts.append(context)
        if lang:
            context.add_cookies([{"name": "dl_lang", "value": lang, "url": self.url + "/console/"}])
        page = context.new_page()
        page.set_default_timeout(10_000)
        cdp = context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "usb", "hasResidentKey": True, "hasUserVerification": True,
            "isUserVerified": True, "automaticPresenceSimulation": True}})
        page.cdp, page.authenticator = cdp, added["authenticatorId"]
        return page

    def enrol(self, page, operator: str) -> None:
        page.goto(self.enrolment_link(operator))
        page.click("#enrol-form button")
        page.wait_for_selector("#signin-link:not([hidden])")

    def sign_in(self, page, operator: str, client: str = "DEMO") -> None:
        page.goto(f"{self.url}/console/signin")
        page.fill("#client", client)
        page.fill("#operator", operator)
        page.click("#signin-form button")
        page.wait_for_url("**/console/inbox")

    def signed_in(self, operator: str, lang: str = "en"):
        page = self.page(lang)
        self.enrol(page, operator)
        self.sign_in(page, operator)
        return page

    def state(self, payment_id: str) -> str:
        with self.gateway.engine.connect() as conn:
            return conn.execute(select(payments.c.state).where(payments.c.id == payment_id)).scalar()

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def pending(maker: dl.Client, ref: str, amount: str = "250000.00", payee: str = "ACME Supplies (Shanghai) Co., Ltd.",
            account: str = "6222000000009001") -> tuple[str, str]:
    """A payment over the operating account's approval threshold: (PaymentId, OrderDigest), PENDING_APPROVAL."""
    from gateway.protocol.xmlsafe import q, text
    from gateway.setup import DEMO_ACCOUNTS
    answer = maker.call(dl.payment_order(dl.payment(ref, DEMO_ACCOUNTS["operating"], amount, payee, account)))
    status = answer.body.find(q("PaymentStatus"))
    assert text(status.find(q("State"))) == "PENDING_APPROVAL", answer.raw if hasattr(answer, "raw") else answer
    return text(status.find(q("PaymentId"))), text(status.find(q("OrderDigest")))


def shot(page, name: str) -> None:
    """A screenshot, for a person to look at (docs/console.md shows some)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
