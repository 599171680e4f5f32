"""Identifiers shared by the ISO 20022 readers and writers: this bank's BIC, IBANs, 2009-style BICs."""
from __future__ import annotations

import hashlib
import re

# The demo bank (AccountFacts.bank_bic's default): readers are pure functions and are given no settings.
OWN_BIC = "DLNKCNSHXXX"
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Za-z0-9]{1,30}", re.ASCII)
# BIC as the 2009 schemas (pain.*.03, camt.*.02) define it; the 2019 ones accept any BIC the domain accepts.
BIC_2009 = re.compile(r"[A-Z]{6}[A-Z2-9][A-NP-Z0-9]([A-Z0-9]{3})?", re.ASCII)


def is_iban(value: str | None) -> bool:
    """An IBAN by form and ISO 7064 check digits: written as IBAN, other account numbers as Othr/Id."""
    if not _IBAN.fullmatch(value or ""):
        return False
    moved = (value[4:] + value[:4]).upper()
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def message_id(prefix: str, *parts: object) -> str:
    """A GrpHdr/MsgId (Max35Text) derived from what the message says: writers stay pure functions (the same
    input gives the same bytes), and the same report fetched twice is recognisably the same message."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()
    return f"{prefix}{digest[:26].upper()}"


def is_own_bic(bic: str, own: str = OWN_BIC) -> bool:
    """Any branch of this bank (the first 8 characters name the institution)."""
    return bic[:8] == own[:8]
