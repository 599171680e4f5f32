"""The bank's business day: dates in the bank's time zone turned into UTC instants, safely."""
from __future__ import annotations

import datetime as dt

_FAR_PAST = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
_FAR_FUTURE = dt.datetime(9999, 12, 30, tzinfo=dt.UTC)


def start_of(day: dt.date, zone: dt.tzinfo) -> dt.datetime:
    """The instant a business day begins; dates at the ends of the calendar clamp instead of overflowing."""
    try:
        return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)
    except OverflowError:
        return _FAR_PAST if day.year == 1 else _FAR_FUTURE


def bounds(first: dt.date, last: dt.date, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """[start of `first`, start of the day after `last`) as UTC instants."""
    after = _FAR_FUTURE if last == dt.date.max else start_of(last + dt.timedelta(days=1), zone)
    return start_of(first, zone), after


def today(now: dt.datetime, zone: dt.tzinfo) -> dt.date:
    return now.astimezone(zone).date()
