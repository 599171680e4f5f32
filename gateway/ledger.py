"""The embedded core: a double-entry ledger with holds.

Every posting has balanced legs (debits equal credits per currency), so the sum of all booked balances,
the bank's own books included, never changes: money is conserved by construction.
available = booked - held; a hold can only be placed if it fits, checked in the same UPDATE.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, or_, select, update

from gateway.notify import outbox
from gateway.storage.tables import accounts, entries, holds

CRDT, DBIT = "CRDT", "DBIT"


@dataclass(frozen=True)
class Leg:
    """One side of a posting: it becomes one statement entry on `account`."""

    account: str
    direction: str
    amount: int                       # minor units, > 0
    narrative: str
    counterparty_name: str | None = None
    counterparty_account: str | None = None
    counterparty_scheme: str | None = None
    counterparty_code: str | None = None
    client_ref: str | None = None
    end_to_end_id: str | None = None
    payment_id: str | None = None
    reversal: bool = False


def internal_account(currency: str, purpose: str) -> str:
    """The number of one of the bank's own books, e.g. GLCNYOPENING (never owned by a client)."""
    return f"GL{currency}{purpose}"


def ensure_internal_account(conn: Connection, currency: str, purpose: str, now: dt.datetime) -> str:
    number = internal_account(currency, purpose)
    if conn.execute(select(accounts.c.number).where(accounts.c.number == number)).first() is None:
        conn.execute(insert(accounts).values(
            number=number, client_id=None, name=f"Bank {purpose.lower()} {currency}", currency=currency,
            booked=0, held=0, entry_seq=0, opened_at=now))
    return number


def lock_accounts(conn: Connection, numbers: set[str]) -> None:
    """Take row locks on these accounts in a fixed order, so two transfers A->B and B->A cannot deadlock.

    A no-op on SQLite, where BEGIN IMMEDIATE already serialises writers."""
    if numbers:
        conn.execute(select(accounts.c.number).where(accounts.c.number.in_(sorted(numbers)))
                     .order_by(accounts.c.number).with_for_update()).all()


def post(conn: Connection, journal: str, legs: list[Leg], now: dt.datetime, value_date: dt.date) -> None:
    """Book balanced legs: update each balance and append a statement entry with its BalanceAfter."""
    if sum(leg.amount if leg.direction == CRDT else -leg.amount for leg in legs) != 0:
        raise ValueError(f"posting {journal} does not balance")
    booked_legs = []
    for leg in sorted(legs, key=lambda leg: leg.account):
        if leg.amount <= 0:
            raise ValueError("a leg's amount must be positive")
        delta = leg.amount if leg.direction == CRDT else -leg.amount
        booked, seq = conn.execute(
            update(accounts).where(accounts.c.number == leg.account)
            .values(booked=accounts.c.booked + delta, entry_seq=accounts.c.entry_seq + 1)
            .returning(accounts.c.booked, accounts.c.entry_seq)).one()
        # Booking time never goes backwards along EntryIds: a transaction that began before midnight but
        # got the account's lock after a later one must not land on the previous day's statement.
        previous = conn.execute(select(entries.c.booked_at).where(
            entries.c.account == leg.account, entries.c.seq == seq - 1)).scalar()
        conn.execute(insert(entries).values(
            account=leg.account, seq=seq, journal=journal, booked_at=max(now, previous or now),
            value_date=value_date,
            direction=leg.direction, amount=leg.amount, balance_after=booked,
            counterparty_name=leg.counterparty_name, counterparty_account=leg.counterparty_account,
            counterparty_scheme=leg.counterparty_scheme, counterparty_code=leg.counterparty_code,
            client_ref=leg.client_ref, end_to_end_id=leg.end_to_end_id, narrative=leg.narrative,
            reversal=leg.reversal, payment_id=leg.payment_id))
        booked_legs.append((leg, seq))
    # Incoming credits for the ERPs that subscribed, in this transaction (gateway/notify/outbox.py).
    outbox.posted(conn, booked_legs, now)


def hold(conn: Connection, payment_id: str, account: str, amount: int, now: dt.datetime) -> bool:
    """Hold funds for a payment; False (and nothing changed) if available balance is short."""
    placed = conn.execute(
        update(accounts)
        .where(accounts.c.number == account, accounts.c.booked - accounts.c.held >= amount)
        .values(held=accounts.c.held + amount)).rowcount
    if placed != 1:
        return False
    conn.execute(insert(holds).values(payment_id=payment_id, account=account, amount=amount, placed_at=now))
    return True


def release(conn: Connection, payment_id: str, now: dt.datetime) -> int:
    """Release a payment's hold (on settlement, failure or cancel); returns the amount released."""
    row = conn.execute(select(holds.c.account, holds.c.amount)
                       .where(holds.c.payment_id == payment_id, holds.c.released_at.is_(None))).first()
    if row is None:
        return 0
    conn.execute(update(holds).where(holds.c.payment_id == payment_id).values(released_at=now))
    conn.execute(update(accounts).where(accounts.c.number == row.account)
                 .values(held=accounts.c.held - row.amount))
    return row.amount


def balance(conn: Connection, account: str, at: dt.datetime | None = None) -> tuple[int, int]:
    """(booked, available) now, or as they stood at instant `at` (from entries and hold history)."""
    if at is None:
        booked, held = conn.execute(
            select(accounts.c.booked, accounts.c.held).where(accounts.c.number == account)).one()
        return booked, booked - held
    booked = conn.execute(
        select(entries.c.balance_after).where(entries.c.account == account, entries.c.booked_at < at)
        .order_by(entries.c.seq.desc()).limit(1)).scalar() or 0
    held = conn.execute(
        select(func.coalesce(func.sum(holds.c.amount), 0)).where(
            holds.c.account == account, holds.c.placed_at < at,
            or_(holds.c.released_at.is_(None), holds.c.released_at >= at))).scalar()
    return booked, booked - held


def total_booked(conn: Connection) -> dict[str, int]:
    """Sum of booked balances per currency over all accounts: zero when the books balance."""
    rows = conn.execute(select(accounts.c.currency, func.sum(accounts.c.booked)).group_by(accounts.c.currency))
    return {currency: int(total) for currency, total in rows}


__all__ = ["CRDT", "DBIT", "Leg", "balance", "ensure_internal_account", "hold", "internal_account",
           "lock_accounts", "post", "release", "total_booked"]
