"""What the running totals share (gateway/flows.py, gateway/maker_totals.py): time cut into whole units
counted from 1970-01-01 00:00 UTC, one statement that adds a request's amounts to their rows, and the one
way a window is read back from them."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Table, literal_column
from sqlalchemy.dialects import postgresql, sqlite

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def unit_of(at: dt.datetime, unit: dt.timedelta) -> int:
    """The unit `at` falls in, counted from the epoch."""
    return (at - EPOCH) // unit


def first_whole(since: dt.datetime, unit: dt.timedelta) -> dt.datetime:
    """The first whole unit at or after `since`: totals count from there on."""
    start = EPOCH + unit_of(since, unit) * unit
    return start if start == since else start + unit


def window_total(counted, taken_back, part=None):
    """A window's total as one scalar expression: the units counted from the first whole one on (`counted`),
    less the payments among them taken back since (`taken_back`: a total counts a payment when it is created
    and is never lowered), plus the live payments in the part-unit before the first whole one (`part`; none
    for a window that starts on a unit). Each is a one-column SELECT."""
    total = counted.scalar_subquery() - taken_back.scalar_subquery()
    return total if part is None else total + part.scalar_subquery()


def written_in(states) -> list:
    """A fixed list of states written into the SQL text. A plain in_() of values is an "expanding"
    parameter, and a statement with one has its text rendered anew at every execution."""
    return [literal_column(f"'{s.value}'") for s in sorted(states)]


_ADDING: dict[tuple, object] = {}


def adding(table: Table, dialect: str, *summed: str):
    """An insert of rows that adds their `summed` columns to a row already there with the same key."""
    key = (table.name, dialect, summed)
    if key not in _ADDING:
        _ADDING[key] = adding_on_key((postgresql.insert if dialect == "postgresql" else sqlite.insert)(table),
                                     table, summed)
    return _ADDING[key]


def adding_on_key(ins, table: Table, summed: tuple[str, ...]):
    """`ins` (a dialect's insert into `table`), adding its `summed` columns to a row already there under the
    same primary key instead of failing on it."""
    return ins.on_conflict_do_update(index_elements=[c.name for c in table.primary_key],
                                     set_={name: table.c[name] + ins.excluded[name] for name in summed})
