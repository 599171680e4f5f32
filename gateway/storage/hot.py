"""Statements that run on every request, executed without SQLAlchemy's per-run machinery.

The fund-flow rules' facts query (gateway/rule_facts.py) binds some thirty parameters; SQLAlchemy spends about
70 us a run preparing them and the result row, a third of the whole query on SQLite. Here the statement is
still written with SQLAlchemy and compiled once per dialect; each run converts its parameters and result
with the same type processors SQLAlchemy would use, and executes on the connection's own cursor, in the
transaction the connection is in. A driver error is raised as SQLAlchemy raises it (DBAPIError subclasses),
so callers and retries see no difference.

HotWrite does the same for the writes every request makes (its stored answer, its audit records, the chain's
head): SQLAlchemy spends some 90 us a statement around SQLite's 10-15 us. Both run only inside a transaction
that SQLAlchemy began (a unit of work's), whose BEGIN they rely on.
"""
from __future__ import annotations

import datetime as dt
import decimal
import operator
from collections import namedtuple
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Executable, Select, exc


def _slots(compiled, dialect) -> list[tuple[str, Callable[[Any], Any] | None, Any]]:
    """Each parameter in the order the driver takes them, with its type's converter (memoised: _last_one) and
    the value of a statement's own literal (a LIMIT, a COALESCE default), bound once here; None for the
    parameters given at each run."""
    names = compiled.positiontup if compiled.positional else list(compiled.binds)
    return [(name, _last_one(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)),
             None if compiled.binds[name].required else compiled.binds[name].value) for name in names]


def _last_one(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """A converter that keeps its last result for the same object: the rows of one request share their
    instant (a 10,000-payment file's 70,000 timestamps are one datetime), and SQLite's DATETIME converter
    takes 3 us a call. Only for immutable values (datetimes, numbers, strings), compared by identity."""
    if process is None:
        return None
    last: list[tuple[Any, Any]] = [(_NOTHING, None)]   # replaced whole: threads share the converter

    def converted(value: Any) -> Any:
        seen, result = last[0]
        if value is seen and isinstance(value, _IMMUTABLE):
            return result
        result = process(value)
        last[0] = (value, result)
        return result
    return converted


_NOTHING = object()
_IMMUTABLE = (dt.datetime, dt.date, str, bytes, int, float, decimal.Decimal)


class HotRead:
    """A SELECT of exactly one row, prepared once per dialect."""

    def __init__(self, statement: Select):
        self.statement = statement
        self._prepared: dict[str, tuple] = {}

    def _prepare(self, dialect) -> tuple:
        compiled = self.statement.compile(dialect=dialect)
        slots = _slots(compiled, dialect)
        columns = list(self.statement.selected_columns)
        results = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
        return compiled, slots, results, namedtuple("Row", [c.name for c in columns])

    def one(self, conn: Connection, params: dict[str, Any]):
        row = self.first(conn, params)
        if row is None:
            raise exc.NoResultFound("no row was found where one was required")
        return row

    def first(self, conn: Connection, params: dict[str, Any]):
        """The first row, or None."""
        dialect = conn.dialect
        prepared = self._prepared.get(dialect.name) or self._prepared.setdefault(dialect.name, self._prepare(dialect))
        compiled, slots, results, row = prepared
        values = [params[name] if fixed is None else fixed for name, _, fixed in slots]
        values = [v if process is None else process(v) for v, (_, process, _) in zip(values, slots)]
        args = tuple(values) if compiled.positional else {name: v for (name, _, _), v in zip(slots, values)}
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute(compiled.string, args)
            raw = cursor.fetchone()
        except dialect.loaded_dbapi.Error as err:
            raise exc.DBAPIError.instance(compiled.string, args, err, dialect.loaded_dbapi.Error) from err
        finally:
            cursor.close()
        if raw is None:
            return None
        return row(*(value if process is None else process(value) for value, process in zip(raw, results)))


class HotWrite:
    """An INSERT or UPDATE without RETURNING, compiled once per dialect and set of parameter names. Every value
    the statement takes must be given: one whose column has a default computed in Python is refused when it is
    prepared, not left out."""

    def __init__(self, statement: Executable):
        self.statement = statement
        self._prepared: dict[tuple, tuple] = {}

    def _prepare(self, dialect, keys: tuple[str, ...]) -> tuple:
        compiled = self.statement.compile(dialect=dialect, column_keys=list(keys))
        if compiled.insert_prefetch or compiled.update_prefetch or getattr(compiled, "returning", None):
            raise ValueError("HotWrite runs statements whose every value is given, without RETURNING")
        slots = _slots(compiled, dialect)
        # A row's values in the driver's order in one C call, then the statement's own literals put in their
        # places (in order, so each lands where the driver takes it) and the few values that need converting.
        given = [name for name, _, fixed in slots if fixed is None]
        take = operator.itemgetter(*given) if given else (lambda _params: ())
        single = len(given) == 1   # itemgetter of one name gives the value, not a tuple
        literals = [(i, fixed) for i, (_, _, fixed) in enumerate(slots) if fixed is not None]
        converted = [(i, process) for i, (_, process, _) in enumerate(slots) if process is not None]
        names = [name for name, _, _ in slots]

        def args(params: dict[str, Any]):
            values = [take(params)] if single else list(take(params))
            for i, fixed in literals:
                values.insert(i, fixed)
            for i, process in converted:
                values[i] = process(values[i])
            return tuple(values) if compiled.positional else dict(zip(names, values))
        return compiled, args

    def run(self, conn: Connection, rows: dict[str, Any] | list[dict[str, Any]]) -> None:
        """Run with one row's parameters, or with several (executemany), all naming the same parameters."""
        many = isinstance(rows, list)
        if many and not rows:
            return
        first = rows[0] if isinstance(rows, list) else rows
        dialect = conn.dialect
        key = (dialect.name, tuple(first))
        prepared = self._prepared.get(key) or self._prepared.setdefault(key, self._prepare(dialect, tuple(first)))
        compiled, args = prepared
        batch = [args(r) for r in rows] if isinstance(rows, list) else args(rows)
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            if many:
                cursor.executemany(compiled.string, batch)
            else:
                cursor.execute(compiled.string, batch)
        except dialect.loaded_dbapi.Error as err:
            raise exc.DBAPIError.instance(compiled.string, batch, err, dialect.loaded_dbapi.Error) from err
        finally:
            cursor.close()
