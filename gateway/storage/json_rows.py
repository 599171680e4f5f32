"""Rows of a table as one JSON parameter, on PostgreSQL: an insert of any number of rows with one statement
text and one parameter (jsonb_array_elements).

Each row goes as an array of its values in the columns' order, not as an object: the keys of a 31-column
payment row were a third of its JSON, and 10,000 rows of 31 columns take 35 ms to encode and 85 ms to insert
as arrays, where as objects they took 87 ms and 150 ms (jsonb_to_recordset).

Used for the writes a request sends with its last statement (gateway/storage/unit_of_work.py, along_rows):
there each write must have parameter names of its own and may carry any number of rows, and psycopg converts
a statement of more than 50 parameters anew every time it runs (0.27 ms for 63 of them, 0.02 ms once cached).
"""
from __future__ import annotations

import functools
import json
import operator

from sqlalchemy import (
    Date,
    DateTime,
    LargeBinary,
    String,
    Table,
    Text,
    TypeDecorator,
    bindparam,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB

from gateway.storage.totals import adding_on_key


def columns(table: Table) -> tuple[str, ...]:
    """The columns an insert names: all but an autoincrementing key, which the database numbers."""
    return tuple(c.name for c in table.c if c is not table.autoincrement_column)


def param_name(table: Table) -> str:
    return f"{table.name}_rows"


@functools.cache
def inserting(table: Table, adding: tuple[str, ...] = ()):
    """INSERT INTO table (columns) SELECT CAST(r ->> 0 AS ...), ... FROM jsonb_array_elements(:<table>_rows)
    AS r; with `adding`, a row already there under the same key gets these columns added instead (as
    gateway/storage/totals.adding).

    Each value is cast to its column's type, a string to text without its length: a value too long is then
    refused by the insert, where a cast to the length would cut it short silently."""
    names = columns(table)
    row = func.jsonb_array_elements(cast(bindparam(param_name(table), type_=Text), JSONB)).column_valued("r")
    values = [cast(row.op("->>")(literal_column(str(i))),
                   Text() if isinstance(table.c[n].type, String) else table.c[n].type)
              for i, n in enumerate(names)]
    statement = postgresql.insert(table).from_select(names, select(*values))
    return adding_on_key(statement, table, adding) if adding else statement


def encode(table: Table, rows: list[dict], dialect) -> str:
    """The rows as inserting() reads them: every column named (a missing one raises, where the insert would
    read NULL), times as their column's type binds them, dates in ISO 8601, bytes in PostgreSQL's hex form."""
    get, converting = _reader(table)
    if not converting:
        records = [get(row) for row in rows]   # tuples, in C: a 10,000-payment file has 310,000 values
    else:
        records = []
        for row in rows:
            record = list(get(row))
            for i, convert in converting:
                value = record[i]
                if value is not None:
                    record[i] = convert(value, dialect)
            records.append(record)
    return json.dumps(records, ensure_ascii=False, separators=(",", ":"))


@functools.cache
def _reader(table: Table) -> tuple:
    """A getter of a row's values in the columns' order (KeyError for one missing), and (index, how its value
    becomes JSON) for the columns whose values do not go as they are."""
    def of(type_):
        if isinstance(type_, TypeDecorator):
            inner = of(type_.impl) or (lambda v, _d: v)
            return lambda v, d: inner(type_.process_bind_param(v, d), d)
        if isinstance(type_, LargeBinary):
            return lambda v, _d: "\\x" + bytes(v).hex()
        if isinstance(type_, Date | DateTime):
            return lambda v, _d: v.isoformat()
        return None
    names = columns(table)
    get = operator.itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    return get, tuple((i, f) for i, n in enumerate(names) if (f := of(table.c[n].type)) is not None)
