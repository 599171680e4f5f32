"""The one place a payment changes state: legal per domain/states.py, guarded against a concurrent
change (the UPDATE names the state it expects), recorded with time, actor and reason, and audited."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, insert, update

from domain.codes import PaymentState, ReasonCode
from domain.states import allowed
from gateway import audit
from gateway.notify import outbox
from gateway.storage.tables import payment_events, payments


class StateConflict(RuntimeError):
    """The payment was not in the expected state: someone else moved it first (or a defect)."""


def move(conn: Connection, *, payment_id: str, client: str, before: PaymentState | None, after: PaymentState,
         actor: str, why: str, now: dt.datetime, reason: ReasonCode | None = None, **columns) -> None:
    """Move a payment from `before` to `after` (None: it was just created in `after`)."""
    if not allowed(before, after):
        raise StateConflict(f"illegal transition {before} -> {after} for {payment_id}")
    if before is not None:
        values = dict(state=after, updated_at=now, **columns)
        if reason is not None:
            values.update(reason_code=reason.value, reason_text=why[:255])
        moved = conn.execute(update(payments).where(payments.c.id == payment_id, payments.c.state == before)
                             .values(**values)).rowcount
        if moved != 1:
            raise StateConflict(f"{payment_id} is no longer {before}")
    sequence = conn.execute(insert(payment_events).values(
        payment_id=payment_id, at=now, from_state=before, to_state=after, actor=actor[:80], reason=why[:255]
    )).inserted_primary_key[0]
    audit.append(conn, chain=client, at=now, kind="payment", code=after.value, client_id=client,
                 operator_id=actor.rpartition("/")[2][:35], payment_id=payment_id, from_state=before,
                 to_state=after, detail=why)
    # The ERP's notification, if it subscribed: in this transaction, so it exists exactly if the change does.
    outbox.payment_moved(conn, payment_id=payment_id, client=client, sequence=sequence, before=before,
                         after=after, reason=reason and reason.value, why=why, now=now)
