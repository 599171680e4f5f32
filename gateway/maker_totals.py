"""Running totals of each maker's payments per debtor account and quarter hour: the daily limit's count.

A grant's daily limit caps what one operator (the maker) pays from one account in a business day. Summing
the maker's payments of the day read more rows with every payment (an ERP pushing month-end payroll one
payment at a time: 0.3 ms at the first, 3.8 ms at the 8,000th, under the account's lock). These totals
make it a read of at most a hundred rows (a day's quarter hours), exactly as the sum would count:

- every payment created is counted once, in the quarter hour it was created, at the end of its request's
  transaction (record()). Only a request holding the debtor account's lock (gateway/ledger.py) writes or
  reads an account's totals, so they add no lock order of their own;
- never decremented: a payment rejected by an approver, cancelled or failed no longer counts, and is taken
  out when read, found through a partial index of such payments, which are few. No state change touches
  these rows, so the approval, cancellation and clearing paths take no lock on them. A returned payment
  still counts: the maker did pay it;
- quarter hours, not days: a business day begins at midnight in the bank's zone, which the totals need
  not know (nor the upgrade that counts the payments made before it). Every zone in use today begins its
  days on a quarter hour; for any other, the part-quarter before the day's first whole quarter hour is read
  from the payments table itself.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import Connection, bindparam, delete, func, select, text

from domain.states import RELEASED
from gateway.storage.tables import GONE_STATES, maker_totals, payments
from gateway.storage.totals import first_whole, unit_of, window_total, written_in
from gateway.storage.unit_of_work import UnitOfWork

QUARTER = dt.timedelta(minutes=15)
# A business day lies within the last 26 hours in any zone (a 25-hour day on leaving summer time); older
# totals are never read again.
HORIZON = dt.timedelta(days=2)


def quarter_of(at: dt.datetime) -> int:
    """Quarter hours since 1970-01-01 00:00 UTC."""
    return unit_of(at, QUARTER)


def record(uow: UnitOfWork, client: str, maker: str, at: dt.datetime, by_account: Counter) -> None:
    """Count this request's payments (all made by `maker` at `at`): debtor account -> amount, minor units."""
    quarter = quarter_of(at)
    rows = [dict(client_id=client, maker=maker, account=a, quarter=quarter, amount=by_account[a])
            for a in sorted(by_account) if by_account[a]]
    if rows:
        uow.along_rows(maker_totals, rows, adding=("amount",))   # with the request's last statement


def prune(conn: Connection, now: dt.datetime) -> int:
    """Drop the totals no business day reaches any more (a daily job); returns how many rows went."""
    return conn.execute(delete(maker_totals).where(maker_totals.c.quarter < quarter_of(now - HORIZON))).rowcount


_t, _p = maker_totals.c, payments.c
_counted = select(func.coalesce(func.sum(_t.amount), 0)).where(
    _t.client_id == bindparam("client"), _t.maker == bindparam("maker"), _t.account == bindparam("account"),
    _t.quarter >= bindparam("quarter"))
_mine = (_p.client_id == bindparam("client")) & (_p.maker == bindparam("maker")) & (
    _p.debtor_account == bindparam("account"))
_RELEASED = written_in(RELEASED)
# Spelt with GONE_STATES, as the partial index ix_payments_gone_maker is, so that it applies; RETURNED is
# among the gone states of the fund-flow rules but still counts here.
_released = select(func.coalesce(func.sum(_p.amount), 0)).where(
    _mine, _p.created_at >= bindparam("whole"), text(GONE_STATES), _p.state.in_(_RELEASED))
_part = select(func.coalesce(func.sum(_p.amount), 0)).where(
    _mine, _p.created_at >= bindparam("day_start"), _p.created_at < bindparam("whole"), _p.state.not_in(_RELEASED))
_USED = select(window_total(_counted, _released))
# Only for a day that does not begin on a quarter hour: the part read adds nothing to the others, and a planner
# with few statistics may walk more of an index for it than for the rest together.
_USED_OFF_QUARTER = select(window_total(_counted, _released, _part))
_AS_SCALAR = {statement: statement.scalar_subquery() for statement in (_USED, _USED_OFF_QUARTER)}


def used_today(conn: Connection, client: str, maker: str, account: str, day_start: dt.datetime) -> int:
    """What `maker` has paid from `account` since `day_start` and not taken back (rejected, cancelled, failed),
    in minor units. Read under the account's lock, so that parallel payments see each other's."""
    return conn.execute(*_used(client, maker, account, day_start)).scalar()


def used_today_read(client: str, maker: str, account: str, day_start: dt.datetime) -> tuple:
    """used_today() as a scalar read and its parameters, for a statement that reads it beside something else
    (UnitOfWork.lock_client_reading). Nothing changes these totals without the account's lock: every payment from
    it is created, and every one taken back releases its hold, under that lock."""
    statement, params = _used(client, maker, account, day_start)
    return _AS_SCALAR[statement], params


def _used(client: str, maker: str, account: str, day_start: dt.datetime) -> tuple:
    whole = first_whole(day_start, QUARTER)
    return _USED if whole == day_start else _USED_OFF_QUARTER, {
        "client": client, "maker": maker, "account": account, "quarter": quarter_of(whole), "whole": whole,
        "day_start": day_start}
