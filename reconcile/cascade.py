"""The matching rules, strictest first (docs/reconciliation.md explains each to treasury staff).

    reversal              a returned payment and its return, both on the statement: they cancel out
    exact-reference       an item's reference IS one of the line's references (EndToEndId, ClientRef,
                          BankRef, or a word of the remittance text), same amount
    amount-date-account   same amount, same counterparty account, value date within the date window
    reference-text        the reference is contained in the line's text, or nearly (a typo), and the
                          amounts differ by at most the fee tolerance
    one-to-many           one line pays several items of one counterparty (or items it names): exact sum
    many-to-one           several lines pay one item (partial payments): exact sum

Every rule requires the same direction (money in against receipts, money out against payments) and the
same currency. Rules visit lines (items, for many-to-one) in key order and break every tie the same
way, so results do not depend on input order.
"""
from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

from reconcile import text
from reconcile.model import OpenItem, StatementLine
from reconcile.pool import Pool, account_key

_NODE_BUDGET = 200_000                     # subset search: give up (no match) rather than stall


def _same_kind(line: StatementLine, item: OpenItem) -> bool:
    return line.direction == item.direction and line.amount.currency == item.amount.currency


def reversal(pool: Pool) -> None:
    """A reversal line and the line it reverses: same amount, opposite direction, the same reference
    (the return's BankRef is "R" + the payment's, or they share a ClientRef/EndToEndId)."""
    by_ref: dict[str, list[StatementLine]] = {}
    for line in pool.lines:
        if not line.reversal:
            for ref in dict.fromkeys(text.norm(r) for r in line.references):
                by_ref.setdefault(ref, []).append(line)
    for back in pool.lines:
        if not back.reversal or back.key not in pool.open_lines:
            continue
        refs = [text.norm(back.bank_ref)[1:]] if text.norm(back.bank_ref).startswith("R") else []
        refs += [text.norm(r) for r in (back.end_to_end_id, back.client_ref) if r]
        for ref in refs:
            original = next((o for o in by_ref.get(ref, ()) if o.key in pool.open_lines and o.account == back.account
                             and o.direction != back.direction and o.amount == back.amount
                             and o.entry_id < back.entry_id), None)
            if original is not None:
                pool.take("reversal", [original, back], [], f"{original.bank_ref} came back as {back.bank_ref}")
                break


def exact_reference(pool: Pool) -> None:
    for line in pool.lines:
        if line.key not in pool.open_lines:
            continue
        fields = [(name, ref) for name, ref in (("EndToEndId", line.end_to_end_id), ("ClientRef", line.client_ref),
                                                ("BankRef", line.bank_ref)) if ref]
        fields += [("remittance text", w) for w in text.tokens(line.narrative) if len(w) >= text.MIN_LENGTH]
        for name, ref in fields:
            found = next((i for i in pool.items_by_ref.get(text.norm(ref), ()) if i.key in pool.open_items
                          and _same_kind(line, i) and i.amount == line.amount), None)
            if found is not None:
                pool.take("exact-reference", [line], [found], f"{name} {ref} is {found.id}")
                break


def amount_date_account(pool: Pool) -> None:
    window = pool.tolerances.date_window_days
    for line in pool.lines:
        if line.key not in pool.open_lines or not line.counterparty_account:
            continue
        account = account_key(line.counterparty_account)
        candidates = [i for i in pool.items_by_amount.get((line.direction, line.amount.currency,
                                                            line.amount.amount), ())
                      if i.key in pool.open_items and account_key(i.counterparty_account) == account
                      and abs((line.value_date - i.due_date).days) <= window]
        if candidates:
            best = min(candidates, key=lambda i: (abs((line.value_date - i.due_date).days), i.key))
            days = (line.value_date - best.due_date).days
            when = "on the due date" if days == 0 else f"{abs(days)} day(s) {'after' if days > 0 else 'before'} due"
            pool.take("amount-date-account", [line], [best], f"same amount and account, {when}")


class _ByAmount:
    """Open items of one direction and currency sorted by amount: the fee window is a bisect away."""

    def __init__(self, pool: Pool):
        self.groups: dict[tuple, tuple[list, list[OpenItem]]] = {}
        for item in sorted(pool.items, key=lambda i: (i.amount.amount, i.key)):
            amounts, items = self.groups.setdefault((item.direction, item.amount.currency), ([], []))
            amounts.append(item.amount.amount)
            items.append(item)

    def near(self, line: StatementLine, fee, limit: int) -> list[OpenItem]:
        amounts, items = self.groups.get((line.direction, line.amount.currency), ([], []))
        low = bisect.bisect_left(amounts, line.amount.amount - fee)
        high = bisect.bisect_right(amounts, line.amount.amount + fee)
        window = items[low:high]
        if len(window) > limit:     # a crowded window: the nearest amounts only (deterministic order)
            window = sorted(window, key=lambda i: (abs(i.amount.amount - line.amount.amount), i.key))[:limit]
        return window


