"""The other side of clearing, simulated: it keeps its own records (keyed by our PaymentId, so sending
the same payment again is idempotent), decides outcomes with configurable faults, and can be asked
what became of a payment whose answer was lost. It commits in its own transactions, separately from
the gateway's books, as a real clearing system would."""
from __future__ import annotations

import datetime as dt
import fnmatch
import random
from dataclasses import dataclass

from sqlalchemy import Engine, and_, insert, select

from gateway.payment_record import PaymentRecord
from gateway.settings import ClearingFaults
from gateway.storage.tables import payments, sim_clearing

SETTLED, FAILED = "SETTLED", "FAILED"
FAIL_REASONS = ("AC04 creditor account closed", "AC01 creditor account number invalid",
                "AM05 duplicate suspected by the receiving bank")


@dataclass(frozen=True)
class Outcome:
    result: str        # SETTLED | FAILED
    reason: str | None


class SimulatedClearing:
    def __init__(self, engine: Engine, faults: ClearingFaults):
        self.engine = engine
        self.faults = faults
        self.rng = random.Random(faults.seed)

    def _plan(self, client_ref: str, attempt: int) -> tuple[str, str]:
        """(what happens, why it fails if it does): scripted by ClientRef pattern, else by the fault rates."""
        for pattern, outcome in self.faults.scripted.items():
            if fnmatch.fnmatchcase(client_ref, pattern):
                return ("SETTLED" if outcome == "LOST" and attempt > 1 else outcome), FAIL_REASONS[0]
        f, draw = self.faults, self.rng.random()
        for outcome, rate in (("FAILED", f.fail_rate), ("UNKNOWN", f.unknown_rate),
                              ("LOST", f.lost_rate if attempt == 1 else 0.0), ("RETURNED", f.return_rate)):
            if draw < rate:
                return outcome, self.rng.choice(FAIL_REASONS)
            draw -= rate
        return "SETTLED", FAIL_REASONS[0]

    def submit(self, payment: PaymentRecord, now: dt.datetime) -> Outcome | None:
        """Hand a payment over; the answer, or None when no answer came back (timeout, lost)."""
        known = self.query(payment.id)
        if known is not None:
            return known          # idempotent by PaymentId: a re-send never pays twice
        plan, why = self._plan(payment.client_ref, payment.attempts)
        if plan == "LOST":
            return None
        result = FAILED if plan == "FAILED" else SETTLED
        reason = why if result == FAILED else None
        returned_at = now + dt.timedelta(seconds=self.faults.return_after_seconds) if plan == "RETURNED" else None
        with self.engine.begin() as conn:
            conn.execute(insert(sim_clearing).values(
                payment_id=payment.id, amount=payment.amount, received_at=now, outcome=result, reason=reason,
                returned_at=returned_at, return_reason="AC04 creditor account closed" if returned_at else None))
        return None if plan == "UNKNOWN" else Outcome(result, reason)

    def query(self, payment_id: str) -> Outcome | None:
        """What clearing knows of a payment; None: it never received it."""
        with self.engine.connect() as conn:
            row = conn.execute(select(sim_clearing).where(sim_clearing.c.payment_id == payment_id)).first()
        return None if row is None else Outcome(row.outcome, row.reason)

    def returns_due(self, now: dt.datetime, states: tuple[str, ...]) -> list[tuple[str, str]]:
        """(PaymentId, reason) of settled payments the creditor's bank has sent back by now."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(sim_clearing.c.payment_id, sim_clearing.c.return_reason)
                                .join(payments, payments.c.id == sim_clearing.c.payment_id)
                                .where(and_(sim_clearing.c.returned_at <= now, payments.c.state.in_(states)))
                                .limit(500)).all()
        return [(r.payment_id, r.return_reason) for r in rows]
