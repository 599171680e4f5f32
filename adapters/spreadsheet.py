"""The one CSV writer of the project, for files a person may open in a spreadsheet: statements in CSV
(adapters/template) and reconciliation reports (reconcile/render.py).

Their cells hold what other parties wrote (an incoming credit's payer name, another client's purpose), and
a spreadsheet runs a cell starting with = + - @ (or a tab or carriage return before one) as a formula:
`=HYPERLINK(...)`, `=1+2+cmd|' /C calc'!A0`. Such a cell is written with a leading apostrophe, which
spreadsheets show as text. A plain number keeps its sign (amounts stay numbers), and a value that already
starts with an apostrophe gets one more, so that `plain()` gives every value back exactly.

Here, in adapters/, because both users may import it: the template adapter and reconcile (which reads
statements through the adapters already); the server only passes the adapters' bytes on."""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?", re.ASCII)
_TEXT = "'"
_EXCEL_BOM = "\ufeff".encode()


def cell(value: str) -> str:
    """The value as written: never run as a formula, and read back exactly by plain()."""
    if value.startswith(_TEXT) or (value.startswith(_FORMULA) and not _NUMBER.fullmatch(value)):
        return _TEXT + value
    return value


def plain(value: str) -> str:
    """A cell as cell() wrote it -> the value it holds."""
    return value[1:] if value.startswith(_TEXT) else value


def csv_bytes(rows: Iterable[Sequence[str | None]], *, excel_bom: bool = False) -> bytes:
    """UTF-8 CSV, RFC 4180 quoting, CRLF line ends (the same rows, the same bytes), every cell through
    cell(), None as an empty cell (as the csv module writes it). `excel_bom`: a byte-order mark first, so
    that Excel shows Chinese names instead of mojibake."""
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows([cell(v or "") for v in row] for row in rows)
    return (_EXCEL_BOM if excel_bom else b"") + out.getvalue().encode("utf-8")