def reference_text(pool: Pool) -> None:
    tol = pool.tolerances
    by_amount = _ByAmount(pool)
    for line in pool.lines:
        if line.key not in pool.open_lines:
            continue
        haystack, words = pool.line_text[line.key], pool.line_words_by_length[line.key]
        scored = []
        for item in by_amount.near(line, tol.fee, 4 * tol.max_candidates):
            if item.key not in pool.open_items:
                continue
            for ref, key in pool.item_keys[item.key]:
                if len(key) < text.MIN_LENGTH:
                    continue
                score = 1.0 if key in haystack else text.similarity(key, words, tol.similarity)
                if score:
                    scored.append((-score, abs(item.amount.amount - line.amount.amount), item.key, item, ref))
                    break
        if scored:
            score, gap, _, item, ref = min(scored)
            how = "found in the text" if score == -1.0 else f"nearly in the text ({-score:.0%} alike)"
            fee = f"; {gap} {line.amount.currency} apart" if gap else ""
            pool.take("reference-text", [line], [item], f"reference {ref} {how}{fee}")


def _subset(candidates: Sequence, amount: Callable, target, max_size: int) -> tuple | None:
    """The first (fewest members, then in candidate order by amount) subset of 2..max_size candidates whose
    amounts sum exactly to target; depth-first with bounds, within a node budget."""
    ordered = sorted(candidates, key=lambda c: (amount(c), c.key))
    values = [amount(c) for c in ordered]
    suffix_top = [0] * (len(values) + 1)            # suffix_top[r]: sum of the r largest values
    for r in range(1, len(values) + 1):
        suffix_top[r] = suffix_top[r - 1] + values[-r]
    budget = [_NODE_BUDGET]

    def search(start: int, size: int, total, chosen: list[int]) -> list[int] | None:
        if size == 0:
            return chosen if total == target else None
        for i in range(start, len(values) - size + 1):
            budget[0] -= 1
            if budget[0] < 0 or total + values[i] * size > target:
                return None                       # ascending: everything further is too big as well
            if total + values[i] + suffix_top[size - 1] < target and size > 1:
                continue                          # even with the largest rest, too small
            found = search(i + 1, size - 1, total + values[i], [*chosen, i])
            if found is not None:
                return found
        return None

    for size in range(2, min(max_size, len(values)) + 1):
        if suffix_top[size] < target:
            continue
        found = search(0, size, 0, [])
        if found is not None:
            return tuple(ordered[i] for i in found)
    return None


def one_to_many(pool: Pool) -> None:
    tol = pool.tolerances
    for line in pool.lines:
        if line.key not in pool.open_lines or line.reversal:
            continue
        words = [w for w in pool.line_words[line.key] if len(w) >= text.MIN_LENGTH]
        named = {i.key: i for w in words for i in pool.items_by_ref.get(w, ())}
        if line.counterparty_account:
            same_party = pool.items_by_account.get((line.direction, line.amount.currency,
                                                    account_key(line.counterparty_account)), ())
        else:
            same_party = ()
        found = None
        for group, why in ((list(named.values()), "items named in the text"), (same_party, "same counterparty")):
            candidates = sorted((i for i in group if i.key in pool.open_items and _same_kind(line, i)
                                 and i.amount.amount < line.amount.amount),
                                key=lambda i: (i.due_date, i.key))[:tol.max_candidates]
            found = _subset(candidates, lambda i: i.amount.amount, line.amount.amount, tol.max_group)
            if found:
                pool.take("one-to-many", [line], found, f"{len(found)} items add up exactly ({why})")
                break


def many_to_one(pool: Pool) -> None:
    tol = pool.tolerances
    for item in pool.items:
        if item.key not in pool.open_items:
            continue
        named = pool.lines_by_word.get(text.norm(item.reference), ()) if len(text.norm(item.reference)) >= \
            text.MIN_LENGTH else ()
        same_party = pool.lines_by_account.get((item.direction, item.amount.currency,
                                                account_key(item.counterparty_account)), ()) \
            if item.counterparty_account else ()
        for group, why in ((named, "lines naming the item"), (same_party, "same counterparty")):
            candidates = sorted((line for line in group if line.key in pool.open_lines and not line.reversal
                                 and _same_kind(line, item) and line.amount.amount < item.amount.amount),
                                key=lambda line: (line.value_date, line.key))[:tol.max_candidates]
            found = _subset(candidates, lambda line: line.amount.amount, item.amount.amount, tol.max_group)
            if found:
                pool.take("many-to-one", found, [item], f"{len(found)} lines add up exactly ({why})")
                break


CASCADE: dict[str, Callable[[Pool], None]] = {
    "reversal": reversal,
    "exact-reference": exact_reference,
    "amount-date-account": amount_date_account,
    "reference-text": reference_text,
    "one-to-many": one_to_many,
    "many-to-one": many_to_one,
}
EXACT_RULES = ("reversal", "exact-reference")
