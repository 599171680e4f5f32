"""Money: exact decimal amounts with their currency, and the one strict parser for amounts on the wire.

The ledger stores integer minor units (fen for CNY); this module is the only place that converts.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib.resources import files

from domain.codes import ReasonCode
from domain.errors import PaymentRejected

# Spec section 4: [0-9]+(\.[0-9]+)?, ASCII only. Decimal() and int() would also accept '1e3', 'NaN',
# '１２３' (full-width), '1_000' and ' 12 '. Leading zeros are fine (fixed-width ERP exports pad).
_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?", re.ASCII)
# At most 15 significant integer digits: in minor units that still fits the ledger's 64-bit integers.
MAX_INTEGER_DIGITS = 15
_CURRENCY = re.compile(r"[A-Z]{3}", re.ASCII)


@cache
def minor_units() -> dict[str, int]:
    """Currency -> number of minor-unit digits, for every currency the gateway accepts."""
    data = json.loads(files("domain").joinpath("data/currencies.json").read_text("utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    @property
    def minor(self) -> int:
        """The amount in integer minor units (e.g. fen)."""
        return int(self.amount.scaleb(minor_units()[self.currency]))

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        digits = minor_units()[currency]
        return cls(Decimal(minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits)), currency)

    def text(self) -> str:
        """The amount as the wire writes it: plain ASCII, exactly the currency's minor digits."""
        return format(self.amount, "f")


def check_currency(currency: str) -> str:
    """Return the currency if the gateway accepts it, else raise CURRENCY_NOT_ALLOWED."""
    if not _CURRENCY.fullmatch(currency or "") or currency not in minor_units():
        raise PaymentRejected(ReasonCode.CURRENCY_NOT_ALLOWED, f"currency {currency!r} is not accepted")
    return currency


def parse_amount(text: str, currency: str) -> Money:
    """Parse a wire amount strictly; raise AMOUNT_INVALID for anything but a positive ASCII decimal."""
    check_currency(currency)
    match = _AMOUNT.fullmatch(text or "")
    if match is None:
        raise PaymentRejected(ReasonCode.AMOUNT_INVALID, f"amount {text!r} is not a plain decimal number")
    if len(match.group(1).lstrip("0")) > MAX_INTEGER_DIGITS:
        raise PaymentRejected(ReasonCode.AMOUNT_INVALID, f"amount {text!r} is larger than the gateway handles")
    digits = minor_units()[currency]
    fraction = match.group(2) or ""
    if len(fraction) > digits:
        raise PaymentRejected(
            ReasonCode.AMOUNT_INVALID, f"amount {text!r} has more than {digits} decimals for {currency}"
        )
    value = Decimal(text).quantize(Decimal(1).scaleb(-digits))
    if value <= 0:
        raise PaymentRejected(ReasonCode.AMOUNT_INVALID, f"amount {text!r} must be more than zero")
    return Money(value, currency)
