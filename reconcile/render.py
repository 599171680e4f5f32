"""A reconciliation report as JSON, CSV or HTML (reconcile/html_report.py): pure functions, bytes out.

All three say the same: per section (the statement against open items, against gateway payments), the
tolerances used, a summary, each match with its rule, note and difference, and both unmatched lists.
Amounts are decimal text, never floats. CSV is one row per line or item of a match (sharing a group
number) and one per unmatched line or item; text cells that a spreadsheet would run as a formula
(starting with = + - @ or a tab) get a leading apostrophe, since payer names come from outside.
"""
from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

from reconcile.model import Match, OpenItem, Report, Result, Section, StatementLine

FORMATS = ("json", "csv", "html")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def line_dict(line: StatementLine) -> dict:
    return {"side": "statement", "key": line.label, "entry_id": line.entry_id, "date": line.value_date.isoformat(),
            "direction": line.direction, "amount": line.amount.text(), "currency": line.amount.currency,
            "counterparty_account": line.counterparty_account, "counterparty_name": line.counterparty_name,
            "bank_ref": line.bank_ref, "client_ref": line.client_ref or "", "end_to_end_id": line.end_to_end_id or "",
            "text": line.narrative, "reversal": line.reversal}


def item_dict(item: OpenItem) -> dict:
    return {"side": "item", "key": item.id, "reference": item.reference,
            "other_references": list(item.other_references), "date": item.due_date.isoformat(),
            "direction": item.direction, "amount": item.amount.text(), "currency": item.amount.currency,
            "counterparty_account": item.counterparty_account, "counterparty_name": item.counterparty_name,
            "text": item.text}


def match_dict(n: int, m: Match) -> dict:
    return {"group": n, "rule": m.rule, "note": m.note, "difference": format(m.difference, "f"),
            "lines": [line_dict(x) for x in m.lines], "items": [item_dict(x) for x in m.items]}


def summary(result: Result) -> dict:
    def total(values) -> str:
        return format(sum((v.amount.amount for v in values), Decimal(0)), "f")
    lines = [x for m in result.matches for x in m.lines]
    items = [x for m in result.matches for x in m.items]
    return {"matches": len(result.matches), "by_rule": result.counts(),
            "matched_lines": len(lines), "matched_items": len(items),
            "unmatched_lines": len(result.unmatched_lines), "unmatched_items": len(result.unmatched_items),
            "unmatched_lines_total": total(result.unmatched_lines),
            "unmatched_items_total": total(result.unmatched_items),
            "differences_total": format(sum((m.difference for m in result.matches), Decimal(0)), "f")}


def tolerances(result: Result) -> dict:
    t = result.tolerances
    return {"date_window_days": t.date_window_days, "fee": format(t.fee, "f"), "similarity": t.similarity,
            "max_group": t.max_group}


def section_dict(section: Section) -> dict:
    r = section.result
    return {"title": section.title, "tolerances": tolerances(r), "summary": summary(r),
            "matches": [match_dict(n, m) for n, m in enumerate(r.matches, start=1)],
            "unmatched_lines": [line_dict(x) for x in r.unmatched_lines],
            "unmatched_items": [item_dict(x) for x in r.unmatched_items]}


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
        from reconcile.html_report import to_html
        return to_html(report)
    raise ValueError(f"unknown report format {fmt!r} ({', '.join(FORMATS)})")
