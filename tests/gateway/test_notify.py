"""Notifications (issue 5): events written in the transaction of their change, delivered as signed XML by
HTTP POST to a real receiver, at least once with a stable EventId, with back-off, dead letters and replay,
and exactly once per event across two replicas on PostgreSQL.

The receiver is a real HTTP server in a thread; signatures are checked with signxml (and once with the
xmlsec1 command) against the gateway's certificate; time is the tests' clock, never a sleep."""
from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import OPERATING, PAYROLL, SUPPLIER
from lxml import etree
from processes import CLI, Servers, cli, env_with, free_port, xmlsec_valid
from signxml import XMLVerifier
from sqlalchemy import func, select

from domain.codes import PaymentState as S
from gateway import audit, sandbox, transitions
from gateway.notify import subscriptions
from gateway.notify.delivery import Delivery, backoff, dead_letters, replay, resolve
from gateway.notify.outbox import DEAD, DELIVERED, PENDING
from gateway.payments import load
from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q, text
from gateway.storage.tables import audit_log, outbox_events, payments
from gateway.storage.unit_of_work import UnitOfWork
from schemas import SCHEMA_DIR

PARSER = etree.XMLParser(resolve_entities=False, no_network=True)
EXTERNAL = dict(scheme="CNAPS", bank_code="102290012345")


# ---- a real receiver ----------------------------------------------------------------------------------------

class Receiver:
    """An ERP's notification endpoint: answers each POST by the next step of `plan` (then "ok"):
    "ok" 200, "500", "redirect" 302, "slow" (answers 200 after the gateway gave up: it did get the event)."""

    def __init__(self, port: int = 0, slow_seconds: float = 1.0, delay: float = 0.0, tls=None):
        self.plan: list[str] = []
        self.seen: list[tuple[dict, bytes, str]] = []       # every POST: headers, body, what was answered
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    step = receiver.plan.pop(0) if receiver.plan else "ok"
                    receiver.seen.append((dict(self.headers), body, step))
                if delay:
                    time.sleep(delay)
                if step == "slow":
                    time.sleep(slow_seconds)
                status = {"ok": 200, "slow": 200, "500": 500, "redirect": 302}[step]
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                with contextlib.suppress(OSError):   # the gateway stopped waiting
                    self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        if tls is not None:   # an ssl.SSLContext: the ERP answers https
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/erp/notifications"

    def accepted(self) -> list[tuple[dict, bytes]]:
        """What the ERP took in (a 2xx, even one the gateway no longer waited for)."""
        with self.lock:
            return [(h, b) for h, b, step in self.seen if step in ("ok", "slow")]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


# ---- helpers ------------------------------------------------------------------------------------------------

@pytest.fixture
def settings(home):
    """Short timeouts and back-off, so failures are quick; time itself is moved by the tests' clock."""
    # The receivers of these tests listen on this machine: loopback delivery is allowed here.
    return home.model_copy(update=dict(notify_timeout_seconds=0.5, notify_backoff_base_seconds=10.0,
                                       notify_backoff_max_seconds=60.0, notify_max_attempts=4,
                                       notify_concurrency=4, notify_private_addresses=True))


@pytest.fixture
def delivery(gateway, settings, clock):
    # jitter() == 1.0: each wait is exactly its full exponential value, so the tests can name it
    return Delivery(gateway.engine, settings, gateway.signer, clock=clock, jitter=lambda: 1.0)


def subscribe(gateway, client: str, url: str, kinds: str = "payment,credit", account: str | None = None):
    with gateway.engine.begin() as conn:
        return subscriptions.subscribe(conn, client, url, kinds, account, gateway.clock())


def credit(gateway, account: str = OPERATING, amount: str = "1234.56", **kw):
    fields = dict(payer_name="Shenzhen Widget Co.", payer_account="4000123456789", payer_bank_code="102584000004",
                  reference="INV-2026-0042")
    fields.update(kw)
    with gateway.engine.begin() as conn:
        return sandbox.credit(conn, account=account, amount=amount, now=gateway.clock(),
                              zone=gateway.settings.zone, own_cnaps_prefix=gateway.settings.own_cnaps_prefix,
                              **fields)


def outbox(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(outbox_events).order_by(outbox_events.c.id)).all()


