"""Statements: entries of one account by cursor or by date, with opening and closing balances.

The cursor is the EntryId of the last entry returned. EntryIds are a per-account sequence assigned under
the account's row lock (gateway/ledger.py), so they become visible strictly in order: reading `seq > cursor`
can never skip an entry that commits later, and never repeats one.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, select

from domain.errors import NotFound
from domain.models import BankCode, Party, Statement, StatementEntry
from domain.money import Money
from gateway import businessday
from gateway.storage.tables import accounts, entries


def parse_cursor(cursor: str, last_seq: int) -> int:
    """The sequence number a cursor stands for; NOT_FOUND if it is not one this account has issued."""
    if cursor == "":
        return 0
    if not cursor.isascii() or not cursor.isdigit() or int(cursor) > last_seq:
        raise NotFound(f"unknown cursor {cursor!r}")
    return int(cursor)


def _entry(row, currency: str) -> StatementEntry:
    party = None
    if row.counterparty_name or row.counterparty_account:
        bank = BankCode(row.counterparty_scheme, row.counterparty_code or "") if row.counterparty_scheme else None
        party = Party(row.counterparty_name, row.counterparty_account, bank)
    return StatementEntry(
        entry_id=row.seq, booked=row.booked_at, value_date=row.value_date, direction=row.direction,
        amount=Money.from_minor(row.amount, currency),
        balance_after=Money.from_minor(row.balance_after, currency), counterparty=party,
        bank_ref=row.journal, narrative=row.narrative, client_ref=row.client_ref,
        end_to_end_id=row.end_to_end_id, reversal=row.reversal)


def read(conn: Connection, account: str, *, after: str | None, date_from: dt.date | None,
         date_to: dt.date | None, limit: int, zone: dt.tzinfo, now: dt.datetime) -> Statement:
    """One page of the statement: entries after a cursor, or booked between two dates (bank time)."""
    acct = conn.execute(select(accounts.c.currency, accounts.c.entry_seq, accounts.c.booked)
                        .where(accounts.c.number == account)).one()
    query = select(entries).where(entries.c.account == account)
    if after is not None:
        start_seq = parse_cursor(after, acct.entry_seq)
        query = query.where(entries.c.seq > start_seq)
    else:
        start, end = businessday.bounds(date_from, date_to, zone)
        query = query.where(entries.c.booked_at >= start, entries.c.booked_at < end)
        start_seq = None
        # An empty date page continues after the last entry booked before the range ends.
        end_seq = conn.execute(select(entries.c.seq).where(entries.c.account == account, entries.c.booked_at < end)
                               .order_by(entries.c.seq.desc()).limit(1)).scalar() or 0
    rows = conn.execute(query.order_by(entries.c.seq).limit(limit + 1)).all()
    complete = len(rows) <= limit
    rows = rows[:limit]
    currency = acct.currency
    if rows:
        first, last = rows[0], rows[-1]
        signed_first = first.amount if first.direction == "CRDT" else -first.amount
        opening, closing = first.balance_after - signed_first, last.balance_after
        opening_date = first.booked_at.astimezone(zone).date()
        closing_date = last.booked_at.astimezone(zone).date()
        next_seq = last.seq
    else:
        opening = closing = _balance_after_seq(conn, account, start_seq) if start_seq is not None else (
            _balance_before(conn, account, date_from, zone))
        opening_date = closing_date = (date_to or now.astimezone(zone).date())
        next_seq = start_seq if start_seq is not None else end_seq
    return Statement(
        account=account, currency=currency,
        opening=Money.from_minor(opening, currency), opening_date=opening_date,
        closing=Money.from_minor(closing, currency), closing_date=closing_date,
        entries=tuple(_entry(r, currency) for r in rows),
        next_cursor=f"{next_seq:012d}" if next_seq else "", complete=complete)


def _balance_after_seq(conn: Connection, account: str, seq: int) -> int:
    if seq == 0:
        return 0
    return conn.execute(select(entries.c.balance_after)
                        .where(entries.c.account == account, entries.c.seq == seq)).scalar_one()


def _balance_before(conn: Connection, account: str, day: dt.date, zone: dt.tzinfo) -> int:
    start = businessday.start_of(day, zone)
    return conn.execute(select(entries.c.balance_after)
                        .where(entries.c.account == account, entries.c.booked_at < start)
                        .order_by(entries.c.seq.desc()).limit(1)).scalar() or 0
