"""One reconciliation run from files, as `directlink reconcile` does it (and as a library call).

The statement is compared with the ERP's open items and, when the caller gives the gateway's own payments
from that account, separately with those: two sections, so that a debit can be both "our payment P..." and
"supplier invoice 4711" without the two lists competing for it. Where those payments come from is the
caller's business (the command line reads them from a gateway home): reconcile/ never reads the server.

Statement files of several accounts: open items do not say which of the company's accounts will receive
or pay them, so every account's entries are matched against the open items in one run (an item is settled
once, whichever account it arrived on) and the result is shown one section per account, followed by one
section of the items no account settled. Gateway payments are per account: one section each.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from reconcile import open_items, statement_files
from reconcile.cascade import EXACT_RULES
from reconcile.matcher import reconcile
from reconcile.model import Match, OpenItem, Period, Report, Result, Section, Tolerances, lines_of

# (statement account, statement closing date) -> the payments made from that account up to that day
Payments = Callable[[str, dt.date], Sequence[OpenItem]]


def build_report(statements: Sequence[Path], items_file: Path, *, fmt: str | None = None,
                 tolerances: Tolerances = Tolerances(), payments: Payments | None = None,
                 encoding: str = "utf-8", account: str | None = None, lenient: bool = False,
                 columns: Mapping | None = None, formats: Path | None = None) -> Report:
    """Read, match and assemble; raises StatementFileInvalid / OpenItemsInvalid on bad input.

    `payments` is called only once the statement is read, since its account and closing date say which.
    `account` keeps one account of files that hold several; `lenient` reads files whose figures disagree
    and lists the inconsistencies at the top of the report; `columns` is the column mapping XLSX files are
    read through (reconcile/xlsx.py); `formats` a folder of declared mappings (docs/declared-formats.md) whose
    statement formats are read too."""
    read = statement_files.read_accounts(statements, fmt, account=account, lenient=lenient, columns=columns,
                                         formats=formats)
    items = open_items.load(items_file, encoding, columns)
    title = f"open items ({items_file.name})"
    lines = [line for st in read.statements for line in lines_of(st)]
    result = reconcile(lines, items, tolerances)
    several = len(read.statements) > 1
    sections = [Section(title, result, read.statements[0].account)] if not several else [
        *(Section(f"{st.account} {st.currency}: {title}", _of_account(result, st.account), st.account)
          for st in read.statements),
        Section(f"{title}: not settled on any account",
                Result((), (), result.unmatched_items, result.tolerances))]
    if payments is not None:
        for st in read.statements:
            ours = payments(st.account, st.closing_date)
            # The gateway's books and the bank's statement come from one ledger: only exact rules apply.
            sections.append(Section(f"{st.account} {st.currency}: gateway payments" if several else "gateway payments",
                                    reconcile(lines_of(st), ours, tolerances, EXACT_RULES), st.account))
    return Report(tuple(Period(st.account, st.currency, (st.opening_date, st.closing_date)) for st in read.statements),
                  tuple(p.name for p in statements), tuple(sections), read.inconsistencies)


def _of_account(result: Result, account: str) -> Result:
    """The part of a run over several accounts that is about `account`: the matches its entries are in (a
    match of entries of two accounts counts for the first entry's account), and its unmatched entries."""
    def ours(match: Match) -> bool:
        return match.lines[0].account == account
    return Result(tuple(m for m in result.matches if ours(m)),
                  tuple(x for x in result.unmatched_lines if x.account == account), (), result.tolerances)
