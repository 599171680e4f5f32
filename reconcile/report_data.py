"""A reconciliation report as plain data: what the JSON, CSV and HTML forms (reconcile/render.py,
reconcile/html_report.py) all say, built once here so that they cannot disagree. Amounts are decimal text.
"""
from __future__ import annotations

from decimal import Decimal

from reconcile.model import Match, OpenItem, Result, Section, StatementLine


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
