"""The clearing job: hands accepted payments to other banks over the clearing system and books what
comes back.  ACCEPTED -> PROCESSING -> SETTLED | FAILED | UNKNOWN, and later SETTLED -> RETURNED.

Every step is its own short transaction, and every step can be interrupted: a payment left PROCESSING
by a crash becomes UNKNOWN after `clearing_timeout_seconds`, and an UNKNOWN payment is only ever
resolved by asking clearing about that same PaymentId. It is sent again (same PaymentId, which clearing
treats idempotently) only when clearing says it never received it. Several gateway processes may run
the job at once: each move names the state it expects, so only one of them wins each step.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from domain.codes import PaymentState as S
from domain.codes import ReasonCode
from gateway import crash, ledger, transitions
from gateway.notify import outbox
from gateway.payment_record import PaymentRecord
from gateway.payments import is_internal_row, load, settle_internal
from gateway.settings import Settings
from gateway.sim_clearing import SETTLED, Outcome, SimulatedClearing
from gateway.storage.engine import read_only
from gateway.storage.tables import payments
from gateway.storage.unit_of_work import UnitOfWork, transaction

log = logging.getLogger("directlink.clearing")
ACTOR = "gateway/clearing"
BATCH = 200


class Clearing:
    def __init__(self, engine: Engine, settings: Settings, clock: Callable[[], dt.datetime],
                 system: SimulatedClearing | None = None):
        self.engine, self.settings, self.clock = engine, settings, clock
        self.system = system or SimulatedClearing(engine, settings.clearing_faults)

    def run_once(self) -> Counter:
        """One pass over everything due; returns counts of what happened (for logs, CLI and tests)."""
        done: Counter = Counter()
        unknown = self._due(S.UNKNOWN)     # left unknown by earlier passes: clearing has had time
        steps = [*((self._settle_internal, pid) for pid in self._due(S.ACCEPTED, internal=True)),
                 *((lambda p: self._send(p, S.ACCEPTED), pid) for pid in self._due(S.ACCEPTED))]
        for step, pid in steps:
            done[self._guarded(step, pid)] += 1
        self._time_out(done)
        for pid in unknown:
            done[self._guarded(self._resolve, pid)] += 1
        for pid, reason in self.system.returns_due(self.clock(), (S.SETTLED.value,)):
            done[self._guarded(lambda p, why=reason: self._return(p, why), pid)] += 1
        done.pop(None, None)
        if done:
            log.info("clearing pass: %s", dict(done))
        return done

    def _due(self, state: S, internal: bool = False) -> list[str]:
        """Payments in `state` whose RequestedDate has come: to other banks, or (internal=True) inside this one."""
        today = self.clock().astimezone(self.settings.zone).date()
        with read_only(self.engine) as conn:
            rows = conn.execute(select(payments).where(payments.c.state == state, payments.c.requested_date <= today)
                                .order_by(payments.c.created_at).limit(BATCH)).all()
        return [r.id for r in rows if is_internal_row(r, self.settings.own_cnaps_prefix) == internal]

    def _settle_internal(self, payment_id: str) -> str | None:
        """A future-dated transfer inside this bank, booked on its day."""
        now = self.clock()
        try:
            with transaction(self.engine) as uow:
                row = load(uow.conn, payment_id)
                ledger.lock_accounts(uow.conn, {row.debtor_account, row.creditor_account})
                settle_internal(uow, load(uow.conn, payment_id), now, self.settings.zone, ACTOR)
            return "settled_internal"
        except transitions.StateConflict:
            return None

    def _send(self, payment_id: str, before: S) -> str | None:
        now = self.clock()
        try:
            with transaction(self.engine) as uow:
                row = load(uow.conn, payment_id)
                transitions.move(uow, payment_id=payment_id, client=row.client_id, before=before,
                                 after=S.PROCESSING, actor=ACTOR, now=now, why=f"sent for clearing (attempt "
                                                                                  f"{row.attempts + 1})",
                                 sent_at=now, attempts=row.attempts + 1)
        except transitions.StateConflict:
            return None            # another process took it
        crash.point(crash.CLEARING_AFTER_SENT)
        with self.engine.connect() as conn:
            row = load(conn, payment_id)
        answer = self.system.submit(row, now)
        crash.point(crash.CLEARING_AFTER_ANSWER)
        return self._book(payment_id, S.PROCESSING, answer)

    def _book(self, payment_id: str, before: S, answer: Outcome | None) -> str | None:
        """Book clearing's answer; no answer makes the payment UNKNOWN."""
        now = self.clock()
        try:
            with transaction(self.engine) as uow:
                row = load(uow.conn, payment_id)
                if answer is None:
                    transitions.move(uow, payment_id=payment_id, client=row.client_id, before=before,
                                     after=S.UNKNOWN, actor=ACTOR, now=now,
                                     why="no answer from clearing: ask, never resend under a new reference")
                    return "unknown"
                ledger.release(uow.conn, payment_id, now)
                if answer.result == SETTLED:
                    self._post_settlement(uow, row, now)
                    transitions.move(uow, payment_id=payment_id, client=row.client_id, before=before,
                                     after=S.SETTLED, actor=ACTOR, now=now, why="settled by clearing")
                    return "settled"
                transitions.move(uow, payment_id=payment_id, client=row.client_id, before=before,
                                 after=S.FAILED, actor=ACTOR, now=now, reason=ReasonCode.CLEARING_FAILED,
                                 why=answer.reason or "refused by clearing")
                return "failed"
        except transitions.StateConflict:
            return None

    def _time_out(self, done: Counter) -> None:
        """PROCESSING for too long with no answer (a crash mid-send): the outcome is unknown."""
        cutoff = self.clock() - dt.timedelta(seconds=self.settings.clearing_timeout_seconds)
        with self.engine.connect() as conn:
            stale = conn.execute(select(payments.c.id).where(payments.c.state == S.PROCESSING,
                                                             payments.c.sent_at < cutoff).limit(BATCH)).scalars().all()
        for pid in stale:
            done["timed_out" if self._book(pid, S.PROCESSING, None) else None] += 1

    def _resolve(self, payment_id: str) -> str | None:
        """Ask clearing about an UNKNOWN payment; only 'never received' re-arms sending (same PaymentId)."""
        known = self.system.query(payment_id)
        if known is not None:
            result = self._book(payment_id, S.UNKNOWN, known)
            return result and f"resolved_{result}"
        return self._send(payment_id, S.UNKNOWN) and "resent"

    def _guarded(self, step: Callable[[str], str | None], payment_id: str) -> str | None:
        """One payment's step; a database hiccup (deadlock, lost connection) skips it until the next pass."""
        try:
            return step(payment_id)
        except DBAPIError:
            log.warning("clearing step for %s failed; it is retried next pass", payment_id, exc_info=True)
            return "retry_later"

    def _return(self, payment_id: str, reason: str) -> str | None:
        now = self.clock()
        try:
            with transaction(self.engine) as uow:
                row = load(uow.conn, payment_id)
                # Postings (account locks) first, then the state change (the client lock): the usual lock order.
                clearing = ledger.ensure_internal_account(uow.conn, row.currency, "CLEARING", now)
                booked = ledger.post(uow, f"R{payment_id}"[:35], [
                    ledger.Leg(clearing, ledger.DBIT, row.amount, f"Return of {payment_id}", payment_id=row.id),
                    ledger.Leg(row.debtor_account, ledger.CRDT, row.amount, f"Return: {reason}"[:140],
                               counterparty_name=row.creditor_name, counterparty_account=row.creditor_account,
                               counterparty_scheme=row.creditor_bank_scheme,
                               counterparty_code=row.creditor_bank_code, client_ref=row.client_ref,
                               end_to_end_id=row.end_to_end_id, payment_id=row.id, reversal=True),
                ], now, now.astimezone(self.settings.zone).date())
                outbox.posted(uow.conn, booked, now)
                transitions.move(uow, payment_id=payment_id, client=row.client_id, before=S.SETTLED,
                                 after=S.RETURNED, actor=ACTOR, now=now, reason=ReasonCode.CLEARING_RETURNED,
                                 why=reason)
            return "returned"
        except transitions.StateConflict:
            return None

    def _post_settlement(self, uow: UnitOfWork, row: PaymentRecord, now: dt.datetime) -> None:
        """Money leaves the customer's account for the bank's clearing book."""
        clearing = ledger.ensure_internal_account(uow.conn, row.currency, "CLEARING", now)
        booked = ledger.post(uow, row.id, [
            ledger.Leg(row.debtor_account, ledger.DBIT, row.amount, row.purpose,
                       counterparty_name=row.creditor_name, counterparty_account=row.creditor_account,
                       counterparty_scheme=row.creditor_bank_scheme, counterparty_code=row.creditor_bank_code,
                       client_ref=row.client_ref, end_to_end_id=row.end_to_end_id, payment_id=row.id),
            ledger.Leg(clearing, ledger.CRDT, row.amount, f"Clearing of {row.id}", payment_id=row.id),
        ], now, now.astimezone(self.settings.zone).date())
        outbox.posted(uow.conn, booked, now)