def verified(gateway, body: bytes) -> etree._Element:
    """The notification, its signature verified by signxml against the gateway's certificate (pinned, never
    KeyInfo) and its signed content valid against schemas/notification.xsd."""
    signed = XMLVerifier().verify(body, x509_cert=gateway.signer.cert_pem).signed_xml
    root = etree.fromstring(body, PARSER)
    assert root[-1].tag == "{http://www.w3.org/2000/09/xmldsig#}Signature"     # the profile: last child
    assert etree.tostring(signed, method="c14n") == etree.tostring(_unsigned(root), method="c14n")
    xsd = etree.XMLSchema(etree.parse(str(SCHEMA_DIR.joinpath("notification.xsd"))))
    assert xsd.validate(root), xsd.error_log
    return signed


def _unsigned(root: etree._Element) -> etree._Element:
    copy = etree.fromstring(etree.tostring(root), PARSER)
    copy.remove(copy[-1])
    return copy


def event_id(root: etree._Element) -> str:
    return text(root.find(f"{q('Header')}/{q('EventId')}"))


def field(root: etree._Element, path: str) -> str | None:
    el = root.find("/".join(q(p) for p in path.split("/")))
    return None if el is None else text(el)


# ---- what is written, and when --------------------------------------------------------------------------------

def test_a_payee_who_subscribes_hears_of_the_next_transfer_to_it(gateway, maker, receiver):
    """Whom a transfer within the bank credits, and their subscriptions, are kept per configuration version
    (gateway/config_cache.py): a subscription made after a transfer applies to the next one, at once."""
    maker.call(dl.payment_order(dl.payment("OWN-1", OPERATING, "1.00", "ACME Supplies", SUPPLIER)))
    assert [r.event_id for r in outbox(gateway.engine)] == []
    subscribe(gateway, "ACME", receiver.url, kinds="credit")
    maker.call(dl.payment_order(dl.payment("OWN-2", OPERATING, "2.00", "ACME Supplies", SUPPLIER)))
    assert [r.event_id for r in outbox(gateway.engine)] == [f"CRDT:{SUPPLIER}:000000000002"]


def test_payment_changes_and_credits_arrive_signed_with_their_event_id(gateway, delivery, receiver, maker,
                                                                       tmp_path):
    subscribe(gateway, "DEMO", receiver.url)
    subscribe(gateway, "ACME", receiver.url, kinds="credit")
    paid = maker.call(dl.payment_order(dl.payment("N-1", OPERATING, "12.34", "ACME Supplies", SUPPLIER)))
    pid = text(paid.body.find(f"{q('PaymentStatus')}/{q('PaymentId')}"))
    receipt = credit(gateway)

    assert delivery.run_once()["delivered"] == 4
    got = {}
    for headers, body in receiver.accepted():
        root = verified(gateway, body)
        assert headers["Event-Id"] == event_id(root) and headers["Content-Type"] == "application/xml"
        got[event_id(root)] = root
    demo_events = sorted(e for e in got if e.startswith(f"PAY:{pid}:"))
    assert len(got) == 4 and len(demo_events) == 2
    accepted, settled = (got[e] for e in sorted(demo_events, key=lambda e: int(e.rsplit(":", 1)[1])))
    assert field(accepted, "PaymentStatusChange/State") == "ACCEPTED"
    assert field(accepted, "PaymentStatusChange/PreviousState") is None
    assert field(settled, "PaymentStatusChange/PreviousState") == "ACCEPTED"
    assert field(settled, "PaymentStatusChange/State") == "SETTLED"
    assert field(settled, "PaymentStatusChange/ClientRef") == "N-1"
    assert field(settled, "PaymentStatusChange/Amount") == "12.34"
    assert settled.find(f"{q('PaymentStatusChange')}/{q('Amount')}").get("currency") == "CNY"
    assert field(settled, "Header/Client") == "DEMO"
    # ACME was paid by another client inside the bank: an incoming credit, with the payer as counterparty
    acme = got[f"CRDT:{SUPPLIER}:000000000001"]
    assert field(acme, "Header/Client") == "ACME"
    assert field(acme, "IncomingCredit/Amount") == "12.34" and field(acme, "IncomingCredit/BankRef") == pid
    assert field(acme, "IncomingCredit/Payer/Account") == OPERATING
    # the sandbox credit from another bank, as its statement entry
    sbx = got[f"CRDT:{OPERATING}:{receipt.entry_id:012d}"]
    assert field(sbx, "IncomingCredit/Payer/Name") == "Shenzhen Widget Co."
    assert field(sbx, "IncomingCredit/Payer/BankCode") == "102584000004"
    assert field(sbx, "IncomingCredit/Reference") == "INV-2026-0042"
    assert field(sbx, "IncomingCredit/EntryId") == f"{receipt.entry_id:012d}"
    # an independent verifier, the xmlsec1 command, agrees with signxml
    cert = tmp_path / "gateway.cert.pem"
    cert.write_bytes(gateway.signer.cert_pem)
    assert xmlsec_valid(receiver.accepted()[0][1], cert, tmp_path)
    tampered = receiver.accepted()[0][1].replace(b"12.34", b"12.35")
    assert tampered != receiver.accepted()[0][1] and not xmlsec_valid(tampered, cert, tmp_path)
    assert {r.state for r in outbox(gateway.engine)} == {DELIVERED}
    assert delivery.run_once() == {}                                      # nothing is sent twice


