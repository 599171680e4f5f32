"""Cash position: where an account stands today and where it is heading, day by day.

Booked is what the ledger holds. Payments accepted but not yet settled (waiting for approval, accepted,
at clearing, or of unknown outcome) will take money out on their requested date; the ERP's open items add
expected receipts and payments. The projection is booked balance plus everything expected up to each day's
end. Outflows dated in the past (still at clearing) and overdue open items count on the first day.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Expected:
    """An ERP open item: money expected in (CRDT) or out (DBIT) of an account on a date."""

    account: str
    date: dt.date
    direction: str          # CRDT | DBIT
    amount: int             # minor units of `currency`
    ref: str | None = None
    currency: str = ""      # must be the account's: projections never mix currencies


@dataclass(frozen=True)
class Day:
    date: dt.date
    outflows: int           # accepted-but-unsettled payments due that day
    expected_in: int
    expected_out: int
    projected: int          # booked balance projected to the end of the day


@dataclass(frozen=True)
class Position:
    account: str
    currency: str
    booked: int
    available: int
    unsettled: int          # all accepted-but-unsettled outflows (held funds)
    days: tuple[Day, ...]


def project(account: str, currency: str, booked: int, available: int, outflows: Iterable[tuple[dt.date, int]],
            expected: Iterable[Expected], today: dt.date, days: int) -> Position:
    """The position of one account over `days` days from today (all amounts minor units)."""
    first = today
    out_by_day: defaultdict[dt.date, int] = defaultdict(int)
    in_by_day: defaultdict[dt.date, int] = defaultdict(int)
    exp_out_by_day: defaultdict[dt.date, int] = defaultdict(int)
    unsettled = 0
    for date, amount in outflows:
        out_by_day[max(date, first)] += amount
        unsettled += amount
    for item in expected:
        if item.account != account:
            continue
        target = in_by_day if item.direction == "CRDT" else exp_out_by_day
        target[max(item.date, first)] += item.amount
    running, result = booked, []
    for n in range(days):
        day = first + dt.timedelta(days=n)
        running += in_by_day[day] - out_by_day[day] - exp_out_by_day[day]
        result.append(Day(day, out_by_day[day], in_by_day[day], exp_out_by_day[day], running))
    return Position(account, currency, booked, available, unsettled, tuple(result))
