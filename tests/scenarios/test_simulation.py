"""A seeded randomized simulation of the whole gateway (in the spirit of TigerBeetle's VOPR and Jepsen's
bank test), on SQLite and PostgreSQL.

One random.Random(seed) drives everything: new payment orders (internal, to other banks, over the
approval threshold, from two accounts, batches), exact retries of earlier request bytes (same MessageId),
retries as new messages with the same ClientRefs, duplicates with changed amounts, reused MessageIds with
other content, approvals, rejections and stale-digest approvals, cancels, status queries, clearing passes
with random faults (refused, answer lost, instruction lost, returned later), crashes at every crash point
(gateway/crash.py: the hook raises SimulatedCrash, so the open transaction rolls back and nothing after
the point runs), and time passing (so PROCESSING times out and requests go stale).

Every answer is checked against an oracle computed from the database just before the request (what the
spec says must happen), and after every step money must be conserved. At the end, clearing runs without
faults until nothing changes, and the final invariants are checked (see `check_final`).

A failure names its seed and database and lists the last operations; replay it with
    pytest "tests/scenarios/test_simulation.py::test_simulation[<sqlite|postgresql>-<seed>]"
Background jobs are switched off so that a seed replays the same operations. SIMULATION_SEEDS=N runs seeds
0..N-1 (default 5, about 35 s for both databases).
"""
from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from conftest import OPERATING, PAYROLL, SUPPLIER, booked_total, snapshot
from lxml import etree
from sqlalchemy import func, select

from domain.codes import PaymentState as S
from domain.states import HOLDING, RELEASED, allowed
from gateway import audit, crash, directory, jobs
from gateway.clearing import Clearing
from gateway.protocol import client as dl
from gateway.protocol import signing
from gateway.protocol.xmlsafe import q, text
from gateway.settings import ClearingFaults
from gateway.storage.tables import (
    accounts,
    audit_log,
    entries,
    grants,
    holds,
    messages,
    payment_approvals,
    payment_events,
    payments,
    sim_clearing,
)

SEEDS = range(int(os.environ.get("SIMULATION_SEEDS", "5")))   # e.g. SIMULATION_SEEDS=200 for a long run
STEPS = 150
CLIENT = "DEMO"
APPROVAL_THRESHOLD = 20_000_000            # 200,000.00: payments from OPERATING at or above wait (directory)
EXT_NAME, EXT_ACCOUNT, EXT_BANK = "上海某某科技有限公司", "31001234567890", "102290012345"
OWN_BANK = "999100000001"                  # a CNAPS code of this bank (own_cnaps_prefix): settles at once
CLEARING_ACCOUNT = "GLCNYCLEARING"
AT_REST = frozenset({S.SETTLED, S.RETURNED, S.REJECTED, S.FAILED, S.CANCELLED, S.PENDING_APPROVAL})


class SimulatedCrash(BaseException):
    """The process dies at a crash point: nothing after it runs; an open transaction rolls back."""


@pytest.fixture
def no_background_jobs(monkeypatch):
    """The app's scheduler would run clearing on its own clock: only the simulation may decide."""

    class Idle:
        def shutdown(self, wait: bool = True) -> None:
            pass

    monkeypatch.setattr(jobs, "start", lambda gateway: Idle())


@dataclass(frozen=True)
class Spec:
    """One payment as the ERP means it; the same Spec always renders the same content."""

    ref: str
    debtor: str
    amount: int                 # minor units
    external: bool
    own_cnaps: bool = False     # internal, but addressed by this bank's CNAPS code instead of INTERNAL

    @property
    def text_amount(self) -> str:
        return f"{self.amount // 100}.{self.amount % 100:02d}"

    def element(self):
        if self.external:
            return dl.payment(self.ref, self.debtor, self.text_amount, EXT_NAME, EXT_ACCOUNT, scheme="CNAPS",
                              bank_code=EXT_BANK)
        if self.own_cnaps:
            return dl.payment(self.ref, self.debtor, self.text_amount, "ACME Supplies", SUPPLIER, scheme="CNAPS",
                              bank_code=OWN_BANK)
        return dl.payment(self.ref, self.debtor, self.text_amount, "ACME Supplies", SUPPLIER)

    @property
    def bank_code(self) -> str:
        return EXT_BANK if self.external else OWN_BANK if self.own_cnaps else ""

    def same_as(self, row) -> bool:
        return (row.debtor_account, row.amount, row.creditor_account, row.creditor_bank_code) == \
            (self.debtor, self.amount, EXT_ACCOUNT if self.external else SUPPLIER, self.bank_code)