def test_nothing_is_written_without_a_subscription_or_outside_its_filter(gateway, maker):
    credit(gateway)
    maker.call(dl.payment_order(dl.payment("N-2", OPERATING, "1.00", "ACME", SUPPLIER)))
    assert outbox(gateway.engine) == []
    subscribe(gateway, "DEMO", "http://127.0.0.1:9/x", account=PAYROLL)
    subscribe(gateway, "DEMO", "http://127.0.0.1:9/y", kinds="credit")
    maker.call(dl.payment_order(dl.payment("N-3", OPERATING, "1.00", "ACME", SUPPLIER)))
    assert outbox(gateway.engine) == []       # a payment from OPERATING: neither subscription wants it
    # a transfer between the client's own accounts is its payment, not an incoming credit
    maker.call(dl.payment_order(dl.payment("N-4", PAYROLL, "2.00", "Demo operating", OPERATING)))
    rows = outbox(gateway.engine)
    assert [(r.kind, r.subscription_id) for r in rows] == [("payment", 1), ("payment", 1)]
    assert len({r.event_id for r in rows}) == 2


def test_a_rolled_back_change_leaves_no_event(gateway, maker):
    subscribe(gateway, "DEMO", "http://127.0.0.1:9/x")
    answer = maker.call(dl.payment_order(dl.payment("N-5", OPERATING, "3.00", "Other Bank Co", "3100123",
                                                    **EXTERNAL)))
    pid = text(answer.body.find(f"{q('PaymentStatus')}/{q('PaymentId')}"))
    before = outbox(gateway.engine)
    assert [r.kind for r in before] == ["payment"]                      # ACCEPTED, committed with it

    class Boom(Exception):
        pass

    with pytest.raises(Boom), gateway.engine.begin() as conn, UnitOfWork(conn) as uow:
        transitions.move(uow, payment_id=pid, client="DEMO", before=S.ACCEPTED, after=S.PROCESSING,
                         actor="test", why="sent", now=gateway.clock())
        assert len(conn.execute(select(outbox_events)).all()) == 2   # written in this transaction ...
        raise Boom
    with pytest.raises(Boom), gateway.engine.begin() as conn:
        sandbox.credit(conn, account=OPERATING, amount="5.00", payer_name="X", payer_account="1",
                       now=gateway.clock(), zone=gateway.settings.zone, own_cnaps_prefix="999")
        raise Boom
    assert outbox(gateway.engine) == before                             # ... and gone with it
    with gateway.engine.connect() as conn:
        assert load(conn, pid).state == S.ACCEPTED


def test_a_batch_with_a_refused_payment_notifies_only_the_accepted_one(gateway, maker):
    subscribe(gateway, "DEMO", "http://127.0.0.1:9/x", kinds="payment")
    maker.call(dl.payment_order(dl.payment("N-6", OPERATING, "1.00", "ACME", SUPPLIER),
                                dl.payment("N-7", PAYROLL, "999999999.00", "ACME", SUPPLIER)))
    with gateway.engine.connect() as conn:
        stored = conn.execute(select(payments.c.id)).scalars().all()
    assert len(stored) == 1
    assert {r.event_id.split(":")[1] for r in outbox(gateway.engine)} == set(stored)


# ---- delivery: retries, back-off, dead letters ---------------------------------------------------------------

