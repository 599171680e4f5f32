"""A reconciliation report as JSON, CSV or HTML (reconcile/html_report.py): pure functions, bytes out.

All three say the same (reconcile/report_data.py builds what they say): per section (the statement against open items, against gateway payments), the
tolerances used, a summary, each match with its rule, note and difference, and both unmatched lists.
Amounts are decimal text, never floats. CSV is one row per line or item of a match (sharing a group
number) and one per unmatched line or item; text cells that a spreadsheet would run as a formula
(starting with = + - @ or a tab) get a leading apostrophe, since payer names come from outside.
"""
from __future__ import annotations

import csv
import io
import json

from reconcile.html_report import to_html
from reconcile.model import Report
from reconcile.report_data import section_dict

FORMATS = ("json", "csv", "html")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def to_json(report: Report) -> bytes:
    doc = {"account": report.account, "currency": report.currency,
           "period": {"from": report.period[0].isoformat(), "to": report.period[1].isoformat()},
           "statement_files": list(report.statement_files),
           "sections": [section_dict(s) for s in report.sections]}
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


CSV_COLUMNS = ("section", "status", "group", "rule", "side", "key", "date", "direction", "amount", "currency",
               "counterparty_account", "counterparty_name", "references", "text", "difference", "note")


def _safe(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA) else value


def _csv_row(section: str, status: str, group: str, rule: str, side: dict, difference: str, note: str) -> list[str]:
    refs = [side.get("reference", ""), *side.get("other_references", []), side.get("end_to_end_id", ""),
            side.get("client_ref", ""), side.get("bank_ref", "")]
    return [_safe(section), status, group, rule, side["side"], _safe(side["key"]), side["date"], side["direction"],
            side["amount"], side["currency"], _safe(side["counterparty_account"]), _safe(side["counterparty_name"]),
            _safe(" ".join(dict.fromkeys(r for r in refs if r))), _safe(side["text"]), difference, _safe(note)]


def to_csv(report: Report) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for section in report.sections:
        data = section_dict(section)
        for m in data["matches"]:
            for side in (*m["lines"], *m["items"]):
                writer.writerow(_csv_row(section.title, "matched", str(m["group"]), m["rule"], side,
                                         m["difference"], m["note"]))
        for side in (*data["unmatched_lines"], *data["unmatched_items"]):
            writer.writerow(_csv_row(section.title, "unmatched", "", "", side, "", ""))
    # UTF-8 with a byte-order mark: Excel then shows Chinese names instead of mojibake.
    return "\ufeff".encode("utf-8") + out.getvalue().encode("utf-8")


def render(report: Report, fmt: str) -> bytes:
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "html":
        return to_html(report)
    raise ValueError(f"unknown report format {fmt!r} ({', '.join(FORMATS)})")
