"""A reconciliation report as JSON, CSV or HTML (reconcile/html_report.py): pure functions, bytes out.

All three say the same (reconcile/report_data.py builds what they say): first the inconsistencies of files
read with --lenient, then per section (the statement of an account against open items, against gateway payments), the
tolerances used, a summary, each match with its rule, note and difference, and both unmatched lists.
Amounts are decimal text, never floats. CSV is one row per line or item of a match (sharing a group
number) and one per unmatched line or item, written by adapters/spreadsheet.py, the project's one CSV
writer, which keeps a spreadsheet from running a payer name from outside as a formula.
"""
from __future__ import annotations

import json

from adapters.spreadsheet import csv_bytes
from reconcile.html_report import to_html
from reconcile.model import Report
from reconcile.report_data import section_dict

FORMATS = ("json", "csv", "html")


def to_json(report: Report) -> bytes:
    # "inconsistencies" first: what a reader must know before trusting anything below it (--lenient).
    doc = {"inconsistencies": list(report.inconsistencies),
           "account": report.account, "currency": report.currency,
           "period": {"from": report.period[0].isoformat(), "to": report.period[1].isoformat()},
           "accounts": [{"account": p.account, "currency": p.currency,
                         "period": {"from": p.period[0].isoformat(), "to": p.period[1].isoformat()}}
                        for p in report.accounts],
           "statement_files": list(report.statement_files),
           "sections": [{"account": s.account, **section_dict(s)} for s in report.sections]}
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


CSV_COLUMNS = ("section", "status", "group", "rule", "side", "key", "date", "direction", "amount", "currency",
               "counterparty_account", "counterparty_name", "references", "text", "difference", "note")


def _csv_row(section: str, status: str, group: str, rule: str, side: dict, difference: str, note: str) -> list[str]:
    refs = [side.get("reference", ""), *side.get("other_references", []), side.get("end_to_end_id", ""),
            side.get("client_ref", ""), side.get("bank_ref", "")]
    return [section, status, group, rule, side["side"], side["key"], side["date"], side["direction"],
            side["amount"], side["currency"], side["counterparty_account"], side["counterparty_name"],
            " ".join(dict.fromkeys(r for r in refs if r)), side["text"], difference, note]


def to_csv(report: Report) -> bytes:
    rows = [list(CSV_COLUMNS)]
    # Inconsistencies (--lenient) come first, one row each, the message in the text column.
    rows += [["statement files", "inconsistent", "", "", "", "", "", "", "", "", "", "", "", note, "", ""]
             for note in report.inconsistencies]
    for section in report.sections:
        data = section_dict(section)
        for m in data["matches"]:
            rows += [_csv_row(section.title, "matched", str(m["group"]), m["rule"], side, m["difference"], m["note"])
                     for side in (*m["lines"], *m["items"])]
        rows += [_csv_row(section.title, "unmatched", "", "", side, "", "")
                 for side in (*data["unmatched_lines"], *data["unmatched_items"])]
    return csv_bytes(rows, excel_bom=True)


def render(report: Report, fmt: str) -> bytes:
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "html":
        return to_html(report)
    raise ValueError(f"unknown report format {fmt!r} ({', '.join(FORMATS)})")
