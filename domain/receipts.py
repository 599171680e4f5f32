"""Electronic receipts (电子回单): one for every booked debit and credit on a client's account.

A receipt is what the bank certifies about one ledger entry: who paid whom, from which account at which bank
to which, how much (in figures and in Chinese capital numerals, as a paper voucher writes it), on which value
date, for what, and under which references. Its number is fixed by the entry it describes, so downloading it
again gives the same receipt.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal

import cn2an

from domain.money import Money

_RECEIPT_PREFIX = "R"


def capital_amount(money: Money) -> str:
    """The amount in Chinese capital numerals (大写金额), as the People's Bank of China's rules for filling
    in vouchers write it (《支付结算办法》附件一《正确填写票据和结算凭证的基本规定》): a zero inside the
    number is written 零 once for a run of zeros (1,004.05 = 壹仟零肆元零伍分), an amount ending at 元 ends with
    整 (10,000.00 = 壹万元整), and when 角 is not 0 and 分 is 0 the rule allows 整 after 角 and bank
    receipts write it (0.50 = 伍角整). cn2an's "rmb" mode writes the rest; its output follows the
    rule's examples (tests/domain/test_receipt_domain.py holds them all)."""
    if money.amount < 0:
        raise ValueError("a receipt's amount is never negative: the direction says debit or credit")
    words: str = cn2an.an2cn(format(money.amount.quantize(Decimal("0.01")), "f"), "rmb")
    if words.endswith("角"):
        words += "整"
    return words


def figures(money: Money) -> str:
    """The amount in figures as a receipt prints it: thousands grouped, the currency's minor digits."""
    return f"{money.amount:,}"


@dataclass(frozen=True, slots=True)
class ReceiptParty:
    """A payer or payee as the receipt prints it: the bank fields are empty when the ledger did not record
    them (a payment within this bank has no clearing code)."""

    name: str
    account: str
    bank_name: str = ""
    bank_code: str = ""
    bank_scheme: str = ""   # CNAPS | BIC | INTERNAL, or "" when not recorded


@dataclass(frozen=True, slots=True)
class Receipt:
    number: str
    account: str            # the client's account the entry is booked on
    entry_id: int           # its statement EntryId
    direction: str          # DBIT: the client paid; CRDT: the client received
    payer: ReceiptParty
    payee: ReceiptParty
    amount: Money
    value_date: dt.date
    booked: dt.datetime
    purpose: str
    remittance: str         # the payment's remark, or the entry's narrative
    bank_ref: str           # the ledger journal (BankRef)
    payment_id: str | None = None
    client_ref: str | None = None
    end_to_end_id: str | None = None
    reversal: bool = False

    @property
    def capital(self) -> str:
        return capital_amount(self.amount)


def receipt_number(entry_row_id: int) -> str:
    """The receipt number of a ledger entry: its row number, which the database assigns once and never
    reuses (entries are never deleted), so the number is the same on every download and every replica."""
    return f"{_RECEIPT_PREFIX}{entry_row_id:012d}"


def entry_row_id(number: str) -> int | None:
    """The entry row a receipt number names; None for text that is not a receipt number."""
    digits = number[len(_RECEIPT_PREFIX):]
    if not number.startswith(_RECEIPT_PREFIX) or not digits.isascii() or not digits.isdigit() or len(digits) < 12:
        return None
    return int(digits)


def verification_code(canonical_receipt: bytes) -> str:
    """The code printed on a receipt and in its QR code: the first 80 bits of the SHA-256 of the receipt's
    canonical XML, in base32 groups of four (easy to read out and type). Not a secret: it names one content
    exactly, and the gateway's signature on that content is what makes it authentic."""
    raw = base64.b32encode(hashlib.sha256(canonical_receipt).digest()[:10]).decode("ascii")
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))
