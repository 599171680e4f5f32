"""Reference text as the matching rules compare it.

Payers retype references: "INV-2026/0042", "inv 2026 0042" and "ＩＮＶ２０２６００４２" are one reference,
and MT940 turned "/" into "-" on the way. So references are compared normalised: NFKC (full-width forms
become ASCII), upper case, letters and digits only. Near misses ("INV20260024" for "INV20260042") are
measured as edits (insert, delete, replace, swap two neighbours) relative to the reference's length.
"""
from __future__ import annotations

import re
import unicodedata

MIN_LENGTH = 4                  # shorter references ("42", "A1") would be found in almost any text
_NOT_KEY = re.compile(r"[^0-9A-Z]+")
_WORD = re.compile(r"[^\s,;:/()|]+")


def norm(text: str | None) -> str:
    """The comparable form of a reference: NFKC, upper case, only letters and digits."""
    if not text:
        return ""
    return _NOT_KEY.sub("", unicodedata.normalize("NFKC", text).upper())


def tokens(text: str) -> list[str]:
    """The normalised words of a free text ("Invoice INV-2026/0042, thanks" -> INVOICE, INV20260042, THANKS)."""
    return [w for w in (norm(p) for p in _WORD.findall(unicodedata.normalize("NFKC", text or ""))) if w]


def words(text: str) -> list[str]:
    """tokens(), and each run of two and three neighbouring tokens joined, so that "INV 2026 0042" offers
    "INV20260042" too."""
    parts = tokens(text)
    out = list(parts)
    for size in (2, 3):
        out += ["".join(parts[i:i + size]) for i in range(len(parts) - size + 1)]
    return out


def _one_edit(a: str, b: str) -> int:
    """0 if equal, 1 if one insertion, deletion, replacement or swap of neighbours apart, else 2: linear time,
    for the common case of short references (under 14 characters one edit is all the threshold allows)."""
    if a == b:
        return 0
    if len(a) > len(b):
        a, b = b, a
    start = 0
    while start < len(a) and a[start] == b[start]:
        start += 1
    if len(a) == len(b):
        if a[start + 1:] == b[start + 1:]:
            return 1                                          # one replaced
        swapped = start + 1 < len(a) and a[start] == b[start + 1] and a[start + 1] == b[start]
        return 1 if swapped and a[start + 2:] == b[start + 2:] else 2
    return 1 if len(b) - len(a) == 1 and a[start:] == b[start + 1:] else 2


def edits(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance between a and b, or limit + 1 as soon as it must exceed `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    if limit <= 1:
        return min(_one_edit(a, b), limit + 1)
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        best = i
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, previous2[j - 2] + 1)
            current[j] = value
            best = min(best, value)
        if best > limit:
            return limit + 1
        previous2, previous = previous, current
    return min(previous[-1], limit + 1)


def by_length(candidates: list[str]) -> dict[int, list[str]]:
    """Words grouped by length (each once): similarity() then only looks at words that could be close."""
    grouped: dict[int, list[str]] = {}
    for word in dict.fromkeys(candidates):
        grouped.setdefault(len(word), []).append(word)
    return grouped


def similarity(reference: str, candidates: dict[int, list[str]], threshold: float) -> float:
    """The best similarity (1 - edits / length) of a normalised reference to any candidate word (grouped
    by_length); 0 when none reaches `threshold`. Only references of MIN_LENGTH or more take part."""
    if len(reference) < MIN_LENGTH:
        return 0.0
    limit = int(len(reference) * (1 - threshold) + 1e-9)
    fewest = limit + 1
    for length in range(len(reference) - limit, len(reference) + limit + 1):
        for word in candidates.get(length, ()):
            fewest = min(fewest, edits(reference, word, limit))
    score = 1 - fewest / len(reference)
    return score if fewest <= limit and score >= threshold else 0.0
