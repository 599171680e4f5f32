"""Money: exact decimal amounts with their currency, and the one strict parser for amounts on the wire.

The ledger stores integer minor units (fen for CNY); this module is the only place that converts.

Two lists of currencies, kept apart on purpose:
  minor_units()      the currencies this gateway BOOKS (payments, accounts, its own statements): its own
                     short list, domain/data/currencies.json; check_currency() refuses anything else.
  iso_minor_units()  every current ISO 4217 currency with its minor units, from the maintained `iso4217`
                     package (a copy of the ISO 4217 maintenance agency's table). Other banks' statements
                     and ERP open items may carry any of them (CHF, SEK, KWD with 3 decimals...); reading
                     them never makes the gateway accept a payment in them.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib.resources import files

from iso4217 import Currency

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


@cache
def iso_minor_units() -> dict[str, int]:
    """Every current ISO 4217 currency that has minor units -> their number (CHF 2, JPY 0, KWD 3).

    Funds and units without minor units (XAU gold, XDR, XXX "no currency") are left out: they are not
    amounts a bank account is kept in."""
    return {c.code: c.exponent for c in Currency if c.exponent is not None}


def digits(currency: str) -> int:
    """The minor-unit digits of a currency the gateway books, or else of any ISO 4217 currency; KeyError if
    `currency` is neither."""
    booked = minor_units()
    return booked[currency] if currency in booked else iso_minor_units()[currency]


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    @property
    def minor(self) -> int:
        """The amount in integer minor units (e.g. fen)."""
        return int(self.amount.scaleb(digits(self.currency)))

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        places = digits(currency)
        return cls(Decimal(minor).scaleb(-places).quantize(Decimal(1).scaleb(-places)), currency)

    def text(self) -> str:
        """The amount as the wire writes it: plain ASCII, exactly the currency's minor digits."""
        return format(self.amount, "f")


def check_currency(currency: str) -> str:
    """Return the currency if the gateway accepts it, else raise CURRENCY_NOT_ALLOWED."""
    if not _CURRENCY.fullmatch(currency or "") or currency not in minor_units():
        raise PaymentRejected(ReasonCode.CURRENCY_NOT_ALLOWED, f"currency {currency!r} is not accepted")
    return currency


def check_iso_currency(currency: str) -> str:
    """Return the currency if it is a current ISO 4217 code with minor units (whether or not the gateway
    books it), else raise CURRENCY_NOT_ALLOWED. For what other banks and ERPs report, never for payments."""
    if not _CURRENCY.fullmatch(currency or "") or currency not in iso_minor_units():
        raise PaymentRejected(ReasonCode.CURRENCY_NOT_ALLOWED,
                              f"currency {currency!r} is not accepted: not an ISO 4217 currency")
    return currency


def parse_amount(text: str, currency: str, *, any_iso: bool = False) -> Money:
    """Parse a wire amount strictly; raise AMOUNT_INVALID for anything but a positive ASCII decimal.

    The currency must be one the gateway books; with `any_iso`, any ISO 4217 currency (open items of
    reconciliation: an ERP expects money in currencies the gateway never pays in)."""
    if any_iso:
        check_iso_currency(currency)
    else:
        check_currency(currency)
    match = _AMOUNT.fullmatch(text or "")
    if match is None:
        raise PaymentRejected(ReasonCode.AMOUNT_INVALID, f"amount {text!r} is not a plain decimal number")
    if len(match.group(1).lstrip("0")) > MAX_INTEGER_DIGITS:
        raise PaymentRejected(ReasonCode.AMOUNT_INVALID, f"amount {text!r} is larger than the gateway handles")
    places = digits(currency)
    fraction = match.group(2) or ""
    if len(fraction) > places:
        raise PaymentRejected(
            ReasonCode.AMOUNT_INVALID, f"amount {text!r} has more than {places} decimals for {currency}"
        )
    value = Decimal(text).quantize(Decimal(1).scaleb(-places))
    if value <= 0:
        raise PaymentRejected(ReasonCode.AMOUNT_INVALID, f"amount {text!r} must be more than zero")
    return Money(value, currency)
