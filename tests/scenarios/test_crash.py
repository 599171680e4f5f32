"""Crash safety with real processes (security.md E, CRS-01..03): the gateway SIGKILLs itself at a named
crash point (gateway/crash.py, env DIRECTLINK_CRASH_AT), is started again without it, and the client
recovers the way spec section 2 tells it to: the same bytes again (same MessageId), or a new message with
the same ClientRef. Nothing may be lost, nothing doubled, and the books must still balance.

Runs on SQLite and PostgreSQL (the `home` fixture). Every process started here is stopped here."""
from __future__ import annotations

import subprocess

import httpx
import pytest
from conftest import OPERATING, SUPPLIER, booked_total
from lxml import etree
from processes import CLI, ROOT, Servers, env_with
from sqlalchemy import func, select

from domain.codes import PaymentState as S
from gateway import audit, crash
from gateway.protocol import client as dl
from gateway.protocol import signing
from gateway.protocol.xmlsafe import q, text
from gateway.storage.engine import make_engine
from gateway.storage.tables import (
    accounts,
    audit_log,
    entries,
    holds,
    messages,
    payment_events,
    payments,
    sim_clearing,
)

pytestmark = pytest.mark.slow

KILLED = -9                                   # Popen.returncode of a process ended by SIGKILL
CLEARING_ACCOUNT = "GLCNYCLEARING"
EXTERNAL = dict(scheme="CNAPS", bank_code="102290012345")
CREDITOR_ACCOUNT = "31001234567890"
SHORT = {crash.REQUEST_BEFORE_COMMIT: "RBC", crash.REQUEST_AFTER_COMMIT: "RAC",
         crash.CLEARING_AFTER_SENT: "CAS", crash.CLEARING_AFTER_ANSWER: "CAA"}
INT_AMOUNT, EXT_AMOUNT = 1_250_000, 380_050  # minor units of 12500.00 and 3800.50


# ---- processes --------------------------------------------------------------------------------------------

@pytest.fixture
def servers(home, tmp_path):
    s = Servers(home.home, tmp_path)
    try:
        yield s
    finally:
        s.stop_all()


def clearing_pass(home, **env: str) -> subprocess.CompletedProcess:
    """`directlink clearing run --home HOME` in a process of its own."""
    return subprocess.run([*CLI, "clearing", "run", "--home", str(home.home)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env_with(**env))


# ---- the client side --------------------------------------------------------------------------------------

def operator(home, name: str = "maker") -> dl.Client:
    demo = home.home / "demo"
    return dl.Client("http://unused", "DEMO", name, (demo / f"{name}.key.pem").read_bytes(),
                     (demo / f"{name}.cert.pem").read_bytes(), home.path(home.gateway_cert).read_bytes())


def post_raw(base: str, body: bytes) -> httpx.Response:
    """Post the exact bytes; a connection dropped by a dying server raises httpx.TransportError."""
    return httpx.post(f"{base}/v1/messages", content=body, headers={"Content-Type": "application/xml"},
                      timeout=30)


def verified(client: dl.Client, body: bytes, resp: httpx.Response) -> dl.Answer:
    """The answer, its signature verified against the pinned gateway certificate and bound to `body`."""
    return dl.verify_answer(resp.status_code, resp.content, client.gateway_cert, signing.digest_b64(body))


def report(answer: dl.Answer) -> dict[str, tuple[str, str | None, str]]:
    """ClientRef -> (State, Reason code, PaymentId) of a PaymentReport."""
    out = {}
    for s in answer.body.iterfind(q("PaymentStatus")):
        reason = s.find(q("Reason"))
        out[text(s.find(q("ClientRef")))] = (text(s.find(q("State"))),
                                              None if reason is None else reason.get("code"),
                                              text(s.find(q("PaymentId"))))
    return out


def message_id(body: bytes) -> str:
    return text(etree.fromstring(body).find(f"{q('Header')}/{q('MessageId')}"))


def the_order(int_ref: str, ext_ref: str):
    """One internal payment (settles at once) and one to another bank (accepted, funds held)."""
    return dl.payment_order(
        dl.payment(int_ref, OPERATING, "12500.00", "ACME Supplies", SUPPLIER),
        dl.payment(ext_ref, OPERATING, "3800.50", "上海某某科技有限公司", CREDITOR_ACCOUNT, **EXTERNAL))


# ---- what must hold after any crash -----------------------------------------------------------------------

def check_books(engine, where: str) -> None:
    """Money conserved, holds consistent with the held column, at most one settlement debit per payment,
    the debit present exactly when the payment settled, and an intact audit trail."""
    assert booked_total(engine) == 0, f"{where}: the books do not balance"
    with engine.connect() as conn:
        active = dict(conn.execute(select(holds.c.account, func.sum(holds.c.amount))
                                   .where(holds.c.released_at.is_(None)).group_by(holds.c.account)).all())
        for number, booked, held, client_id in conn.execute(
                select(accounts.c.number, accounts.c.booked, accounts.c.held, accounts.c.client_id)):
            assert held == active.get(number, 0), f"{where}: {number} held {held} != active holds {active}"
            if client_id is not None:
                assert booked - held >= 0, f"{where}: {number} is overdrawn"
        for p in conn.execute(select(payments)).all():
            debits = conn.execute(select(func.count()).select_from(entries).where(
                entries.c.payment_id == p.id, entries.c.account == p.debtor_account,
                entries.c.direction == "DBIT")).scalar()
            expected = 1 if p.state in (S.SETTLED, S.RETURNED) else 0
            assert debits == expected, f"{where}: {p.client_ref} ({p.state}) has {debits} debit entries"
            hold_rows = conn.execute(select(holds).where(holds.c.payment_id == p.id)).all()
            assert len(hold_rows) <= 1, f"{where}: {p.client_ref} has {len(hold_rows)} holds"
            still_held = any(h.released_at is None for h in hold_rows)
            assert still_held == (p.state in (S.PENDING_APPROVAL, S.ACCEPTED, S.PROCESSING, S.UNKNOWN)), \
                f"{where}: {p.client_ref} is {p.state} with hold active={still_held}"
        checked, findings = audit.verify(conn)
        assert checked > 0 and findings == [], f"{where}: audit chain broken: {findings}"


def payments_by_ref(engine) -> dict[str, list]:
    with engine.connect() as conn:
        rows = conn.execute(select(payments).order_by(payments.c.created_at)).all()
    out: dict[str, list] = {}
    for r in rows:
        out.setdefault(r.client_ref, []).append(r)
    return out


def balances(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(accounts.c.number, accounts.c.booked)).all())


