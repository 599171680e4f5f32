"""The console's reconciliation (gateway/console/reconciling.Reconciler), made of reconcile's functions here in
the composition root, the one place allowed to import reconcile/ (docs/architecture.md, contract "root").

The uploaded bytes are read by the same readers as `directlink reconcile` (format by the first bytes; open
items by name or first bytes), from a private temporary folder. XLSX files (statement or open items) are read
through a column mapping, the same TOML `directlink reconcile --columns` takes (reconcile/xlsx.py). Decided pairs whose line and item are both
in these files are taken out first and reported with rule "confirmed" or "manual", who and why in the note;
the cascade matches the rest.
"""
from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from gateway.console.reconciling import Decided, Upload
from reconcile import open_items, statement_files
from reconcile.matcher import reconcile
from reconcile.model import DBIT, Match, Result, Section, lines_of
from reconcile.pool import signed
from reconcile.report_data import section_dict
from reconcile.xlsx import ColumnsInvalid, load_columns


def _saved(folder: str, upload: Upload, fallback: str) -> Path:
    # Only the suffix of the name the browser sent (it picks the open-items reader); never a path.
    suffix = "".join(re.findall(r"\.[A-Za-z0-9]{1,5}$", upload.name))
    path = Path(folder) / f"{fallback}{suffix.lower()}"
    path.write_bytes(upload.data)
    return path


def _totals(values) -> dict:
    debits = [v.amount.amount for v in values if v.direction == DBIT]
    credits = [v.amount.amount for v in values if v.direction != DBIT]
    return {"debits": format(sum(debits, Decimal(0)), "f"), "debit_count": len(debits),
            "credits": format(sum(credits, Decimal(0)), "f"), "credit_count": len(credits)}


def _mapping(folder: str, columns: Upload | None) -> dict | None:
    if columns is None:
        return None
    path = _saved(folder, columns, "columns")
    try:
        return load_columns(path)
    except ColumnsInvalid as err:      # its message names the file: the name the person gave, not ours
        raise ValueError(str(err).replace(str(path), columns.name or "column mapping")) from None


def reconcile_uploads(statement: Upload, items: Upload, decided: Sequence[Decided],
                      columns: Upload | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="directlink-recon-") as folder:
        mapping = _mapping(folder, columns)
        try:
            read = statement_files.read_accounts([_saved(folder, statement, "statement")], columns=mapping)
        except (statement_files.StatementFileInvalid, ValueError) as err:
            raise ValueError(f"{statement.name}: {err}".replace(" --columns FILE", " a column mapping")) from None
        try:
            expected = open_items.load(_saved(folder, items, "open-items"), columns=mapping)
        except ValueError as err:
            raise ValueError(f"{items.name}: {err}".replace(" --columns FILE", " a column mapping")) from None
    lines = {line.label: line for st in read.statements for line in lines_of(st)}
    by_id = {item.id: item for item in expected}
    totals = {"statement": _totals(lines.values()), "items": _totals(by_id.values())}
    kept = []
    for d in decided:
        if d.line_key in lines and d.item_key in by_id:
            line, item = lines.pop(d.line_key), by_id.pop(d.item_key)
            difference = signed(line.amount.amount, line.direction) - signed(item.amount.amount, item.direction)
            kept.append(Match(d.kind, (line,), (item,), difference, f"{d.operator}: {d.reason}"))
    result = reconcile(lines.values(), by_id.values())
    result = Result((*kept, *result.matches), result.unmatched_lines, result.unmatched_items, result.tolerances)
    data = section_dict(Section(f"open items ({items.name})", result))
    return {**data, "accounts": [st.account for st in read.statements], "totals": totals,
            "inconsistencies": list(read.inconsistencies)}
