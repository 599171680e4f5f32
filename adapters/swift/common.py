"""What the text statement writers share (MT940 here, BAI2 in adapters/bai): folding Unicode into a
format's small character set, money as integer minor units, the booking day, and the balance check.

Both formats are far older than Unicode. Names and narratives in this gateway are Unicode and often
Chinese, so every text value is folded into the target set, one character at a time:

1. NFKC first: full-width forms and ideographic spaces (Ａ１（） and U+3000) become their ASCII twins.
2. A character in the target set stays as it is.
3. Latin letters lose their accents (é -> e, Ł -> L, ß -> ss): the reader still recognises the name.
4. Punctuation with an obvious stand-in gets it (& -> +, _ -> -, 。-> ., 、-> ,, quotes -> ').
5. Chinese characters (Han) are spelled in toneless pinyin, a capitalised syllable each, separated by
   spaces ("上海某某科技有限公司" -> "Shang Hai Mou Mou Ke Ji You Xian Gong Si"), with the dictionary of
   pypinyin that the name keys use (domain/names.py): a clerk recognises the payee, and reconciliation's
   name rules compare Chinese and pinyin alike. ERPs that need the Chinese names take camt.053 or the
   DirectLink statement, both UTF-8.
6. Anything else (kana, emoji, ...) is REPLACED: each run of such characters (spaces inside the run
   included) becomes one "." (so "カナ Ltd" -> ". Ltd"). Account numbers and references, which ERPs match
   on, are ASCII already.

Whitespace runs collapse to one space: both formats wrap long texts over lines, and readers re-join the
lines with at most one space (or none), so a run of blanks could not survive anyway.
"""
from __future__ import annotations

import datetime as dt
import re
import string
import unicodedata
from decimal import Decimal
from functools import cache

from domain.models import Statement, StatementEntry
from domain.money import Money, minor_units
from domain.names import in_pinyin

# SWIFT "x" character set (FIN user handbook): letters, digits, / - ? : ( ) . , ' + and space.
SWIFT_X = frozenset(string.ascii_letters + string.digits + "/-?:().,'+ ")
PRINTABLE_ASCII = frozenset(chr(c) for c in range(0x20, 0x7F))
FILLER = "."

_LETTERS = {"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D",
            "ł": "l", "Ł": "L", "þ": "th", "Þ": "Th", "ı": "i"}
# Each stand-in is used only when the character itself is outside the target set and the stand-in is inside.
_STAND_INS = {"&": "+", "_": "-", '"': "'", "`": "'", "‘": "'", "’": "'", "“": "'", "”": "'", "「": "'",
              "」": "'", "『": "'", "』": "'", ";": ",", "!": ".", "?": ".", "*": ".", "。": ".", "、": ",",
              "·": ".", "•": ".", "[": "(", "]": ")", "{": "(", "}": ")", "<": "(", ">": ")", "《": "(",
              "》": ")", "【": "(", "】": ")", "〈": "(", "〉": ")", "=": "-", "|": "-", "\\": "-", "~": "-",
              "–": "-", "—": "-", "―": "-", "/": "-", ",": ".", "#": "-", "%": "-", "@": "-", "$": "-"}
_GAP = "\0"                                # marks an unrepresentable character until runs are merged
_GAP_RUN = re.compile("\0(?:[ \0]*\0)?")


def _fold_char(ch: str, allowed: frozenset[str]) -> str:
    if ch in allowed:
        return ch
    if ch.isspace():
        return " "
    for candidate in (_LETTERS.get(ch),
                      "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)),
                      _STAND_INS.get(ch)):
        if candidate and all(c in allowed for c in candidate):
            return candidate
    return _GAP


class _FoldTable(dict):
    """code point -> its folded text, for str.translate; each character is worked out once, when first met
    (a statement of 100,000 entries repeats the same few hundred characters over and over)."""

    def __init__(self, allowed: frozenset[str]):
        super().__init__()
        self.allowed = allowed

    def __missing__(self, code: int) -> str:
        folded = self[code] = _fold_char(chr(code), self.allowed)
        return folded


@cache
def _table(allowed: frozenset[str]) -> _FoldTable:
    return _FoldTable(allowed)


def fold(text: str | None, allowed: frozenset[str]) -> str:
    """`text` in the characters of `allowed` (see the module docstring); "" for None."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFKC", text)
    if not allowed.issuperset(folded):     # most values (accounts, references) are in the set already
        folded = in_pinyin(folded).translate(_table(allowed))
        folded = _GAP_RUN.sub(FILLER if FILLER in allowed else "", folded)
    return " ".join(folded.split())


# ---- money ----------------------------------------------------------------------------------------------

def minor(money: Money, currency: str) -> int:
    """The amount in integer minor units of `currency` (yen for JPY, fen for CNY); loud on a mismatch."""
    if money.currency != currency:
        raise ValueError(f"amount in {money.currency} on a {currency} statement")
    scaled = Decimal(money.amount).scaleb(minor_units()[currency])
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{money.amount} {currency} has more decimals than {currency} has")
    return int(scaled)


def signed_minor(entry: StatementEntry, currency: str) -> int:
    """The entry's effect on the balance: credits add, debits subtract (reversals included)."""
    amount = minor(entry.amount, currency)
    if amount <= 0 or entry.direction not in ("CRDT", "DBIT"):
        raise ValueError(f"entry {entry.entry_id}: {entry.direction} {entry.amount.amount} is not a booking")
    return amount if entry.direction == "CRDT" else -amount


def checked_balances(statement: Statement) -> tuple[int, int]:
    """(opening, closing) in minor units, after checking that opening + entries = closing.

    A statement that does not add up would be refused by every ERP importer, or worse, imported with a
    difference someone has to chase; no file is better than such a file."""
    currency = statement.currency
    opening, closing = minor(statement.opening, currency), minor(statement.closing, currency)
    total = opening + sum(signed_minor(e, currency) for e in statement.entries)
    if total != closing:
        raise ValueError(f"statement of {statement.account} does not add up: opening {opening} + entries "
                         f"= {total}, closing {closing} (minor units)")
    return opening, closing


# ---- dates ----------------------------------------------------------------------------------------------

def booking_day(entry: StatementEntry) -> dt.date:
    """The entry's booking day in the bank's time.

    Adapters get no time zone (AccountFacts has none) and the gateway hands `booked` over in UTC, so
    booked.date() is a day early for anything booked between midnight and 08:00 in Shanghai. This ledger
    books every entry with the value date set to the bank-time booking day, so the value date is taken
    whenever it lies within a day of the booking instant; only a value date further away (which would be
    a deliberate back- or forward-valuation) falls back to the instant's own calendar date."""
    own_day = entry.booked.date()
    return entry.value_date if abs((entry.value_date - own_day).days) <= 1 else own_day


def statement_key(statement: Statement) -> int:
    """The EntryId a page's identifiers are derived from: its first entry, or 0 for an empty page.

    Empty pages (balance only) all get 0, so their identifiers never collide with those of a page that
    has entries, which an ERP's duplicate check would otherwise take for a statement it already has."""
    return statement.entries[0].entry_id if statement.entries else 0


def last_delivered(statement: Statement) -> int:
    """The EntryId an empty page continues after (its cursor), 0 if the account has none yet."""
    cursor = statement.next_cursor
    return int(cursor) if cursor.isascii() and cursor.isdigit() else 0
