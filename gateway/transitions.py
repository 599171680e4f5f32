"""The one place a payment changes state: legal per domain/states.py, guarded against a concurrent
change (the UPDATE names the state it expects), recorded with time, actor and reason, and audited."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, insert, update

from domain.codes import PaymentState, ReasonCode
from domain.states import allowed
from gateway import audit
from gateway.notify import outbox
from gateway.notify.subscriptions import Subscription
from gateway.payment_record import PaymentRecord
from gateway.storage.tables import payment_events, payments
from gateway.storage.unit_of_work import UnitOfWork

SETTLED_WITHIN_BANK = "settled within the bank"


class StateConflict(RuntimeError):
    """The payment was not in the expected state: someone else moved it first (or a defect)."""


# Built once (building a statement costs about as much as running it on SQLite).
_MOVE = update(payments).where(payments.c.id == bindparam("move_id"), payments.c.state == bindparam("move_from"))
_EVENT = insert(payment_events)
_EVENTS_NUMBERED = insert(payment_events).returning(payment_events.c.id, sort_by_parameter_order=True)


def move(uow: UnitOfWork, *, payment_id: str, client: str, before: PaymentState | None, after: PaymentState,
         actor: str, why: str, now: dt.datetime, reason: ReasonCode | None = None,
         subscribed: list[Subscription] | None = None, **columns) -> None:
    """Move a payment from `before` to `after` (None: it was just created in `after`).

    `subscribed`: the client's active subscriptions, if the caller has read them already."""
    if not allowed(before, after):
        raise StateConflict(f"illegal transition {before} -> {after} for {payment_id}")
    conn = uow.conn
    if before is not None:
        values = dict(state=after, updated_at=now, **columns)
        if reason is not None:
            values.update(reason_code=reason.value, reason_text=why[:255])
        moved = conn.execute(_MOVE.values(**values), {"move_id": payment_id, "move_from": before}).rowcount
        if moved != 1:
            raise StateConflict(f"{payment_id} is no longer {before}")
    sequence = conn.execute(_EVENT, dict(payment_id=payment_id, at=now, from_state=before, to_state=after,
                                         actor=actor[:80], reason=why[:255])).inserted_primary_key[0]
    audit.append(uow, chain=client, at=now, kind="payment", code=after.value, client_id=client,
                 operator_id=actor.rpartition("/")[2][:35], payment_id=payment_id, from_state=before,
                 to_state=after, detail=why)
    # The ERP's notification, if it subscribed: in this transaction, so it exists exactly if the change does.
    outbox.payment_moved(conn, payment_id=payment_id, client=client, sequence=sequence, before=before,
                         after=after, reason=reason and reason.value, why=why, now=now, subscribed=subscribed)


def created(uow: UnitOfWork, *, client: str, actor: str, now: dt.datetime, new: list[tuple[PaymentRecord, str]],
            subscribed: list[Subscription], settled: list[PaymentRecord] = ()) -> None:
    """Record the creation of payments just inserted, (row, why) each, exactly as move(before=None) records
    one: its event, its audit record and its notifications. One statement a kind for all of them.

    `settled`: payments among them that were settled within the bank in the same instant, and so stored
    SETTLED: their move on from ACCEPTED is recorded after all the creations, as move would record it."""
    changes = [(row, None, PaymentState(row.state), why) for row, why in new]
    changes += [(row, PaymentState.ACCEPTED, PaymentState.SETTLED, SETTLED_WITHIN_BANK) for row in settled]
    for row, before, after, _ in changes:
        if not allowed(before, after):
            raise StateConflict(f"illegal transition {before} -> {after} for {row.id}")
    events = [dict(payment_id=row.id, at=now, from_state=before, to_state=after, actor=actor[:80],
                   reason=why[:255]) for row, before, after, why in changes]
    if not events:
        return
    if subscribed:   # the notifications carry each event's number
        sequences = list(uow.conn.execute(_EVENTS_NUMBERED, events).scalars())
    else:   # nothing reads them back in this request: they go in with its last statement
        uow.along_rows(payment_events, events)
    operator = actor.rpartition("/")[2][:35]
    audit.append_many(uow, client, [dict(at=now, kind="payment", code=after.value, client_id=client,
                                          operator_id=operator, payment_id=row.id, from_state=before,
                                          to_state=after, detail=why) for row, before, after, why in changes])
    if subscribed:
        outbox.payments_changed(uow.conn, now=now, subscribed=subscribed,
                                changes=[(row, sequence, before, after, why)
                                         for (row, before, after, why), sequence in zip(changes, sequences)])
