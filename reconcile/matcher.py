"""The matcher: a cascade of named rules (reconcile/rules.py), run in order over what is still unmatched.

Each rule takes what it can prove and removes it from the pool, so a later, looser rule never sees what a
stricter one has settled, and nothing is matched twice. Lines and items are visited in key order and
every choice between candidates has a total tie-break, so the same inputs in any order give the same
result. The indexes below are the blocking keys that keep a month (20,000 lines against 20,000 items)
at a few seconds: no rule compares every line with every item.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from reconcile import text
from reconcile.model import CRDT, Match, OpenItem, Result, StatementLine, Tolerances


def signed(amount: Decimal, direction: str) -> Decimal:
    return amount if direction == CRDT else -amount


def account_key(number: str) -> str:
    return text.norm(number)


class Pool:
    """What is still unmatched, with indexes over both sides, and the matches made so far."""

    def __init__(self, lines: Iterable[StatementLine], items: Iterable[OpenItem], tolerances: Tolerances):
        self.tolerances = tolerances
        self.lines = sorted(lines, key=lambda line: line.key)
        self.items = sorted(items, key=lambda item: item.key)
        for kind, keys in (("statement line", [line.key for line in self.lines]),
                           ("open item", [item.key for item in self.items])):
            repeated = sorted({k for k, n in _count(keys).items() if n > 1})
            if repeated:
                raise ValueError(f"{kind} {repeated[0]} appears twice: each may be matched once only")
        self.open_lines = {line.key for line in self.lines}
        self.open_items = {item.key for item in self.items}
        self.matches: list[Match] = []
        self.line_words = {line.key: self._words(line) for line in self.lines}
        self.line_words_by_length = {key: text.by_length(words) for key, words in self.line_words.items()}
        self.item_keys = {item.key: [(ref, text.norm(ref)) for ref in item.references] for item in self.items}
        self.line_text = {line.key: "".join(text.norm(t) for t in (line.narrative, *line.references))
                          for line in self.lines}
        self.items_by_ref: dict[str, list[OpenItem]] = defaultdict(list)
        self.items_by_amount: dict[tuple, list[OpenItem]] = defaultdict(list)
        self.items_by_account: dict[tuple, list[OpenItem]] = defaultdict(list)
        for item in self.items:
            for ref in dict.fromkeys(text.norm(r) for r in item.references):
                if ref:
                    self.items_by_ref[ref].append(item)
            self.items_by_amount[(item.direction, item.amount.currency, item.amount.amount)].append(item)
            if item.counterparty_account:
                self.items_by_account[(item.direction, item.amount.currency,
                                       account_key(item.counterparty_account))].append(item)
        self.lines_by_account: dict[tuple, list[StatementLine]] = defaultdict(list)
        self.lines_by_word: dict[str, list[StatementLine]] = defaultdict(list)
        for line in self.lines:
            if line.counterparty_account:
                self.lines_by_account[(line.direction, line.amount.currency,
                                       account_key(line.counterparty_account))].append(line)
            for word in dict.fromkeys(self.line_words[line.key]):
                if len(word) >= text.MIN_LENGTH:
                    self.lines_by_word[word].append(line)

    @staticmethod
    def _words(line: StatementLine) -> list[str]:
        return [*(text.norm(r) for r in line.references), *text.words(line.narrative)]

    def take(self, rule: str, lines: Sequence[StatementLine], items: Sequence[OpenItem], note: str = "") -> Match:
        """Record a match and remove its lines and items from the pool."""
        lines = tuple(sorted(lines, key=lambda line: line.key))
        items = tuple(sorted(items, key=lambda item: item.key))
        for line in lines:
            self.open_lines.remove(line.key)
        for item in items:
            self.open_items.remove(item.key)
        difference = sum((signed(x.amount.amount, x.direction) for x in lines), Decimal(0)) - \
            sum((signed(x.amount.amount, x.direction) for x in items), Decimal(0))
        match = Match(rule, lines, items, difference, note)
        self.matches.append(match)
        return match

    def unmatched_lines(self) -> list[StatementLine]:
        return [line for line in self.lines if line.key in self.open_lines]

    def unmatched_items(self) -> list[OpenItem]:
        return [item for item in self.items if item.key in self.open_items]

    def result(self) -> Result:
        # In statement order: every match has at least one line, and no line is in two matches.
        matches = sorted(self.matches, key=lambda m: m.lines[0].key)
        return Result(tuple(matches), tuple(self.unmatched_lines()), tuple(self.unmatched_items()),
                      self.tolerances)


def _count(keys: Iterable) -> dict:
    counts: dict = defaultdict(int)
    for k in keys:
        counts[k] += 1
    return counts


Rule = Callable[[Pool], None]


def reconcile(lines: Iterable[StatementLine], items: Iterable[OpenItem], tolerances: Tolerances = Tolerances(),
              rules: Sequence[str] | None = None) -> Result:
    """Match statement lines against open items with the named rules (default: all, in cascade order)."""
    from reconcile.rules import CASCADE
    names = list(CASCADE) if rules is None else list(rules)
    unknown = [n for n in names if n not in CASCADE]
    if unknown:
        raise ValueError(f"unknown rule(s) {', '.join(unknown)}; the rules are {', '.join(CASCADE)}")
    pool = Pool(lines, items, tolerances)
    for name in CASCADE:                 # always in cascade order, whatever order they were named in
        if name in names:
            CASCADE[name](pool)
    return pool.result()