def test_at_least_once_through_refusal_500_and_timeout_with_backoff_on_the_clock(gateway, settings, clock,
                                                                               delivery):
    port = free_port()                      # nothing listens here yet: connection refused
    subscribe(gateway, "DEMO", f"http://127.0.0.1:{port}/erp")
    credit(gateway)
    [event] = outbox(gateway.engine)
    assert delivery.run_once() == {"retry": 1}
    waits = [10, 20, 40]                    # base 10 s, doubling (jitter pinned to the full value)
    receiver = Receiver(port=port, slow_seconds=1.0)
    try:
        receiver.plan = ["500", "slow"]     # then "ok"
        for attempt, wait in enumerate(waits, start=1):
            row = outbox(gateway.engine)[0]
            assert row.state == PENDING and row.attempts == attempt and row.lease is None
            assert row.due_at - clock() == pytest.approx(dt.timedelta(seconds=wait), abs=dt.timedelta(seconds=1))
            clock.offset += dt.timedelta(seconds=wait - 2)
            assert delivery.run_once() == {} and len(receiver.seen) == attempt - 1       # not due yet
            clock.offset += dt.timedelta(seconds=2)
            expected = "delivered" if attempt == len(waits) else "retry"
            assert delivery.run_once() == {expected: 1}
        row = outbox(gateway.engine)[0]
        assert row.state == DELIVERED and row.attempts == 4 and row.last_error is None
        assert [step for _, _, step in receiver.seen] == ["500", "slow", "ok"]
        # The slow answer came too late: the ERP got the event twice, the same EventId and the same content.
        (h1, b1), (h2, b2) = receiver.accepted()
        assert h1["Event-Id"] == h2["Event-Id"] == event.event_id
        assert etree.tostring(_unsigned(etree.fromstring(b1, PARSER)), method="c14n") == \
            etree.tostring(_unsigned(etree.fromstring(b2, PARSER)), method="c14n")
        assert len({h["Event-Id"] for h, _ in receiver.accepted()}) == 1          # one event after dedup
    finally:
        receiver.close()


def test_backoff_doubles_up_to_the_cap_with_jitter_between_half_and_full():
    assert [backoff(n, 5, 60, lambda: 1.0).total_seconds() for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    assert backoff(3, 5, 60, lambda: 0.0).total_seconds() == 10
    assert backoff(1000, 5, 60, lambda: 1.0).total_seconds() == 60      # no overflow after many attempts


def test_dead_letter_after_max_attempts_then_replay_delivers_it(gateway, clock, delivery, receiver):
    subscribe(gateway, "DEMO", receiver.url)
    credit(gateway)
    receiver.plan = ["500", "redirect", "500", "500"]
    errors = []
    for _ in range(4):
        delivery.run_once()
        errors.append(outbox(gateway.engine)[0].last_error)
        clock.offset += dt.timedelta(minutes=5)
    assert errors == ["HTTP 500", "HTTP 302 (redirects are not followed)", "HTTP 500", "HTTP 500"]
    assert len(receiver.seen) == 4                                     # the redirect was not followed
    [row] = outbox(gateway.engine)
    assert row.state == DEAD and row.attempts == 4
    assert delivery.run_once() == {}                                   # dead letters are not retried
    with gateway.engine.connect() as conn:
        assert [d.id for d in dead_letters(conn)] == [row.id] and dead_letters(conn, "ACME") == []
    with pytest.raises(ValueError, match="not a dead letter"), gateway.engine.begin() as conn:
        replay(conn, [row.id, 999], clock())
    with gateway.engine.begin() as conn:
        assert replay(conn, [row.id], clock()) == [row.id]
    assert delivery.run_once() == {"delivered": 1}
    [row] = outbox(gateway.engine)
    assert row.state == DELIVERED and len(receiver.accepted()) == 1
    with gateway.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_log)
                            .where(audit_log.c.code == "NOTIFY_REPLAYED")).scalar() == 1
        assert audit.verify(conn)[1] == []


def test_an_event_older_than_the_max_age_is_given_up_on_its_next_failure(gateway, settings, clock, receiver):
    subscribe(gateway, "DEMO", receiver.url)
    credit(gateway)
    receiver.plan = ["500"]
    clock.offset += dt.timedelta(hours=settings.notify_max_age_hours)
    delivery = Delivery(gateway.engine, settings, gateway.signer, clock=clock)
    assert delivery.run_once() == {"dead": 1}
    assert outbox(gateway.engine)[0].attempts == 1


