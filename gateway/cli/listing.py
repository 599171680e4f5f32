"""What every list command shares: `--json` for scripts (one JSON array of objects, the same fields the text
shows, dates in ISO 8601), and a line saying the list is empty instead of printing nothing."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

import typer

Json = Annotated[bool, typer.Option("--json", help="print one JSON array of objects (for scripts)")]


def _plain(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"no JSON for {value!r}")


def show(rows: Sequence[Mapping[str, Any]], line: Callable[[Mapping[str, Any]], str], as_json: bool,
         empty: str) -> None:
    """Print `rows` as JSON, or one `line` each, or `empty` when there are none."""
    if as_json:
        typer.echo(json.dumps(list(rows), ensure_ascii=False, indent=1, default=_plain))
    elif not rows:
        typer.echo(empty)
    else:
        for row in rows:
            typer.echo(line(row))