# ---- request crash points ---------------------------------------------------------------------------------

@pytest.mark.parametrize("point", [crash.REQUEST_BEFORE_COMMIT, crash.REQUEST_AFTER_COMMIT])
def test_request_crash_then_retry_processes_the_order_exactly_once(home, servers, point):
    engine = make_engine(home.db_url)
    try:
        _request_crash(home, servers, engine, point)
    finally:
        engine.dispose()


def _request_crash(home, servers, engine, point):
    maker = operator(home)
    tag = SHORT[point]
    int_ref, ext_ref = f"CRS-{tag}-INT", f"CRS-{tag}-EXT"
    body = maker.request(the_order(int_ref, ext_ref))      # built once: the retry sends these bytes
    mid = message_id(body)
    opening = balances(engine)

    proc, base = servers.start(DIRECTLINK_CRASH_AT=point)
    with pytest.raises(httpx.TransportError):
        post_raw(base, body)                                        # the server dies: no answer at all
    assert proc.wait(timeout=15) == KILLED, f"the server was not SIGKILLed at {point}"

    # What the crash left behind.
    with engine.connect() as conn:
        stored = conn.execute(select(messages).where(messages.c.client_id == "DEMO",
                                                     messages.c.message_id == mid)).first()
        audited = conn.execute(select(func.count()).select_from(audit_log).where(
            audit_log.c.message_id == mid, audit_log.c.kind == "request")).scalar()
    found = payments_by_ref(engine)
    if point == crash.REQUEST_BEFORE_COMMIT:
        # The transaction never committed: nothing of it may survive.
        assert stored is None and audited == 0 and found == {}
        assert balances(engine) == opening
    else:
        # Committed before the crash: the payments exist and the answer was remembered.
        assert stored is not None and stored.http_status == 200 and audited == 1
        assert sorted(found) == sorted([int_ref, ext_ref])
        assert [r.state for r in found[int_ref]] == [S.SETTLED]
    check_books(engine, f"after the crash at {point}")

    # The client, having no answer, sends the same bytes again (same MessageId) to the restarted gateway.
    proc, base = servers.start()
    resp = post_raw(base, body)
    again = verified(maker, body, resp)
    assert (again.status, again.code) == (200, "OK"), again.detail
    got = report(again)
    assert list(got) == [int_ref, ext_ref]
    assert got[int_ref][:2] == ("SETTLED", None) and got[ext_ref][:2] == ("ACCEPTED", None)
    found = payments_by_ref(engine)
    assert {ref: [r.id for r in rows] for ref, rows in found.items()} == \
        {int_ref: [got[int_ref][2]], ext_ref: [got[ext_ref][2]]}, "exactly one payment per ClientRef"
    with engine.connect() as conn:
        stored = conn.execute(select(messages).where(messages.c.client_id == "DEMO",
                                                     messages.c.message_id == mid)).one()
        audited = conn.execute(select(func.count()).select_from(audit_log).where(
            audit_log.c.message_id == mid, audit_log.c.kind == "request")).scalar()
    assert bytes(stored.response) == resp.content, "the answer is the one remembered with the MessageId"
    # Executed exactly once: before the crash (after_commit; the retry had no further effect) or only
    # after the restart (before_commit; the first attempt left nothing).
    assert audited == 1
    # And once more, now that an answer exists: byte for byte the same answer.
    assert post_raw(base, body).content == resp.content

    # After the replay window a client would send a new message with the same ClientRefs: same payments.
    body2 = maker.request(the_order(int_ref, ext_ref))
    assert message_id(body2) != mid
    retry = verified(maker, body2, post_raw(base, body2))
    assert (retry.status, retry.code) == (200, "OK"), retry.detail
    again2 = report(retry)
    assert {ref: v[2] for ref, v in again2.items()} == {ref: v[2] for ref, v in got.items()}
    assert again2[int_ref][0] == "SETTLED"
    assert again2[ext_ref][0] in ("ACCEPTED", "PROCESSING", "SETTLED")   # serve runs the clearing job too

    servers.stop(proc)
    assert {ref: len(rows) for ref, rows in payments_by_ref(engine).items()} == {int_ref: 1, ext_ref: 1}
    check_books(engine, f"after recovery from {point}")
    after = balances(engine)
    ext_state = payments_by_ref(engine)[ext_ref][0].state
    paid_out = INT_AMOUNT + (EXT_AMOUNT if ext_state == S.SETTLED else 0)
    assert after[OPERATING] == opening[OPERATING] - paid_out
    assert after[SUPPLIER] == opening[SUPPLIER] + INT_AMOUNT


