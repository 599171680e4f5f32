"""The reconciliation report as one self-contained HTML page for treasury staff (no scripts, no external
files: it opens from a mail attachment or a shared drive). Every value from the files is escaped, payer
names above all, which come from outside the company."""
from __future__ import annotations

from html import escape

from reconcile.model import Report
from reconcile.report_data import section_dict

RULE_MEANING = {
    "reversal": "a payment and its return, both on the statement: they cancel out",
    "exact-reference": "the item's reference is one of the entry's references",
    "amount-date-account": "same amount and counterparty account, dates within the window",
    "reference-text": "the reference appears (or nearly) in the entry's text; amounts within the fee tolerance",
    "one-to-many": "one entry pays several items exactly",
    "many-to-one": "several entries pay one item exactly",
}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI","Microsoft YaHei",sans-serif;margin:2em;color:#222}
h1{font-size:1.5em}h2{font-size:1.25em;margin-top:2em;border-bottom:2px solid #446}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#eef}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.group td{border-top:2px solid #668}.rule{font-weight:600;white-space:nowrap}
.diff{color:#a40}.none{color:#777;font-style:italic}.small{font-size:.85em;color:#555}
.warning{border:2px solid #b30;background:#fff3f0;padding:.5em 1em;margin:1em 0}.warning h2{margin-top:0;border:0;color:#b30}
@media print{body{margin:0}h2{page-break-before:always}}
"""


def _cell(value: object, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<td{attr}>{escape(str(value))}</td>"


def _refs(side: dict) -> str:
    refs = [side.get("reference", ""), *side.get("other_references", []), side.get("end_to_end_id", ""),
            side.get("client_ref", ""), side.get("bank_ref", "")]
    return " ".join(dict.fromkeys(r for r in refs if r))


def _side_cells(side: dict) -> str:
    what = "statement " + side["key"] if side["side"] == "statement" else "item " + side["key"]
    return "".join([_cell(what), _cell(side["date"]), _cell(side["direction"]),
                    _cell(f'{side["amount"]} {side["currency"]}', "num"),
                    _cell(" ".join(x for x in (side["counterparty_name"], side["counterparty_account"]) if x)),
                    _cell(_refs(side)), _cell(side["text"])])


_SIDE_HEAD = "<th>entry / item</th><th>date</th><th>dir.</th><th>amount</th><th>counterparty</th>" \
             "<th>references</th><th>text</th>"


def _section(data: dict) -> list[str]:
    s, t = data["summary"], data["tolerances"]
    out = [f"<h2>{escape(data['title'])}</h2>",
           "<table><tr><th>matches</th><th>statement entries matched</th><th>items matched</th>"
           "<th>entries unmatched</th><th>items unmatched</th><th>differences (sum)</th></tr><tr>",
           _cell(s["matches"], "num"), _cell(s["matched_lines"], "num"), _cell(s["matched_items"], "num"),
           _cell(f'{s["unmatched_lines"]} ({s["unmatched_lines_total"]})', "num"),
           _cell(f'{s["unmatched_items"]} ({s["unmatched_items_total"]})', "num"),
           _cell(s["differences_total"], "num"), "</tr></table>",
           "<table><tr><th>rule</th><th>matches</th><th>what it means</th></tr>"]
    for rule, count in s["by_rule"].items():
        out.append(f"<tr>{_cell(rule, 'rule')}{_cell(count, 'num')}{_cell(RULE_MEANING.get(rule, ''))}</tr>")
    out.append("</table>")
    out.append(f'<p class="small">Tolerances: date window {t["date_window_days"]} day(s), fee '
               f'{escape(t["fee"])}, text similarity {t["similarity"]:.0%}, at most {t["max_group"]} in a group.</p>')
    out.append("<h3>Matched</h3>")
    if data["matches"]:
        out.append(f"<table><tr><th>#</th><th>rule</th>{_SIDE_HEAD}<th>difference</th><th>why</th></tr>")
        for m in data["matches"]:
            sides = [*m["lines"], *m["items"]]
            for i, side in enumerate(sides):
                if i == 0:
                    span = f' rowspan="{len(sides)}"'
                    diff_cls = "num diff" if m["difference"].strip("-0.") else "num"
                    out.append(f'<tr class="group"><td{span}>{m["group"]}</td>'
                               f'<td{span} class="rule">{escape(m["rule"])}</td>{_side_cells(side)}'
                               f'<td{span} class="{diff_cls}">{escape(m["difference"])}</td>'
                               f'<td{span}>{escape(m["note"])}</td></tr>')
                else:
                    out.append(f"<tr>{_side_cells(side)}</tr>")
        out.append("</table>")
    else:
        out.append('<p class="none">nothing matched</p>')
    for title, key in (("Statement entries without a match", "unmatched_lines"),
                       ("Items without a match", "unmatched_items")):
        out.append(f"<h3>{title}</h3>")
        if data[key]:
            out.append(f"<table><tr>{_SIDE_HEAD}</tr>")
            out += [f"<tr>{_side_cells(side)}</tr>" for side in data[key]]
            out.append("</table>")
        else:
            out.append('<p class="none">none</p>')
    return out


def _inconsistencies(notes: tuple[str, ...]) -> list[str]:
    """What --lenient read past, first on the page: the figures below rest on a file that disagrees with
    itself."""
    if not notes:
        return []
    return ['<div class="warning"><h2>The statement files are inconsistent</h2>',
            "<p>They were read with --lenient; check these before booking anything from this report:</p><ul>",
            *(f"<li>{escape(note)}</li>" for note in notes), "</ul></div>"]


def to_html(report: Report) -> bytes:
    title = f"Reconciliation {report.account} {report.currency} {report.period[0]} to {report.period[1]}"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             # No scripts, no external resources, ever: the page is for reading.
             "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
             f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{escape(title)}</h1>", *_inconsistencies(report.inconsistencies),
             f'<p class="small">Statement file(s): {escape(", ".join(report.statement_files))}</p>']
    if len(report.accounts) > 1:
        parts.append('<table><tr><th>account</th><th>currency</th><th>from</th><th>to</th></tr>')
        parts += [f"<tr>{_cell(p.account)}{_cell(p.currency)}{_cell(p.period[0])}{_cell(p.period[1])}</tr>"
                  for p in report.accounts]
        parts.append("</table>")
    for section in report.sections:
        parts += _section(section_dict(section))
    parts.append("</body></html>")
    return ("\n".join(parts) + "\n").encode("utf-8")