def test_a_crash_mid_delivery_delivers_again_after_the_lease_never_loses_it(gateway, clock, delivery, receiver):
    subscribe(gateway, "DEMO", receiver.url)
    credit(gateway)
    [claimed] = delivery.claim()            # ... and the process dies before it records anything
    assert delivery.run_once() == {}        # the lease keeps everyone else off it meanwhile
    clock.offset += delivery.lease + dt.timedelta(seconds=1)
    assert delivery.run_once() == {"delivered": 1}
    # the dead claim's late outcome changes nothing: the row is no longer under its lease
    assert delivery.record(claimed, "HTTP 500") == "lease_lost"
    [row] = outbox(gateway.engine)
    assert row.state == DELIVERED and row.attempts == 2 and len(receiver.accepted()) == 1


def test_an_event_whose_every_claim_dies_ends_as_a_dead_letter(gateway, settings, clock, delivery, receiver):
    """A delivery that kills its process each time (so no outcome is ever recorded) must not loop forever."""
    subscribe(gateway, "DEMO", receiver.url)
    credit(gateway)
    for attempt in range(1, settings.notify_max_attempts + 1):
        assert [c.attempts for c in delivery.claim()] == [attempt]
        clock.offset += delivery.lease + dt.timedelta(seconds=1)
    assert delivery.claim() == [] and receiver.seen == []
    [row] = outbox(gateway.engine)
    assert row.state == DEAD and row.last_error == f"no outcome recorded after {settings.notify_max_attempts} attempts"


def test_an_inactive_subscription_parks_its_events_as_dead_letters(gateway, delivery, receiver):
    sub = subscribe(gateway, "DEMO", receiver.url)
    credit(gateway)
    with gateway.engine.begin() as conn:
        subscriptions.change(conn, sub.id, gateway.clock(), active=False)
    assert delivery.run_once() == {"dead": 1} and receiver.seen == []
    credit(gateway)                          # nothing new is written for an inactive subscription
    assert len(outbox(gateway.engine)) == 1
    with gateway.engine.begin() as conn:
        subscriptions.change(conn, sub.id, gateway.clock(), active=True)
        replay(conn, None, gateway.clock())
    assert delivery.run_once() == {"delivered": 1}


def test_subscriptions_refuse_bad_input_and_audit_every_change(gateway):
    bad = [("NOBODY", "http://erp/x", "payment", None, "unknown client"),
           ("DEMO", "ftp://erp/x", "payment", None, "http"),
           ("DEMO", "https://user:pw@erp/x", "payment", None, "password"),
           ("DEMO", "https://erp/x", "payments", None, "kinds"),
           ("DEMO", "https://erp/x", "", None, "kinds"),
           ("DEMO", "https://erp/x", "credit", SUPPLIER, "not an account of client DEMO")]
    for client, url, kinds, account, problem in bad:
        with pytest.raises(subscriptions.SubscriptionError, match=problem), gateway.engine.begin() as conn:
            subscriptions.subscribe(conn, client, url, kinds, account, gateway.clock())
    with gateway.engine.connect() as conn:
        assert subscriptions.listing(conn) == []
    sub = subscribe(gateway, "DEMO", "https://erp.example/notify", kinds="credit", account=PAYROLL)
    with gateway.engine.begin() as conn:
        changed = subscriptions.change(conn, sub.id, gateway.clock(), kinds="payment,credit", account="")
    assert changed.kinds == {"payment", "credit"} and changed.account is None
    with gateway.engine.connect() as conn:
        codes = conn.execute(select(audit_log.c.code).where(audit_log.c.code.like("NOTIFY_%"))
                             .order_by(audit_log.c.id)).scalars().all()
    assert codes == ["NOTIFY_SUBSCRIBED", "NOTIFY_CHANGED"]


# ---- two replicas on PostgreSQL -------------------------------------------------------------------------------

@pytest.fixture
def pg_gateway(tmp_path, pg_url, clock):
    from gateway.app import build_gateway
    from gateway.setup import init_home
    gw = build_gateway(init_home(tmp_path / "pg-home", database_url=pg_url))
    gw.clock = clock
    yield gw
    gw.engine.dispose()