# ---- clearing crash points --------------------------------------------------------------------------------

@pytest.mark.parametrize("point", [crash.CLEARING_AFTER_SENT, crash.CLEARING_AFTER_ANSWER])
def test_clearing_crash_then_recovery_settles_exactly_once(home, gateway, point):
    engine = gateway.engine
    maker = operator(home)
    ref = f"CRS-{SHORT[point]}"
    body = maker.request(dl.payment_order(dl.payment(ref, OPERATING, "3800.50", "上海某某科技有限公司",
                                                     CREDITOR_ACCOUNT, **EXTERNAL)))
    reply = gateway.handle(body)
    [(state, reason, pid)] = report(dl.verify_answer(reply.status, reply.body, maker.gateway_cert,
                                                     signing.digest_b64(body))).values()
    assert (state, reason) == ("ACCEPTED", None)
    opening = balances(engine)

    died = clearing_pass(home, DIRECTLINK_CRASH_AT=point)
    assert died.returncode == KILLED, f"the clearing pass was not SIGKILLed at {point}: {died}"
    with engine.connect() as conn:
        row = conn.execute(select(payments).where(payments.c.id == pid)).one()
        recorded = conn.execute(select(sim_clearing).where(sim_clearing.c.payment_id == pid)).all()
    assert row.state == S.PROCESSING and row.attempts == 1
    if point == crash.CLEARING_AFTER_SENT:
        assert recorded == [], "clearing must not have received it yet"
    else:
        assert [r.outcome for r in recorded] == ["SETTLED"], "clearing decided before the crash"
    check_books(engine, f"after the crash at {point}")
    assert balances(engine) == opening

    # Recovery: passes without the crash, with the PROCESSING timeout made short.
    outputs = []
    for _ in range(6):
        done = clearing_pass(home, DIRECTLINK_CLEARING_TIMEOUT_SECONDS="0")
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout.strip())
        with engine.connect() as conn:
            state = conn.execute(select(payments.c.state).where(payments.c.id == pid)).scalar()
        if state not in (S.ACCEPTED, S.PROCESSING, S.UNKNOWN):
            break
    assert state == S.SETTLED, f"not settled after {len(outputs)} passes: {outputs}"
    assert clearing_pass(home, DIRECTLINK_CLEARING_TIMEOUT_SECONDS="0").stdout.strip() == "nothing due"

    with engine.connect() as conn:
        moves = [r.to_state for r in conn.execute(select(payment_events.c.to_state).where(
            payment_events.c.payment_id == pid).order_by(payment_events.c.id))]
        recorded = conn.execute(select(sim_clearing).where(sim_clearing.c.payment_id == pid)).all()
        attempts = conn.execute(select(payments.c.attempts).where(payments.c.id == pid)).scalar()
        debits = conn.execute(select(func.count()).select_from(entries).where(
            entries.c.payment_id == pid, entries.c.account == OPERATING,
            entries.c.direction == "DBIT")).scalar()
        active = conn.execute(select(func.count()).select_from(holds).where(
            holds.c.payment_id == pid, holds.c.released_at.is_(None))).scalar()
    if point == crash.CLEARING_AFTER_SENT:
        # Clearing never got it: the timeout makes it UNKNOWN, clearing says "never received", sent again
        # under the same PaymentId.
        assert moves == ["ACCEPTED", "PROCESSING", "UNKNOWN", "PROCESSING", "SETTLED"], outputs
        assert attempts == 2
    else:
        # Clearing had settled it: UNKNOWN is resolved by asking, never by sending again.
        assert moves == ["ACCEPTED", "PROCESSING", "UNKNOWN", "SETTLED"], outputs
        assert attempts == 1
    assert len(recorded) == 1 and recorded[0].outcome == "SETTLED", "clearing holds one record of it"
    assert debits == 1 and active == 0
    check_books(engine, f"after recovery from {point}")
    after = balances(engine)
    assert after[OPERATING] == opening[OPERATING] - EXT_AMOUNT
    assert after[CLEARING_ACCOUNT] == opening.get(CLEARING_ACCOUNT, 0) + EXT_AMOUNT
