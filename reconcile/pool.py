"""What the matcher works on: the lines and items still unmatched, with the indexes (blocking keys) that
let each rule find its candidates without comparing every line with every item, and the matches so far.
The rules that take from it are in reconcile/cascade.py; reconcile/matcher.py runs them in order.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
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

