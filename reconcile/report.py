"""One reconciliation run from files, as `directlink reconcile` does it (and as a library call).

The statement is compared with the ERP's open items and, when a gateway home is given, separately with
the gateway's own payments from that account: two sections, so that a debit can be both "our payment
P..." and "supplier invoice 4711" without the two lists competing for it.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reconcile import gateway_payments, open_items, statement_files
from reconcile.matcher import reconcile
from reconcile.model import Report, Section, Tolerances, lines_of
from reconcile.cascade import EXACT_RULES


def build_report(statements: Sequence[Path], items_file: Path, *, fmt: str | None = None,
                 tolerances: Tolerances = Tolerances(), home: Path | None = None,
                 encoding: str = "utf-8") -> Report:
    """Read, match and assemble; raises StatementFileInvalid / OpenItemsInvalid on bad input."""
    statement = statement_files.read_all(statements, fmt)
    lines = lines_of(statement)
    items = open_items.load(items_file, encoding)
    sections = [Section(f"open items ({items_file.name})", reconcile(lines, items, tolerances))]
    if home is not None:
        payments = gateway_payments.load(home, statement.account, until=statement.closing_date)
        # The gateway's books and the bank's statement come from one ledger: only exact rules apply.
        sections.append(Section("gateway payments", reconcile(lines, payments, tolerances, EXACT_RULES)))
    return Report(statement.account, statement.currency, (statement.opening_date, statement.closing_date),
                  tuple(p.name for p in statements), tuple(sections))
