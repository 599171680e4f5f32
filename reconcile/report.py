"""One reconciliation run from files, as `directlink reconcile` does it (and as a library call).

The statement is compared with the ERP's open items and, when the caller gives the gateway's own payments
from that account, separately with those: two sections, so that a debit can be both "our payment P..." and
"supplier invoice 4711" without the two lists competing for it. Where those payments come from is the
caller's business (the command line reads them from a gateway home): reconcile/ never reads the server.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

from reconcile import open_items, statement_files
from reconcile.cascade import EXACT_RULES
from reconcile.matcher import reconcile
from reconcile.model import OpenItem, Report, Section, Tolerances, lines_of

# (statement account, statement closing date) -> the payments made from that account up to that day
Payments = Callable[[str, dt.date], Sequence[OpenItem]]


def build_report(statements: Sequence[Path], items_file: Path, *, fmt: str | None = None,
                 tolerances: Tolerances = Tolerances(), payments: Payments | None = None,
                 encoding: str = "utf-8") -> Report:
    """Read, match and assemble; raises StatementFileInvalid / OpenItemsInvalid on bad input.

    `payments` is called only once the statement is read, since its account and closing date say which."""
    statement = statement_files.read_all(statements, fmt)
    lines = lines_of(statement)
    items = open_items.load(items_file, encoding)
    sections = [Section(f"open items ({items_file.name})", reconcile(lines, items, tolerances))]
    if payments is not None:
        ours = payments(statement.account, statement.closing_date)
        # The gateway's books and the bank's statement come from one ledger: only exact rules apply.
        sections.append(Section("gateway payments", reconcile(lines, ours, tolerances, EXACT_RULES)))
    return Report(statement.account, statement.currency, (statement.opening_date, statement.closing_date),
                  tuple(p.name for p in statements), tuple(sections))
