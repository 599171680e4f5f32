"""`reconcile`: a statement against the ERP's open items (reconcile/) and, with --home, against this
gateway's own payments, read here and handed to reconcile/, which knows nothing of the server."""
from __future__ import annotations

import os
import sys
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import fail


def reconcile_command(
        statement: Annotated[list[Path], typer.Option(help="statement file (repeat for consecutive files)")],
        open_items: Annotated[Path, typer.Option(help="the ERP's open items, .csv or .json")],
        format: Annotated[str | None, typer.Option(help="statement format; default: recognised")] = None,
        out: Annotated[Path | None, typer.Option(help="report file: .json, .csv or .html (default: JSON "
                                                         "on standard output)")] = None,
        home: Annotated[Path | None, typer.Option(help="also match the payments of this gateway home")] = None,
        date_window: Annotated[int, typer.Option(help="days between value and due date")] = 5,
        fee_tolerance: Annotated[str, typer.Option(help="largest difference the text rule accepts")] = "50",
        similarity: Annotated[float, typer.Option(help="how alike a misspelt reference must be, 0-1")] = 0.85,
        max_group: Annotated[int, typer.Option(help="most items one entry may pay (and entries one item)")] = 5,
        encoding: Annotated[str, typer.Option(help="of a CSV open-items file, e.g. gbk")] = "utf-8",
        fail_on_unmatched: Annotated[bool, typer.Option(help="exit 1 if anything is left unmatched")] = False,
        account: Annotated[str | None, typer.Option(help="of statement files holding several accounts, only "
                                                         "this one (default: each, one section per account)")] = None,
        lenient: Annotated[bool, typer.Option(help="read statement files whose balances or control totals "
                                                   "disagree, and list that at the top of the report")] = False,
        columns: Annotated[Path | None, typer.Option(help="column mapping (TOML) of XLSX statements and open "
                                                          "items; saved, and used when not given")] = None,
        formats: Annotated[Path | None, typer.Option(help="folder of declared formats whose statements can be "
                                                          "read too (default: the formats folder of --home)")] = None,
) -> None:
    """Match a statement against the ERP's open items (and the gateway's payments); docs/reconciliation.md."""
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.cli import gateway_payments
    from reconcile.model import Tolerances
    from reconcile.open_items import OpenItemsInvalid
    from reconcile.render import FORMATS, render
    from reconcile.report import build_report
    from reconcile.statement_files import StatementFileInvalid
    kind = "json" if out is None else {".json": "json", ".csv": "csv", ".html": "html", ".htm": "html"}.get(
        out.suffix.lower())
    if kind not in FORMATS:
        fail(f"--out {out}: the report format follows the suffix: .json, .csv or .html")
    try:
        fee = Decimal(fee_tolerance)
        tolerances = Tolerances(date_window, fee, similarity, max_group)
    except (InvalidOperation, ValueError) as err:
        fail(f"tolerances: {err}")
    from reconcile.xlsx import ColumnsInvalid
    mapping = None
    if columns is not None or any(p.suffix.lower() == ".xlsx" for p in (*statement, open_items)):
        try:
            mapping = saved_columns(columns)
        except ColumnsInvalid as err:
            fail(f"--columns {err}")
    if formats is None and home is not None:
        formats = _formats_of(home)
    elif formats is not None and not formats.is_dir():
        fail(f"--formats {formats}: not a folder")
    try:
        report = build_report(statement, open_items, fmt=format, tolerances=tolerances, encoding=encoding,
                              payments=None if home is None else partial(gateway_payments.load, home),
                              account=account, lenient=lenient, columns=mapping, formats=formats)
    except (StatementFileInvalid, OpenItemsInvalid, FileNotFoundError) as err:
        fail(str(err))
    except SQLAlchemyError as err:
        fail(f"--home {home}: the gateway database cannot be read: {err.__class__.__name__}")
    data = render(report, kind)
    if out is None:
        sys.stdout.buffer.write(data)
    else:
        out.write_bytes(data)
    for note in report.inconsistencies:
        typer.echo(f"inconsistent (read with --lenient): {note}", err=True)
    unmatched = 0
    for section in report.sections:
        r = section.result
        rules = ", ".join(f"{rule} {n}" for rule, n in r.counts().items()) or "none"
        typer.echo(f"{section.title}: {len(r.matches)} matches ({rules}); unmatched {len(r.unmatched_lines)} "
                   f"statement entries, {len(r.unmatched_items)} items", err=True)
        unmatched += len(r.unmatched_lines) + len(r.unmatched_items)
    raise typer.Exit(1 if fail_on_unmatched and unmatched else 0)



def _formats_of(home: Path) -> Path | None:
    """A gateway home's folder of declared formats (`directlink adapters add`), if it has one. A folder that
    is not a home is said so here, before its statement is read in a format only the home would declare."""
    from gateway.settings import Settings
    if not (home / "directlink.toml").is_file():
        fail(f"--home {home} is not a gateway home (no directlink.toml)")
    folder = Settings.load(home).formats
    return folder if folder.is_dir() else None


def columns_file() -> Path:
    """Where the column mapping of XLSX files is kept between runs: the user's configuration folder."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "directlink" / "reconcile-columns.toml"


def saved_columns(given: Path | None) -> dict | None:
    """The column mapping: `given` (checked, then saved for the next runs), else the saved one, else None."""
    from reconcile.xlsx import load_columns
    saved = columns_file()
    if given is None:
        return load_columns(saved) if saved.exists() else None
    mapping = load_columns(given)
    saved.parent.mkdir(parents=True, exist_ok=True)
    tmp = saved.with_suffix(".tmp")
    tmp.write_bytes(given.read_bytes())
    os.replace(tmp, saved)
    return mapping
