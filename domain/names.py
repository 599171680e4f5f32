"""Comparing party names the way a treasury clerk would: 华为技术 and "Hua Wei Ji Shu" are the same name.

A name's key is its NFKC form, lower-cased, with Han characters spelled in toneless pinyin and everything
that is not a letter or digit dropped. Keys make a payee recognisable across spellings (full-width
characters, spaces, punctuation, tone marks, Chinese or pinyin) for block lists, new-payee and changed-account checks.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from pypinyin import Style, lazy_pinyin

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_HAN_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)
# A block-list name shorter than this must match a payee's whole name: "li" must not block "Li Ning
# Sports" nor "Oliver". Longer names also match inside a payee's name ("... trading co" variants).
MIN_CONTAINED = 6


@lru_cache(maxsize=65536)
def key(name: str | None) -> str:
    """The comparison key of a name ('' for no name)."""
    if not name:
        return ""
    text = unicodedata.normalize("NFKC", name).casefold()
    if _HAN.search(text):
        text = "".join(lazy_pinyin(text, style=Style.NORMAL, errors="default"))
    # Pinyin written with tone marks (Zhōngguó) or ü compares equal to plain letters.
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _NOT_WORD.sub("", text)


def in_pinyin(text: str) -> str:
    """`text` with each run of Han characters spelled in toneless pinyin, one capitalised syllable each, set
    off by spaces ("上海某某科技 Ltd" -> " Shang Hai Mou Mou Ke Ji  Ltd"): for formats that hold only ASCII,
    so that a clerk reading the statement still recognises the name. Everything else is left as it is."""
    return _HAN_RUN.sub(lambda run: " " + " ".join(s.capitalize() for s in lazy_pinyin(run.group(), style=Style.NORMAL))
                        + " ", text)


def account_key(account: str | None) -> str:
    """Account numbers compared without spaces, dashes or case (IBAN-style grouping is cosmetic)."""
    return re.sub(r"[\s\-]", "", account or "").upper()


def name_matches(listed_key: str, payee_key: str) -> bool:
    """Does a listed name (by key) designate this payee (by key)?"""
    if not listed_key or not payee_key:
        return False
    if listed_key == payee_key:
        return True
    return len(listed_key) >= MIN_CONTAINED and listed_key in payee_key