@dataclass
class Sent:
    """A request as built and signed once; retries send exactly these bytes."""

    n: int
    who: str
    kind: str                   # order | approval | cancel | status | reuse
    args: tuple
    body: bytes
    message_id: str
    created: dt.datetime
    answer: bytes | None = None


def statuses(answer: dl.Answer) -> list[tuple[str, str, str | None, str | None]]:
    """(ClientRef, State, Reason code, PaymentId) of each PaymentStatus, in order."""
    out = []
    for s in answer.body.iterfind(q("PaymentStatus")):
        reason = s.find(q("Reason"))
        out.append((text(s.find(q("ClientRef"))), text(s.find(q("State"))),
                    None if reason is None else reason.get("code"), text(s.find(q("PaymentId")))))
    return out


class Simulation:
    def __init__(self, seed: int, gateway, maker: dl.Client, checker: dl.Client, clock, monkeypatch):
        self.seed, self.gw, self.engine, self.clock = seed, gateway, gateway.engine, clock
        # Virtual time: where the clock fixture's offset says, plus 1 ms per reading; never the wall clock,
        # so that how long the run takes changes nothing and a seed replays exactly.
        self.start, self.readings = clock(), 0
        monkeypatch.setattr(gateway, "clock", self.now)
        self.dialect = gateway.engine.dialect.name
        self.rng = random.Random(seed)
        self.clients = {"maker": maker, "checker": checker}
        self.armed = False                      # crash points fire only while an operation is running
        self.crash_rate = {crash.REQUEST_BEFORE_COMMIT: 0.08, crash.REQUEST_AFTER_COMMIT: 0.08,
                           crash.CLEARING_AFTER_SENT: 0.06, crash.CLEARING_AFTER_ANSWER: 0.06}
        monkeypatch.setattr(crash.point, "hook", self._hook)
        self.sent: list[Sent] = []
        self.specs: dict[str, Spec] = {}        # ClientRef -> the content first sent under it
        self.batches: list[list[Spec]] = []
        self.ids_seen: dict[str, set[str]] = defaultdict(set)   # ClientRef -> PaymentIds any answer named
        self.trail: list[str] = []
        self.counts: Counter = Counter()
        self.next_ref = 0
        with self.engine.connect() as conn:
            self.opening = dict(conn.execute(select(accounts.c.number, accounts.c.booked)).all())

    # ---- plumbing -----------------------------------------------------------------------------------------

    def fail(self, message: str) -> str:
        return f"[seed {self.seed} on {self.dialect}] {message}"

    def note(self, line: str) -> None:
        self.trail.append(f"{len(self.trail):4d} +{self.clock.offset.total_seconds():7.1f}s {line}")

    def now(self) -> dt.datetime:
        self.readings += 1
        return self.start + self.clock.offset + dt.timedelta(milliseconds=self.readings)

    def _hook(self, name: str) -> None:
        self.counts[f"reached {name}"] += 1
        if self.armed and self.rng.random() < self.crash_rate[name]:
            self.counts[f"crash {name}"] += 1
            raise SimulatedCrash(name)

    def build(self, who: str, kind: str, args: tuple, operation, message_id: str | None = None) -> Sent:
        created = self.now()
        body = self.clients[who].request(operation, message_id=message_id, created=created)
        mid = text(etree.fromstring(body).find(f"{q('Header')}/{q('MessageId')}"))
        sent = Sent(len(self.sent), who, kind, args, body, mid, created)
        self.sent.append(sent)
        return sent

    def post(self, sent: Sent) -> tuple[dl.Answer | None, str | None]:
        """Deliver the bytes; (answer, None), or (None, crash point) when the gateway 'died' on the way."""
        client = self.clients[sent.who]
        if self.rng.random() < 0.25:
            # Through HTTP (TestClient): a SimulatedCrash would kill the test client's event loop, so this
            # path runs with the crash points disarmed.
            return client.post(sent.body), None
        self.armed = True
        try:
            reply = self.gw.handle(sent.body)
        except SimulatedCrash as died:
            return None, str(died)
        finally:
            self.armed = False
        digest = signing.digest_b64(sent.body)
        return dl.verify_answer(reply.status, reply.body, client.gateway_cert, digest), None

    def stored(self, message_id: str):
        with self.engine.connect() as conn:
            return conn.execute(select(messages).where(messages.c.client_id == CLIENT,
                                                       messages.c.message_id == message_id)).first()

    def payment(self, *, ref: str | None = None, pid: str | None = None):
        with self.engine.connect() as conn:
            cond = payments.c.client_ref == ref if ref is not None else payments.c.id == pid
            return conn.execute(select(payments).where(payments.c.client_id == CLIENT, cond)).first()

    # ---- one request: oracle, delivery, checks ------------------------------------------------------------

    def deliver(self, sent: Sent) -> dl.Answer | None:
        age = abs((self.now() - sent.created).total_seconds())
        window = self.gw.settings.freshness_seconds
        digest = signing.digest_b64(sent.body)
        stored = self.stored(sent.message_id)
        effectless = False
        if age > window + 5:
            expect, effectless, case = self.expect_code(401, "TIMESTAMP_OUT_OF_WINDOW"), True, "stale"
        elif age < window - 5:
            if stored is not None:
                assert stored.http_status, self.fail(f"MessageId {sent.message_id} stored without an answer")
                effectless = True
                if stored.request_digest == digest:
                    expect, case = self.expect_original(sent, bytes(stored.response)), "original answer"
                else:
                    expect, case = self.expect_code(401, "REPLAY"), "replay"
            else:
                expect, case = self.oracle(sent), "executed"
        else:
            expect, case = None, "edge of window"     # either answer is right
        self.counts[f"delivery: {case}"] += 1
        before = snapshot(self.engine)
        answer, died = self.post(sent)
        if answer is None:
            self.note(f"   -> crashed at {died}")
            after = snapshot(self.engine)
            mine = self.stored(sent.message_id)
            if died == crash.REQUEST_BEFORE_COMMIT:
                assert after == before, self.fail(f"a crash before commit left changes behind: {sent.kind}")
            else:
                assert mine is not None and mine.request_digest == digest and mine.http_status, \
                    self.fail("a crash after commit lost the remembered answer")
            return None
        assert answer.code != "INTERNAL", self.fail(f"INTERNAL for {sent.kind}: {answer.detail}")
        if answer.code in ("RATE_LIMITED", "OVERLOADED"):     # turned away before anything ran
            assert snapshot(self.engine) == before, self.fail(f"{answer.code} changed state")
            self.note(f"   -> {answer.status} {answer.code}")
            return None
        if expect is not None:
            expect(answer)
        if effectless:
            assert snapshot(self.engine) == before, \
                self.fail(f"the {answer.code} answer to {sent.kind} changed state")
        if answer.body is not None and answer.body.tag == q("PaymentReport"):
            for ref, state, reason, pid in statuses(answer):
                if pid:
                    self.ids_seen[ref].add(pid)
                if case == "executed" and sent.kind == "order":
                    self.counts[f"payment answered {state}{'/' + reason if reason else ''}"] += 1
        if case == "executed" and sent.answer is None:
            sent.answer = answer.raw            # the answer to remember: the first one that executed
        self.note(f"   -> {answer.status} {answer.code} "
                  + (" ".join(f"{r}:{s}{'/' + c if c else ''}" for r, s, c, _ in statuses(answer))
                     if answer.body is not None and answer.body.tag == q("PaymentReport") else ""))
        return answer

    def expect_code(self, status: int, code: str) -> Callable[[dl.Answer], None]:
        def check(answer: dl.Answer) -> None:
            assert (answer.status, answer.code) == (status, code), \
                self.fail(f"expected {status} {code}, got {answer.status} {answer.code}: {answer.detail}")
            assert answer.body is None, self.fail(f"{code} must carry no answer element")
        return check

    def expect_original(self, sent: Sent, stored: bytes) -> Callable[[dl.Answer], None]:
        def check(answer: dl.Answer) -> None:
            assert answer.raw == stored, self.fail("the identical request did not get the stored answer")
            if sent.answer is not None:
                assert answer.raw == sent.answer, self.fail("the identical request got another answer")
        return check

    def oracle(self, sent: Sent) -> Callable[[dl.Answer], None]:
        """What the spec says this request must do, given the database as it is now."""
        return getattr(self, f"expect_{sent.kind}")(sent)

    def expect_order(self, sent: Sent) -> Callable[[dl.Answer], None]:
        specs: tuple[Spec, ...] = sent.args
        now = self.now()
        zone = self.gw.settings.zone
        day_start = dt.datetime.combine(now.astimezone(zone).date(), dt.time(), tzinfo=zone)
        wanted, used, available = [], {}, {}
        with self.engine.connect() as conn:
            for sp in specs:
                row = conn.execute(select(payments).where(payments.c.client_id == CLIENT,
                                                          payments.c.client_ref == sp.ref)).first()
                if row is not None:
                    wanted.append(("same", row.state, row.id) if sp.same_as(row) else ("dup",))
                    continue
                if sp.debtor not in used:
                    used[sp.debtor] = conn.execute(
                        select(func.coalesce(func.sum(payments.c.amount), 0)).where(
                            payments.c.client_id == CLIENT, payments.c.maker == "maker",
                            payments.c.debtor_account == sp.debtor, payments.c.created_at >= day_start,
                            payments.c.state.not_in(RELEASED))).scalar()
                    booked, held = conn.execute(select(accounts.c.booked, accounts.c.held)
                                                .where(accounts.c.number == sp.debtor)).one()
                    available[sp.debtor] = booked - held
                limit = conn.execute(select(grants.c.daily_limit).where(
                    grants.c.client_id == CLIENT, grants.c.operator_id == "maker",
                    grants.c.account == sp.debtor)).scalar()
                if limit is not None and used[sp.debtor] + sp.amount > limit:
                    wanted.append(("rejected", "LIMIT_DAILY"))
                elif available[sp.debtor] < sp.amount:
                    wanted.append(("rejected", "INSUFFICIENT_FUNDS"))
                else:
                    used[sp.debtor] += sp.amount
                    available[sp.debtor] -= sp.amount
                    if sp.debtor == OPERATING and sp.amount >= APPROVAL_THRESHOLD:
                        wanted.append(("new", S.PENDING_APPROVAL))
                    else:
                        wanted.append(("new", S.ACCEPTED if sp.external else S.SETTLED))

        def check(answer: dl.Answer) -> None:
            assert (answer.status, answer.code) == (200, "OK"), \
                self.fail(f"order: {answer.code} {answer.detail}")
            got = statuses(answer)
            assert [g[0] for g in got] == [sp.ref for sp in specs], \
                self.fail("one status per payment, in order")
            for want, (ref, state, reason, pid) in zip(wanted, got):
                where = self.fail(f"{ref}: expected {want}, got {state}/{reason}/{pid}")
                if want[0] == "same":
                    assert (state, pid) == (want[1], want[2]), where
                elif want[0] == "dup":
                    assert (state, reason, pid) == ("REJECTED", "DUPLICATE_REFERENCE", None), where
                elif want[0] == "rejected":
                    assert (state, reason, pid) == ("REJECTED", want[1], None), where
                    assert self.payment(ref=ref) is None, where
                else:
                    assert (state, reason) == (want[1], None) and pid, where
                    row = self.payment(ref=ref)
                    assert row is not None and (row.id, row.state) == (pid, state), where
        return check

    def _single(self, answer: dl.Answer, what: str):
        assert (answer.status, answer.code) == (200, "OK"), \
            self.fail(f"{what}: {answer.code} {answer.detail}")
        [got] = statuses(answer)
        return got

    def expect_approval(self, sent: Sent) -> Callable[[dl.Answer], None]:
        pid, digest, decision = sent.args
        if sent.who == "maker":
            return self.expect_code(403, "PERMISSION_DENIED")        # the maker holds no 'approve' grant
        row = self.payment(pid=pid)
        if row.state != S.PENDING_APPROVAL:
            want = (row.state, row.reason_code)                        # decided already: unchanged
        elif digest != row.order_digest:
            want = (S.PENDING_APPROVAL, "APPROVAL_DIGEST_MISMATCH")
        elif decision == "REJECT":
            want = (S.REJECTED, "APPROVAL_REJECTED")
        else:
            external = row.creditor_bank_scheme == "CNAPS" and \
                not row.creditor_bank_code.startswith(self.gw.settings.own_cnaps_prefix)
            want = (S.ACCEPTED if external else S.SETTLED, None)

        def check(answer: dl.Answer) -> None:
            _ref, state, reason, got_pid = self._single(answer, "approval")
            assert (state, reason, got_pid) == (*want, pid), \
                self.fail(f"approval {decision} of {pid}: expected {want}, got {state}/{reason}")
            assert self.payment(pid=pid).state == state, self.fail("the answer does not match the books")
        return check

    def expect_cancel(self, sent: Sent) -> Callable[[dl.Answer], None]:
        (pid,) = sent.args
        row = self.payment(pid=pid)
        if row.state in (S.PENDING_APPROVAL, S.ACCEPTED, S.CANCELLED):
            want = (S.CANCELLED, "CANCELLED_BY_CLIENT")
        else:
            want = (row.state, "NOT_CANCELLABLE")

        def check(answer: dl.Answer) -> None:
            _ref, state, reason, got_pid = self._single(answer, "cancel")
            assert (state, reason, got_pid) == (*want, pid), \
                self.fail(f"cancel of {pid} ({row.state}): expected {want}, got {state}/{reason}")
            assert self.payment(pid=pid).state == state, self.fail("the answer does not match the books")
        return check

    def expect_status(self, sent: Sent) -> Callable[[dl.Answer], None]:
        refs: tuple[str, ...] = sent.args
        rows = [self.payment(ref=r) for r in refs]
        if any(r is None for r in rows):
            return self.expect_code(404, "NOT_FOUND")

        def check(answer: dl.Answer) -> None:
            assert (answer.status, answer.code) == (200, "OK"), self.fail(f"status: {answer.code}")
            books = [(r.client_ref, r.state, r.id) for r in rows]
            assert [(g[0], g[1], g[3]) for g in statuses(answer)] == books, \
                self.fail("status query disagrees with the books")
        return check

    def expect_reuse(self, sent: Sent) -> Callable[[dl.Answer], None]:
        def check(answer: dl.Answer) -> None:   # a MessageId never used after all: a plain balance query
            assert (answer.status, answer.code) == (200, "OK"), self.fail(f"balance: {answer.code}")
        return check

    # ---- the operations -----------------------------------------------------------------------------------

    def new_spec(self) -> Spec:
        self.next_ref += 1
        ref = f"SIM{self.seed}-{self.next_ref}"
        kind = self.rng.choices(["internal", "external", "big", "payroll"], weights=[38, 42, 7, 13])[0]
        debtor, amount = OPERATING, self.rng.randint(1, 800_000)
        if kind == "big":
            amount = self.rng.randint(20_000_000, 26_000_000)
        elif kind == "payroll":
            debtor, amount = PAYROLL, self.rng.randint(100, 6_000_000)
        external = kind == "external" or (kind in ("big", "payroll") and self.rng.random() < 0.5)
        return Spec(ref, debtor, amount, external, own_cnaps=not external and self.rng.random() < 0.3)

    def op_new_order(self) -> None:
        specs = [self.new_spec() for _ in range(self.rng.choice((1, 1, 1, 2, 3)))]
        for sp in specs:
            self.specs[sp.ref] = sp
        self.batches.append(specs)
        sent = self.build("maker", "order", tuple(specs), dl.payment_order(*[sp.element() for sp in specs]))
        self.note(f"#{sent.n} order " + ", ".join(
            f"{s.ref} from ..{s.debtor[-4:]} {s.text_amount} {s.bank_code or 'INTERNAL'}" for s in specs))
        self.deliver(sent)

    def pick_sent(self) -> Sent | None:
        if not self.sent:
            return None
        recent = self.sent[-15:]
        return self.rng.choice(recent if self.rng.random() < 0.7 else self.sent)

    def op_exact_retry(self) -> None:
        sent = self.pick_sent()
        if sent is None:
            return self.op_new_order()
        self.note(f"#{sent.n} again, same bytes ({sent.kind}, age {(self.now() - sent.created).seconds}s)")
        self.deliver(sent)

    def op_ref_retry(self) -> None:
        if not self.batches:
            return self.op_new_order()
        specs = self.rng.choice(self.batches)
        sent = self.build("maker", "order", tuple(specs), dl.payment_order(*[sp.element() for sp in specs]))
        self.note(f"#{sent.n} new message, same ClientRefs {[s.ref for s in specs]}")
        self.deliver(sent)

    def op_changed_duplicate(self) -> None:
        if not self.specs:
            return self.op_new_order()
        old = self.specs[self.rng.choice(sorted(self.specs))]
        changed = Spec(old.ref, old.debtor, old.amount + self.rng.choice((1, 100, 100_000)), old.external,
                       old.own_cnaps)
        sent = self.build("maker", "order", (changed,), dl.payment_order(changed.element()))
        self.note(f"#{sent.n} same ClientRef {old.ref}, amount {old.text_amount} -> {changed.text_amount}")
        self.deliver(sent)

    def op_decide(self) -> None:
        with self.engine.connect() as conn:
            pending = conn.execute(select(payments.c.id, payments.c.order_digest).where(
                payments.c.state == S.PENDING_APPROVAL).order_by(payments.c.client_ref)).all()
            if not pending or self.rng.random() < 0.1:
                pending = conn.execute(select(payments.c.id, payments.c.order_digest)
                                       .order_by(payments.c.client_ref)).all()
        if not pending:
            return self.op_new_order()
        pid, digest = self.rng.choice(pending)
        decision = "REJECT" if self.rng.random() < 0.3 else "APPROVE"
        stale = self.rng.random() < 0.1
        if stale:
            digest = "A" * 43 + "="                     # not what the maker sent
        who = "maker" if self.rng.random() < 0.05 else "checker"
        sent = self.build(who, "approval", (pid, digest, decision), dl.approval(pid, digest, decision))
        self.note(f"#{sent.n} {who} {decision} {pid}{' (stale digest)' if stale else ''}")
        self.deliver(sent)

    def op_cancel(self) -> None:
        with self.engine.connect() as conn:
            ids = conn.execute(select(payments.c.id).order_by(payments.c.client_ref)).scalars().all()
        if not ids:
            return self.op_new_order()
        pid = self.rng.choice(ids)
        who = "checker" if self.rng.random() < 0.2 else "maker"
        sent = self.build(who, "cancel", (pid,), dl.cancel(pid, "simulation"))
        self.note(f"#{sent.n} {who} cancels {pid}")
        self.deliver(sent)

    def op_status(self) -> None:
        if not self.specs:
            return self.op_new_order()
        refs = tuple(self.rng.sample(sorted(self.specs), min(len(self.specs), self.rng.randint(1, 3))))
        sent = self.build("checker", "status", refs, dl.status_query(*refs))
        self.note(f"#{sent.n} status {refs}")
        self.deliver(sent)

    def op_reuse_message_id(self) -> None:
        old = self.pick_sent()
        if old is None:
            return self.op_new_order()
        sent = self.build(old.who, "reuse", (), dl.balance_query(OPERATING), message_id=old.message_id)
        self.note(f"#{sent.n} other content under the MessageId of #{old.n}")
        self.deliver(sent)

    def op_clearing(self) -> None:
        rates = [self.rng.choice((0.0, 0.1, 0.25)) for _ in range(4)]
        cf = ClearingFaults(fail_rate=rates[0], unknown_rate=rates[1], lost_rate=rates[2],
                            return_rate=rates[3], return_after_seconds=self.rng.choice((0, 30, 120)),
                            seed=self.rng.randrange(2**31))
        job = self.clearing(cf)
        self.armed = True
        try:
            done = job.run_once()
        except SimulatedCrash as died:
            self.note(f"clearing pass (faults {rates}) -> crashed at {died}")
            return
        finally:
            self.armed = False
        self.counts.update({f"clearing {k}": v for k, v in done.items()})
        self.note(f"clearing pass (faults {rates}) -> {dict(done)}")

    def clearing(self, faults: ClearingFaults) -> Clearing:
        settings = self.gw.settings.model_copy(update={"clearing_faults": faults})
        return Clearing(self.engine, settings, self.now)

    def op_time_passes(self) -> None:
        step = self.rng.choice((5, 30, 61, 90, 200))
        self.clock.offset += dt.timedelta(seconds=step)
        self.note(f"time passes: {step}s")

    # ---- the run ------------------------------------------------------------------------------------------

    def run(self, steps: int) -> None:
        ops = [(self.op_new_order, 30), (self.op_exact_retry, 15), (self.op_ref_retry, 9),
               (self.op_changed_duplicate, 6), (self.op_decide, 8), (self.op_cancel, 7), (self.op_status, 4),
               (self.op_reuse_message_id, 3), (self.op_clearing, 12), (self.op_time_passes, 6)]
        functions, weights = zip(*ops)
        if self.rng.random() < 0.5:                     # some seeds let the big ones through more often
            daily = self.rng.choice(("1500000.00", None))
            with self.engine.begin() as conn:
                directory.set_grant(conn, CLIENT, "maker", OPERATING, {"query", "pay"}, "500000.00", daily,
                                    self.now())
            self.note(f"maker's daily limit on {OPERATING} set to {daily}")
        for _ in range(steps):
            op = self.rng.choices(functions, weights)[0]
            self.counts[op.__name__] += 1
            op()
            self.clock.offset += dt.timedelta(seconds=self.rng.uniform(0, 3))
            self.check_money("after the last operation")

    def settle(self) -> None:
        """Clearing without faults or crashes until nothing changes (time moves past every timeout)."""
        quiet = 0
        for _ in range(40):
            self.clock.offset += dt.timedelta(seconds=self.gw.settings.clearing_timeout_seconds + 1)
            done = self.clearing(ClearingFaults()).run_once()
            self.note(f"final clearing pass -> {dict(done)}")
            quiet = 0 if done else quiet + 1
            if quiet >= 3:
                return
        raise AssertionError(self.fail("clearing did not come to rest within 40 passes"))

    # ---- invariants ---------------------------------------------------------------------------------------

    def check_money(self, when: str) -> None:
        assert booked_total(self.engine) == 0, self.fail(f"money not conserved {when}")
        with self.engine.connect() as conn:
            active = dict(conn.execute(select(holds.c.account, func.sum(holds.c.amount))
                                       .where(holds.c.released_at.is_(None)).group_by(holds.c.account)).all())
            for number, booked, held, owner in conn.execute(
                    select(accounts.c.number, accounts.c.booked, accounts.c.held, accounts.c.client_id)):
                holding = active.get(number, 0)
                assert held == holding, self.fail(f"{number}: held {held}, holds {holding}, {when}")
                if owner is not None:
                    assert held >= 0 and booked - held >= 0, self.fail(f"{number} overdrawn {when}")

    def check_final(self) -> None:
        self.check_money("at the end")
        with self.engine.connect() as conn:
            rows = conn.execute(select(payments)).all()
            on_debtor = select(entries.c.payment_id).join(payments, payments.c.id == entries.c.payment_id) \
                .where(entries.c.account == payments.c.debtor_account)
            debits = Counter(conn.execute(on_debtor.where(entries.c.direction == "DBIT")).scalars())
            reversals = Counter(conn.execute(on_debtor.where(entries.c.direction == "CRDT",
                                                             entries.c.reversal.is_(True))).scalars())
            hold_rows = defaultdict(list)
            for h in conn.execute(select(holds)):
                hold_rows[h.payment_id].append(h)
            events = defaultdict(list)
            for e in conn.execute(select(payment_events).order_by(payment_events.c.id)):
                events[e.payment_id].append(e)
            audited = defaultdict(list)
            for a in conn.execute(select(audit_log.c.payment_id, audit_log.c.from_state, audit_log.c.to_state)
                                  .where(audit_log.c.kind == "payment")
                                  .order_by(audit_log.c.chain, audit_log.c.seq)):
                audited[a.payment_id].append((a.from_state, a.to_state))
            cleared = {c.payment_id: c for c in conn.execute(select(sim_clearing))}
            approvers = conn.execute(select(payment_approvals.c.payment_id, payment_approvals.c.approver,
                                            payments.c.maker).join(payments)).all()
            balances = dict(conn.execute(select(accounts.c.number, accounts.c.booked)).all())
            held = dict(conn.execute(select(accounts.c.number, accounts.c.held)).all())
            remembered = conn.execute(select(messages.c.message_id, messages.c.http_status)).all()
            checked, findings = audit.verify(conn)

        by_ref = defaultdict(list)
        for p in rows:
            by_ref[p.client_ref].append(p.id)
        for ref, ids in by_ref.items():
            assert len(ids) == 1, self.fail(f"ClientRef {ref} maps to payments {ids}")
        for ref, seen in self.ids_seen.items():
            assert seen <= set(by_ref.get(ref, ())) and len(seen) == 1, \
                self.fail(f"answers named PaymentIds {seen} for {ref}; the books have {by_ref.get(ref)}")

        own = self.gw.settings.own_cnaps_prefix
        settled_out = Counter()                             # debtor account -> amount that left it
        settled_to_supplier = settled_external = 0
        expected_held = Counter()
        for p in rows:
            where = f"{p.client_ref} {p.id} ({p.state})"
            assert p.state in AT_REST, self.fail(f"{where} is not at rest after the final clearing passes")
            n_debits, n_reversals = debits.get(p.id, 0), reversals.get(p.id, 0)
            assert n_debits <= 1, self.fail(f"{where} was debited {n_debits} times")
            want = {S.SETTLED: (1, 0), S.RETURNED: (1, 1)}.get(S(p.state), (0, 0))
            assert (n_debits, n_reversals) == want, \
                self.fail(f"{where}: {n_debits} debits and {n_reversals} reversals, want {want}")
            external = not (p.creditor_bank_scheme == "INTERNAL" or p.creditor_bank_code.startswith(own))
            if p.state == S.SETTLED:
                settled_out[p.debtor_account] += p.amount
                if external:
                    settled_external += p.amount
                else:
                    settled_to_supplier += p.amount
            # Exactly one hold per payment, active exactly while the payment holds funds.
            hs = hold_rows.get(p.id, [])
            assert len(hs) == 1 and hs[0].amount == p.amount, self.fail(f"{where} has holds {hs}")
            assert (hs[0].released_at is None) == (p.state in HOLDING), self.fail(f"{where}: hold {hs[0]}")
            if p.state in HOLDING:
                expected_held[p.debtor_account] += p.amount
            # Its history follows the state machine, ends in its state, and is audited move for move.
            moves = [(e.from_state, e.to_state) for e in events.get(p.id, [])]
            assert moves and moves[0][0] is None, self.fail(f"{where}: history {moves} has no start")
            for (_, b), (c, _) in itertools.pairwise(moves):
                assert b == c, self.fail(f"{where}: history {moves} is not continuous")
            for a, b in moves:
                assert allowed(None if a is None else S(a), S(b)), self.fail(f"{where}: illegal {a} -> {b}")
            assert moves[-1][1] == p.state, self.fail(f"{where}: history ends in {moves[-1][1]}")
            assert audited.get(p.id) == moves, self.fail(f"{where}: audit {audited.get(p.id)}")
            # Clearing's own records agree with ours.
            c = cleared.get(p.id)
            if not external:
                assert c is None, self.fail(f"{where}: an internal payment reached clearing")
            elif p.state in (S.SETTLED, S.RETURNED):
                assert c is not None and c.outcome == "SETTLED", self.fail(f"{where}: clearing says {c}")
                if p.state == S.RETURNED:
                    assert c.returned_at is not None, self.fail(f"{where}: returned, but not by clearing")
            elif p.state == S.FAILED:
                assert c is not None and c.outcome == "FAILED", self.fail(f"{where}: clearing says {c}")
            else:
                assert c is None, self.fail(f"{where}: clearing has {c} for a payment never sent")
        due_returns = [pid for pid, c in cleared.items() if c.returned_at is not None and
                       next(p for p in rows if p.id == pid).state == S.SETTLED]
        assert not due_returns, self.fail(f"returns never booked: {due_returns}")
        assert set(cleared) <= {p.id for p in rows}, self.fail("clearing knows payments we do not")

        # Every balance is explained by the settled payments (returns net out to zero).
        for account, opening in ((OPERATING, self.opening[OPERATING]), (PAYROLL, self.opening[PAYROLL])):
            assert balances[account] == opening - settled_out[account], self.fail(f"{account} balance")
        assert balances[SUPPLIER] == self.opening[SUPPLIER] + settled_to_supplier, \
            self.fail("supplier balance")
        assert balances.get(CLEARING_ACCOUNT, 0) == settled_external, self.fail("clearing account balance")
        for account, amount in held.items():
            assert amount == expected_held.get(account, 0), self.fail(f"{account} held {amount}")
        for pid, approver, maker in approvers:
            assert approver != maker, self.fail(f"{pid} approved by its own maker")
        assert all(status for _mid, status in remembered), self.fail("a MessageId remembered with no answer")
        assert checked > 0 and findings == [], self.fail(f"audit chain broken: {findings}")


@pytest.mark.parametrize("seed", SEEDS)
def test_simulation(no_background_jobs, seed, gateway, maker, checker, clock, monkeypatch):
    started = time.perf_counter()
    sim = Simulation(seed, gateway, maker, checker, clock, monkeypatch)
    try:
        sim.run(STEPS)
        sim.settle()
        sim.check_final()
    except AssertionError as err:
        trail = "\n".join(sim.trail[-40:])
        replay = f"pytest 'tests/scenarios/test_simulation.py::test_simulation[{sim.dialect}-{seed}]'"
        raise AssertionError(f"{err}\n(replay: {replay})\nlast operations:\n{trail}") from None
    with gateway.engine.connect() as conn:
        states = Counter(conn.execute(select(payments.c.state)).scalars())
    crashes = {k: v for k, v in sim.counts.items() if k.startswith("crash")}
    print(f"\nseed {seed} on {sim.dialect}: {len(sim.sent)} requests, {len(sim.specs)} ClientRefs, "
          f"payments {dict(states)}, {time.perf_counter() - started:.1f}s")
    for key in sorted(sim.counts):
        print(f"    {key}: {sim.counts[key]}")
    assert sum(crashes.values()) > 0, sim.fail("no crash was injected: the simulation lost its teeth")
