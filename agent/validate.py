"""`directlink agent --validate FILE`: read an ERP payment file the way the gateway will, here and now,
without sending it: the file's own faults (format rules, control sums, duplicate references, too many
transactions), each payment's problem, and what the valid ones add up to. What only the gateway knows (grants,
limits, funds, fund-flow rules) needs a dry run: `directlink send --dry-run` or a DocumentSubmit with
dryRun="true"."""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from adapters import registry
from adapters.base import DocumentInvalid, check_payment_file
from domain.errors import DirectLinkError


def validate(path: Path, fmt: str) -> tuple[bool, list[str]]:
    """(whether the gateway would read every payment of the file, the lines that say what was found)."""
    name = path.name
    try:
        reader, limits = registry.payment_reader(fmt)
    except DirectLinkError as err:
        return False, [f"{name}: {err.detail}"]
    try:
        payment_file = reader(path.read_bytes())
        check_payment_file(payment_file, fmt, limits)
    except DocumentInvalid as err:
        return False, [f"{name}: refused as a whole ({fmt}): {err.where}: {err.detail}"]
    except DirectLinkError as err:
        return False, [f"{name}: refused as a whole ({fmt}): {err.code}: {err.detail}"]
    totals: dict[str, Decimal] = defaultdict(Decimal)
    lines, bad = [], 0
    for t in payment_file.transactions:
        if t.instruction is None:
            bad += 1
            problem = t.problem
            lines.append(f"  {t.where or t.client_ref}: {t.client_ref}: "
                         + (f"{problem.reason}: {problem.detail}" if problem else "unreadable"))
        else:
            totals[t.instruction.amount.currency] += t.instruction.amount.amount
    summed = ", ".join(f"{currency} {amount}" for currency, amount in sorted(totals.items())) or "nothing"
    good = len(payment_file.transactions) - bad
    head = (f"{name}: {fmt}, batch {payment_file.message_id}: {good} payment(s) readable ({summed})"
            + (f", {bad} refused:" if bad else ""))
    return bad == 0, [head, *lines]
