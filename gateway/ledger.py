"""The embedded core: a double-entry ledger with holds.

Every posting has balanced legs (debits equal credits per currency), so the sum of all booked balances,
the bank's own books included, never changes: money is conserved by construction.
available = booked - held; a hold can only be placed if it fits, checked in the same UPDATE.
"""
from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import BigInteger, Connection, bindparam, case, func, insert, or_, select, update

from gateway.storage.hot import HotRead
from gateway.storage.tables import accounts, entries, holds
from gateway.storage.unit_of_work import UnitOfWork

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


@dataclass(frozen=True)
class Locked:
    """An account as it stands under its row lock: nobody else can change it until this transaction ends."""

    number: str
    client_id: str | None
    name: str
    currency: str
    booked: int
    held: int


# Built once: these run for every payment (building a statement costs about as much as running it on SQLite).
_LOCK = (select(accounts.c.number, accounts.c.client_id, accounts.c.name, accounts.c.currency, accounts.c.booked,
                accounts.c.held).where(accounts.c.number.in_(bindparam("numbers", expanding=True)))
         .order_by(accounts.c.number).with_for_update())


@functools.cache
def _booking(n: int):
    """The booking of a posting's legs on n accounts in one round trip: each balance moves by the sum of its
    legs (parameters a<i>, d<i>) and its EntryIds by their count (c<i>); RETURNING gives each account's new
    balance and last EntryId, and the booking time of the last entry written before the posting (RETURNING
    sees the row as updated, so that entry is at most entry_seq - count: at most, because the entries of
    an earlier posting in the same request may not be written yet, see post). Built once per number of
    accounts.

    A client's account is left out (no row comes back) if the posting would take it below what it holds:
    every path checks funds before it posts, and this is the ledger's own guard against a defect in one
    of them. The bank's own books (no client) may go below zero; that is what they are for."""
    def per_account(prefix: str):
        return case(*[(accounts.c.number == bindparam(f"a{i}"), bindparam(f"{prefix}{i}", type_=BigInteger))
                      for i in range(n)], else_=0)
    delta, count = per_account("d"), per_account("c")
    return (update(accounts)
            .where(accounts.c.number.in_([bindparam(f"a{i}") for i in range(n)]),
                   or_(delta >= 0, accounts.c.client_id.is_(None), accounts.c.booked + delta >= accounts.c.held))
            .values(booked=accounts.c.booked + delta, entry_seq=accounts.c.entry_seq + count)
            .returning(accounts.c.number, accounts.c.booked, accounts.c.entry_seq,
                       select(entries.c.booked_at).where(entries.c.account == accounts.c.number,
                                                         entries.c.seq <= accounts.c.entry_seq - count)
                       .order_by(entries.c.seq.desc()).limit(1)
                       .correlate(accounts).scalar_subquery().label("previous_booked_at")))


_HOLD_FUNDS = update(accounts).where(accounts.c.number == bindparam("hold_account"),
                                    accounts.c.booked - accounts.c.held >= bindparam("hold_amount")) \
    .values(held=accounts.c.held + bindparam("kept"))
_UNHOLD_FUNDS = update(accounts).where(accounts.c.number == bindparam("hold_account")) \
    .values(held=accounts.c.held - bindparam("hold_amount"))
_FIGURES = select(accounts.c.number, accounts.c.booked, accounts.c.held)
_BALANCES = _FIGURES.where(accounts.c.number.in_(bindparam("numbers", expanding=True)))
# One account's, past SQLAlchemy's per-run work (storage/hot.py): most balance queries name one.
_BALANCE_OF = HotRead(_FIGURES.where(accounts.c.number == bindparam("number")))
_HELD = select(holds.c.account, holds.c.amount).where(holds.c.payment_id == bindparam("hold_payment"),
                                                      holds.c.released_at.is_(None))
_RELEASE = update(holds).where(holds.c.payment_id == bindparam("hold_payment")) \
    .values(released_at=bindparam("released_at"))


def lock_accounts(conn: Connection, numbers: set[str]) -> dict[str, Locked]:
    """Take row locks on these accounts in a fixed order, so two transfers A->B and B->A cannot deadlock;
    returns them as they stand (unknown numbers are absent).

    The lock is a no-op on SQLite, where BEGIN IMMEDIATE already serialises writers."""
    if not numbers:
        return {}
    return {r.number: Locked(*r) for r in conn.execute(_LOCK, {"numbers": sorted(numbers)})}


