"""One read that runs on every payment, executed without SQLAlchemy's per-run machinery.

The fund-flow rules' facts query (gateway/rule_facts.py) binds some thirty parameters; SQLAlchemy spends about
70 us a run preparing them and the result row, a third of the whole query on SQLite. Here the statement is
still written with SQLAlchemy and compiled once per dialect; each run converts its parameters and result
with the same type processors SQLAlchemy would use, and executes on the connection's own cursor, in the
transaction the connection is in. A driver error is raised as SQLAlchemy raises it (DBAPIError subclasses),
so callers and retries see no difference.
"""
from __future__ import annotations

from collections import namedtuple
from typing import Any

from sqlalchemy import Connection, Select, exc


class HotRead:
    """A SELECT of exactly one row, prepared once per dialect."""

    def __init__(self, statement: Select):
        self.statement = statement
        self._prepared: dict[str, tuple] = {}

    def _prepare(self, dialect) -> tuple:
        compiled = self.statement.compile(dialect=dialect)
        # Each parameter in the order the driver takes them, with its type's converter; the statement's own
        # literals (a LIMIT, a COALESCE default) are bound once here.
        names = compiled.positiontup if compiled.positional else list(compiled.binds)
        slots = [(name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect),
                  None if compiled.binds[name].required else compiled.binds[name].value) for name in names]
        columns = list(self.statement.selected_columns)
        results = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
        return compiled, slots, results, namedtuple("Row", [c.name for c in columns])

    def one(self, conn: Connection, params: dict[str, Any]):
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
        return row(*(value if process is None else process(value) for value, process in zip(raw, results)))