def test_a_claim_skips_rows_another_replica_is_claiming(pg_gateway):
    """A claim in progress elsewhere (its rows locked, its transaction open) neither blocks this claim nor
    shares a row with it: FOR UPDATE SKIP LOCKED."""
    gateway = pg_gateway
    subscribe(gateway, "DEMO", "http://127.0.0.1:9/x")
    for i in range(6):
        credit(gateway, amount=f"{i + 1}.00")
    delivery = Delivery(gateway.engine, gateway.settings, gateway.signer, clock=gateway.clock)
    with gateway.engine.connect() as other, other.begin():
        held = other.execute(select(outbox_events.c.id).order_by(outbox_events.c.id).limit(4)
                             .with_for_update(skip_locked=True)).scalars().all()
        result: list = []
        worker = threading.Thread(target=lambda: result.append(delivery.claim()))
        worker.start()
        worker.join(timeout=10)
        assert not worker.is_alive(), "the claim waited for the other replica's locks"
    assert len(held) == 4
    assert sorted(c.id for c in result[0]) == sorted({r.id for r in outbox(gateway.engine)} - set(held))


@pytest.mark.slow
def test_two_replicas_deliver_every_event_exactly_once(pg_gateway, tmp_path):
    """Two `serve` processes run the delivery job every second, two POSTs at a time, so their runs overlap,
    and the test runs it in two more threads meanwhile: every event reaches the ERP exactly once."""
    gateway = pg_gateway
    home = gateway.settings
    receiver = Receiver(delay=0.05)
    servers = Servers(home.home, tmp_path)
    try:
        subscribe(gateway, "DEMO", receiver.url)
        subscribe(gateway, "ACME", receiver.url)
        expected = set()
        for i in range(60):
            done = credit(gateway, account=(OPERATING, SUPPLIER)[i % 2], amount=f"{i + 1}.00",
                          reference=f"REP-{i}")
            expected.add(f"CRDT:{done.account}:{done.entry_id:012d}")
        for _ in range(2):
            servers.start(DIRECTLINK_NOTIFY_INTERVAL_SECONDS="1", DIRECTLINK_NOTIFY_CONCURRENCY="2",
                          DIRECTLINK_NOTIFY_PRIVATE_ADDRESSES="true",
                          DIRECTLINK_CLEARING_INTERVAL_SECONDS="3600")
        local = Delivery(gateway.engine, home.model_copy(update=dict(notify_concurrency=2,
                                                                     notify_private_addresses=True)), gateway.signer)
        threads = [threading.Thread(target=local.run_once) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.monotonic() + 30
        while {r.state for r in outbox(gateway.engine)} != {DELIVERED} and time.monotonic() < deadline:
            time.sleep(0.2)
        assert {r.state for r in outbox(gateway.engine)} == {DELIVERED}
        time.sleep(1.5)                     # another due time or two: nothing more may arrive
        ids = [h["Event-Id"] for h, _ in receiver.accepted()]
        assert sorted(ids) == sorted(expected) and len(ids) == 60      # each exactly once
        assert all(step == "ok" for _, _, step in receiver.seen)
    finally:
        servers.stop_all()
        receiver.close()


@pytest.mark.slow
def test_the_cli_subscribes_runs_lists_dead_letters_and_replays(tmp_path):
    """`directlink notify ...` and `directlink sandbox credit` as an operator runs them (SQLite home)."""
    cli("init", str(tmp_path / "h"))
    with (tmp_path / "h" / "directlink.toml").open("a", encoding="utf-8") as settings_file:
        settings_file.write("notify_private_addresses = true   # the test's receiver is on this machine\n")
    h = ["--home", str(tmp_path / "h")]
    port = free_port()
    done = cli("notify", "subscribe", "DEMO", f"http://127.0.0.1:{port}/erp", "--kinds", "credit", *h)
    assert done.returncode == 0 and "#1 DEMO credit" in done.stdout, done.stderr
    assert cli("notify", "subscribe", "DEMO", "file:///etc/passwd", *h).returncode == 2
    booked = cli("sandbox", "credit", OPERATING, "88.00", "--payer-name", "Widget Co", "--payer-account", "4000123",
                 "--reference", "INV-9", *h)
    assert booked.returncode == 0 and "EntryId 000000000002" in booked.stdout, booked.stderr
    refused = cli("sandbox", "credit", OPERATING, "1.005", "--payer-name", "W", "--payer-account", "1", *h)
    assert refused.returncode == 2 and "AMOUNT_INVALID" in refused.stderr and "nothing was booked" in refused.stderr
    run = subprocess.run([*CLI, "notify", "run", *h], capture_output=True, text=True, timeout=60,
                         env=env_with(DIRECTLINK_NOTIFY_MAX_ATTEMPTS="1"))
    assert run.returncode == 0 and "1 dead" in run.stdout, run.stderr + run.stdout
    dead = cli("notify", "dead", *h)
    assert f"CRDT:{OPERATING}:000000000002" in dead.stdout and "1 dead letter(s)" in dead.stdout
    assert cli("notify", "replay", *h).returncode == 2                        # ids or --all
    receiver = Receiver(port=port)
    try:
        assert cli("notify", "replay", "--all", *h).returncode == 0
        assert "1 delivered" in cli("notify", "run", *h).stdout
        assert [hd["Event-Id"] for hd, _ in receiver.accepted()] == [f"CRDT:{OPERATING}:000000000002"]
    finally:
        receiver.close()
    assert "no dead letters" in cli("notify", "dead", *h).stdout


def test_no_delivery_to_a_non_public_address_unless_allowed(gateway, home, clock, receiver):
    """By default the gateway will not POST into loopback, private or link-local networks (a subscription
    must not make it reach the bank's own hosts); the event waits with the reason, and is delivered once an
    operator allows such addresses (an ERP on the same LAN)."""
    subscribe(gateway, "DEMO", receiver.url)
    credit(gateway)
    strict = Delivery(gateway.engine, home, gateway.signer, clock=clock, jitter=lambda: 1.0)
    assert strict.run_once() == {"retry": 1}
    with gateway.engine.connect() as conn:
        error = conn.execute(select(outbox_events.c.last_error)).scalar()
    assert "127.0.0.1" in error and "not a public address" in error and receiver.accepted() == []
    assert resolve("http://169.254.169.254/latest", private_allowed=False)[1] is not None
    assert resolve("http://10.1.2.3:8080/erp", private_allowed=False)[1] is not None
    clock.offset += dt.timedelta(hours=1)
    allowed = Delivery(gateway.engine, home.model_copy(update={"notify_private_addresses": True}),
                       gateway.signer, clock=clock, jitter=lambda: 1.0)
    assert allowed.run_once() == {"delivered": 1} and len(receiver.accepted()) == 1


class RebindingDns:
    """A name server under an attacker's control, injected as the delivery's resolver: the ERP's name
    resolves to `first` once, then to `then`. Numeric hosts resolve to themselves; nothing asks a real one."""

    def __init__(self, first: str, then: str):
        self.answers, self.then, self.asked = [first], then, 0

    def __call__(self, host: str, port: int) -> list[str]:
        if host != "erp.example.test":
            return [host]
        self.asked += 1
        return [self.answers.pop(0) if self.answers else self.then]


# 127.0.0.1 as each special-purpose form of IPv6 carries it; and the other ranges that are not public.
LOOPBACK_FORMS = ("64:ff9b::7f00:1", "64:ff9b:1::7f00:1", "2002:7f00:1::", "2001:0:4136:e378:8000:63bf:80ff:fffe",
                  "::ffff:127.0.0.1", "::ffff:0:7f00:1", "::7f00:1")
NOT_PUBLIC = ("127.0.0.1", "10.1.2.3", "100.64.0.1", "169.254.169.254", "172.16.0.1", "192.0.0.8", "192.168.1.1",
              "198.18.0.1", "192.88.99.1", "224.0.1.1", "240.0.0.1", "0.0.0.0", "255.255.255.255", "::", "::1",
              "fe80::1", "fec0::1", "fc00::1", "ff02::1", "100::1", "2001:db8::1", "3fff::1")


@pytest.mark.parametrize("address", LOOPBACK_FORMS + NOT_PUBLIC)
def test_every_special_purpose_address_of_both_families_is_refused(address):
    """Issue 29, hole 3: before the fix the NAT64, 6to4 and IPv4-compatible forms of 127.0.0.1, the 6to4
    relay anycast and multicast counted as public (Python's is_global)."""
    found, why = resolve("http://erp.example.test/hook", private_allowed=False, resolver=lambda host, port: [address])
    assert found is None and "erp.example.test resolves to" in why
    assert resolve("http://erp.example.test/hook", private_allowed=True,
                   resolver=lambda host, port: [address]) == (str(ipaddress.ip_address(address)), None)


def test_one_non_public_address_among_public_ones_refuses_the_name():
    """A public address for the check and a loopback one beside it must not pass: every one is judged.
    (Nothing connects here: the public address is only classified.)"""
    public = "93.184.216.34"
    assert resolve("http://erp.example.test/", False, lambda host, port: [public]) == (public, None)
    assert resolve("http://erp.example.test/", False, lambda host, port: [public, "::ffff:127.0.0.1"])[0] is None


def test_a_name_that_rebinds_after_the_check_is_not_asked_again():
    """DNS rebinding: public when checked, loopback after. The name is resolved once; the request is then
    built on the checked address (pinned), so the connection never asks the name server again."""
    from gateway.notify.delivery import pinned
    dns = RebindingDns(first="93.184.216.34", then="127.0.0.1")
    address, refused = resolve("http://erp.example.test:8080/hook", False, dns)
    assert (address, refused) == ("93.184.216.34", None) and dns.asked == 1
    assert pinned("http://erp.example.test:8080/hook", address)[0] == "http://93.184.216.34:8080/hook"


def test_a_delivery_connects_to_the_address_it_checked_with_the_name_in_host(gateway, settings, clock, receiver):
    """The POST goes to the address resolved once (loopback, allowed by the test's settings), not to what the
    name resolves to afterwards (127.0.0.2, where nothing listens), and still names the ERP's host and port
    in Host, and keeps the path and query."""
    dns = RebindingDns(first="127.0.0.1", then="127.0.0.2")
    port = urlsplit(receiver.url).port
    subscribe(gateway, "DEMO", f"http://erp.example.test:{port}/hook?tenant=7")
    credit(gateway)
    assert Delivery(gateway.engine, settings, gateway.signer, clock=clock, jitter=lambda: 1.0,
                    resolver=dns).run_once() == {"delivered": 1}
    (headers, _body), = receiver.accepted()
    assert headers["Host"] == f"erp.example.test:{port}" and dns.asked == 1


def test_a_delivery_to_a_name_that_resolves_to_a_loopback_form_sends_nothing(gateway, home, clock, receiver):
    port = urlsplit(receiver.url).port
    subscribe(gateway, "DEMO", f"http://erp.example.test:{port}/hook")
    credit(gateway)
    strict = Delivery(gateway.engine, home, gateway.signer, clock=clock, jitter=lambda: 1.0,
                      resolver=lambda host, port: ["64:ff9b::7f00:1"])
    assert strict.run_once() == {"retry": 1} and receiver.accepted() == []
    with gateway.engine.connect() as conn:
        assert "a NAT64 address" in conn.execute(select(outbox_events.c.last_error)).scalar()


def test_pinned_requests_keep_the_name_for_tls_and_brackets_for_ipv6():
    from gateway.notify.delivery import pinned
    url, host, ext = pinned("https://user:pw@erp.example.test:8443/a/b?c=1", "2001:db8::7")
    assert url == "https://user:pw@[2001:db8::7]:8443/a/b?c=1"
    assert host == {"Host": "erp.example.test:8443"} and ext == {"sni_hostname": "erp.example.test"}
    assert pinned("http://erp.example.test/x", "198.51.100.4") == \
        ("http://198.51.100.4/x", {"Host": "erp.example.test"}, {})


def test_a_pinned_https_post_still_proves_the_erps_name(tmp_path):
    """Connecting to an address instead of the name must not weaken TLS: the handshake sends the ERP's name
    and the certificate must carry it (a server whose certificate names another host is refused)."""
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from gateway.notify.delivery import pinned
    key, now = ec.generate_private_key(ec.SECP256R1()), dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "erp.example.test")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("erp.example.test")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    (tmp_path / "erp.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "erp.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(tmp_path / "erp.pem", tmp_path / "erp.key")
    receiver = Receiver(tls=server_side)
    port = urlsplit(receiver.url).port
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=str(tmp_path / "erp.pem"))) as http:
            url, host, ext = pinned(f"https://erp.example.test:{port}/hook", "127.0.0.1")
            assert http.post(url, content=b"<x/>", headers=host, extensions=ext).status_code == 200
            url, host, ext = pinned(f"https://other.example.test:{port}/hook", "127.0.0.1")
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                http.post(url, content=b"<x/>", headers=host, extensions=ext)
    finally:
        receiver.close()
    (headers, _), = receiver.accepted()
    assert headers["Host"] == f"erp.example.test:{port}"