def post(uow: UnitOfWork, journal: str, legs: list[Leg], now: dt.datetime, value_date: dt.date,
         locked: bool = False) -> list[tuple[Leg, SimpleNamespace]]:
    """Book balanced legs: update each balance and append a statement entry with its BalanceAfter, one
    statement for all the balances; the entries go in with the unit of work's last statement (along_rows).
    Returns the legs booked, (leg, entry) each, `entry` the statement entry as it will be written: the
    caller tells the accounts' subscribers (notify.outbox.posted), in the same transaction.

    `locked`: the caller holds the accounts' locks already (lock_accounts); if not, and the legs touch more
    than one account, they are locked here first, in the fixed order (one UPDATE of several rows would
    take their locks in whatever order the database reads them)."""
    conn = uow.conn
    if sum(_delta(leg) for leg in legs) != 0:
        raise ValueError(f"posting {journal} does not balance")
    if any(leg.amount <= 0 for leg in legs):
        raise ValueError("a leg's amount must be positive")
    if not legs:
        return []
    by_account: dict[str, list[Leg]] = {}
    for leg in sorted(legs, key=lambda leg: leg.account):
        by_account.setdefault(leg.account, []).append(leg)
    if not locked and len(by_account) > 1:
        lock_accounts(conn, set(by_account))
    moved = {account: sum(_delta(leg) for leg in its_legs) for account, its_legs in by_account.items()}
    params = {}
    for i, (account, its_legs) in enumerate(by_account.items()):
        params.update({f"a{i}": account, f"d{i}": moved[account], f"c{i}": len(its_legs)})
    booked = {r.number: r for r in conn.execute(_booking(len(by_account)), params)}
    if len(booked) != len(by_account):
        left_out = sorted(by_account.keys() - booked.keys())
        known = set(conn.execute(select(accounts.c.number).where(accounts.c.number.in_(left_out))).scalars())
        if known:   # a defect upstream: the transaction must not commit
            raise RuntimeError(f"posting {journal} would take {sorted(known)} below what they hold")
        raise ValueError(f"posting {journal} names unknown accounts: {left_out}")
    rows, booked_legs = [], []
    for account, its_legs in by_account.items():
        after = booked[account]
        balance, seq = after.booked - moved[account], after.entry_seq - len(its_legs)
        # Booking time never goes backwards along EntryIds: a transaction that began before midnight but
        # got the account's lock after a later one must not land on the previous day's statement. (An earlier
        # posting of this request whose entries are not written yet was booked at this same time: the
        # last entry written before it is the one read here too.)
        booked_at = max(now, after.previous_booked_at or now)
        for leg in its_legs:
            balance, seq = balance + _delta(leg), seq + 1
            rows.append(entry := dict(
                account=account, seq=seq, journal=journal, booked_at=booked_at, value_date=value_date,
                direction=leg.direction, amount=leg.amount, balance_after=balance,
                counterparty_name=leg.counterparty_name, counterparty_account=leg.counterparty_account,
                counterparty_scheme=leg.counterparty_scheme, counterparty_code=leg.counterparty_code,
                client_ref=leg.client_ref, end_to_end_id=leg.end_to_end_id, narrative=leg.narrative,
                reversal=leg.reversal, payment_id=leg.payment_id))
            booked_legs.append((leg, SimpleNamespace(**entry)))
    uow.along_rows(entries, rows)
    return booked_legs


def _delta(leg: Leg) -> int:
    return leg.amount if leg.direction == CRDT else -leg.amount


def place_holds(uow: UnitOfWork, placed: list[tuple[str, str, int]], now: dt.datetime,
                released: frozenset[str] = frozenset()) -> None:
    """Hold funds for payments, (payment id, account, amount): one insert for the holds, one update per
    account. The caller has locked the accounts and found them able to carry the holds; the update checks
    it again and a shortfall (a defect) raises, so the transaction can never commit funds it has not got.

    The holds of the payments in `released` are released in the same instant: those payments are settled
    in this transaction, so their holds never count in `held` for anyone, but they are on record like any
    other. An account whose holds are all released so is not updated: the caller posts those payments next,
    and each posting checks the funds (post), as the update would have.

    The holds go in with the unit of work's last statement (along_rows): nothing reads them back before."""
    if not placed:
        return
    needed: dict[str, list[int]] = {}   # account -> [all of its holds, the ones that stay]
    for payment_id, account, amount in placed:
        totals = needed.setdefault(account, [0, 0])
        totals[0] += amount
        totals[1] += 0 if payment_id in released else amount
    for account, (total, kept) in sorted(needed.items()):
        if not kept:   # all released in this instant: their postings check the funds
            continue
        if uow.conn.execute(_HOLD_FUNDS, {"hold_account": account, "hold_amount": total, "kept": kept}).rowcount != 1:
            raise RuntimeError(f"holds of {total} do not fit the available balance of {account}")
    uow.along_rows(holds, [dict(payment_id=p, account=a, amount=m, placed_at=now,
                                released_at=now if p in released else None) for p, a, m in placed])


def release(conn: Connection, payment_id: str, now: dt.datetime) -> int:
    """Release a payment's hold (on settlement, failure or cancel); returns the amount released."""
    row = conn.execute(_HELD, {"hold_payment": payment_id}).first()
    if row is None:
        return 0
    conn.execute(_RELEASE, {"hold_payment": payment_id, "released_at": now})
    conn.execute(_UNHOLD_FUNDS, {"hold_account": row.account, "hold_amount": row.amount})
    return row.amount


def balances(conn: Connection, numbers: list[str]) -> dict[str, tuple[int, int]]:
    """account -> (booked, available) now, for these accounts (unknown ones are absent)."""
    if len(numbers) == 1:
        row = _BALANCE_OF.first(conn, {"number": numbers[0]})
        return {} if row is None else {row.number: (row.booked, row.booked - row.held)}
    return {r.number: (r.booked, r.booked - r.held) for r in conn.execute(_BALANCES, {"numbers": numbers})}


def balance(conn: Connection, account: str, at: dt.datetime | None = None) -> tuple[int, int]:
    """(booked, available) now, or as they stood at instant `at` (from entries and hold history)."""
    if at is None:
        return balances(conn, [account])[account]
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


__all__ = ["CRDT", "DBIT", "Leg", "Locked", "balance", "balances", "ensure_internal_account", "internal_account",
           "lock_accounts", "place_holds", "post", "release", "total_booked"]
