"""Writing events into the outbox, inside the transaction that made the change: an event exists if and only
if its change committed. A rolled-back payment leaves no event; a committed one is never without it.

An event is written once per matching subscription, with a stable EventId an ERP deduplicates by:
  PAY:<PaymentId>:<Sequence>   a payment changed state (Sequence: its payment_events row, growing per payment)
  CRDT:<Account>:<EntryId>     an incoming credit (the EntryId of its statement entry)
  TEST:<subscription>:<time>   a test an operator sent from the console (delivery health)

What counts as an incoming credit: a credit leg of a posting on an account a client owns, unless it is a
reversal (a returned payment is told as its RETURNED state change) or the same posting debits another
account of that same client (a transfer between one's own accounts is told as that payment's state
changes). So credits from other banks (gateway/sandbox.py, and clearing once it brings any), from other
clients' payments inside this bank, and opening balances from the bank's own books all count.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, bindparam, insert, select

from gateway.notify import message
from gateway.notify.subscriptions import CREDIT, PAYMENT, Subscription, active_for, of_row
from gateway.payment_record import PaymentRecord
from gateway.storage.tables import accounts, outbox_events, payments
from gateway.storage.tables import notify_subscriptions as subs

PENDING, DELIVERED, DEAD = "PENDING", "DELIVERED", "DEAD"
CRDT = "CRDT"
TEST = "test"   # the kind of a test event (never one a subscription asks for: it is sent to one)


_PAYMENT = select(payments).where(payments.c.id == bindparam("payment_id"))


def payment_moved(conn: Connection, *, payment_id: str, client: str, sequence: int, before: str | None,
                  after: str, reason: str | None, why: str, now: dt.datetime,
                  subscribed: list[Subscription] | None = None) -> None:
    """Called by transitions.move, after the change, in its transaction (with the client's active
    subscriptions if the caller has them)."""
    if subscribed is None:
        subscribed = active_for(conn, {client})
    if not any(s.client_id == client for s in subscribed):
        return
    payment = PaymentRecord.from_row(conn.execute(_PAYMENT, {"payment_id": payment_id}).one())
    _insert(conn, _payment_rows(payment, sequence, before, after, reason, why, now, subscribed))


def payments_changed(conn: Connection, *, now: dt.datetime, subscribed: list[Subscription],
                     changes: list[tuple]) -> None:
    """Called by transitions.created with (payment, sequence, before, after, why) for each change it recorded:
    one insert."""
    _insert(conn, [r for payment, sequence, before, after, why in changes
                   for r in _payment_rows(payment, sequence, before, after, None, why, now, subscribed)])


def _payment_rows(payment: PaymentRecord, sequence: int, before: str | None, after: str, reason: str | None,
                  why: str, now: dt.datetime, subscribed: list[Subscription]) -> list[dict]:
    wanted = [s for s in subscribed
              if s.client_id == payment.client_id and s.wants(PAYMENT, payment.debtor_account)]
    if not wanted:
        return []
    event_id = f"PAY:{payment.id}:{sequence}"
    payload = message.payment_event(event_id=event_id, created=now, payment=payment, sequence=sequence,
                                    before=before, after=after, reason=reason, why=why)
    return _rows(event_id, PAYMENT, payment.client_id, payload, wanted, now)


# Built once: every posting with a credit leg runs it.
_OWNERS = select(accounts.c.number, accounts.c.client_id, accounts.c.currency, subs.c.id, subs.c.url, subs.c.kinds,
                 subs.c.account, subs.c.active) \
    .outerjoin(subs, (subs.c.client_id == accounts.c.client_id) & subs.c.active.is_(True)) \
    .where(accounts.c.number.in_(bindparam("numbers", expanding=True)))
def owners(conn: Connection, numbers: set[str]) -> list:
    """Each account's owner, with the owner's active subscriptions if any (a row per pair): what posted()
    reads, for a caller that reads it before it locks the accounts (the payments' path) and passes it on."""
    return conn.execute(_OWNERS, {"numbers": sorted(numbers)}).all()


def posted(conn: Connection, legs: list[tuple], now: dt.datetime, owned: list | None = None) -> None:
    """Called by whoever posted, with what ledger.post returned, (leg, entry) for every leg it booked, in its
    transaction, `entry` the statement entry as written (it may not be written yet: see ledger.post);
    `owned` is what owners() returned for (at least) these legs' accounts, if the caller read it already."""
    if not any(leg.direction == CRDT and not leg.reversal for leg, _ in legs):
        return
    # One read for the whole posting: each account's owner, with the owner's active subscriptions if any.
    rows = owned if owned is not None else owners(conn, {leg.account for leg, _ in legs})
    owner = {r.number: r.client_id for r in rows}
    currency = {r.number: r.currency for r in rows}
    subscribed = list({r.id: of_row(r) for r in rows if r.id is not None}.values())   # once per subscription
    if not subscribed:
        return
    debited_by = {owner[leg.account] for leg, _ in legs if leg.direction != CRDT}
    for leg, entry in legs:
        client = owner[leg.account]
        if leg.direction != CRDT or leg.reversal or client is None or client in debited_by:
            continue
        wanted = [s for s in subscribed if s.client_id == client and s.wants(CREDIT, leg.account)]
        if not wanted:
            continue
        event_id = f"CRDT:{leg.account}:{entry.seq:012d}"
        payload = message.credit_event(event_id=event_id, created=entry.booked_at, client=client, entry=entry,
                                       currency=currency[leg.account])
        _insert(conn, _rows(event_id, CREDIT, client, payload, wanted, now))


def test_event(conn: Connection, subscription: Subscription, operator: str, now: dt.datetime) -> str:
    """A test event for one subscription, due now, delivered (retried, dead-lettered) as every other event;
    returns its EventId."""
    event_id = f"TEST:{subscription.id}:{now.astimezone(dt.UTC):%Y%m%dT%H%M%S%f}"
    payload = message.test_event(event_id=event_id, created=now, client=subscription.client_id, operator=operator)
    _insert(conn, _rows(event_id, TEST, subscription.client_id, payload, [subscription], now))
    return event_id


def _rows(event_id: str, kind: str, client: str, payload: bytes, subscribed: list[Subscription],
          now: dt.datetime) -> list[dict]:
    return [dict(event_id=event_id, subscription_id=s.id, client_id=client, kind=kind, payload=payload,
                 created_at=now, state=PENDING, attempts=0, due_at=now) for s in subscribed]


def _insert(conn: Connection, rows: list[dict]) -> None:
    if rows:
        conn.execute(_EVENT, rows)


_EVENT = insert(outbox_events)
