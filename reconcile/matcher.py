"""The matcher: a cascade of named rules (reconcile/cascade.py), run in order over what is still unmatched.

Each rule takes what it can prove and removes it from the pool, so a later, looser rule never sees what a
stricter one has settled, and nothing is matched twice. Lines and items are visited in key order and
every choice between candidates has a total tie-break, so the same inputs in any order give the same
result. The pool's indexes (reconcile/pool.py) are the blocking keys that keep a month (20,000 lines against
20,000 items) at a few seconds: no rule compares every line with every item.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from reconcile.cascade import CASCADE
from reconcile.model import OpenItem, Result, StatementLine, Tolerances
from reconcile.pool import Pool


def reconcile(lines: Iterable[StatementLine], items: Iterable[OpenItem], tolerances: Tolerances = Tolerances(),
              rules: Sequence[str] | None = None) -> Result:
    """Match statement lines against open items with the named rules (default: all, in cascade order)."""
    names = list(CASCADE) if rules is None else list(rules)
    unknown = [n for n in names if n not in CASCADE]
    if unknown:
        raise ValueError(f"unknown rule(s) {', '.join(unknown)}; the rules are {', '.join(CASCADE)}")
    pool = Pool(lines, items, tolerances)
    for name in CASCADE:                 # always in cascade order, whatever order they were named in
        if name in names:
            CASCADE[name](pool)
    return pool.result()
