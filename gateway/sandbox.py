"""The sandbox: money coming in from another bank, booked on demand, so that receipts, their statement
entries, notifications and reconciliation can be shown without a real clearing system.

A credit is one balanced posting from the bank's clearing book (where clearing settles with other banks)
into a client's account, with the payer as the entry's counterparty and the payer's reference as its
narrative, which is what statements, notifications and reconciliation show.
"""
from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, select

from domain.codes import ReasonCode
from domain.errors import PaymentRejected
from domain.models import BankCode, check_account, check_text, is_own_bank
from domain.money import Money, check_currency, parse_amount
from gateway import audit, ledger
from gateway.notify import outbox
from gateway.storage.tables import accounts
from gateway.storage.unit_of_work import UnitOfWork

_CNAPS = re.compile(r"[0-9]{12}", re.ASCII)


@dataclass(frozen=True)
class Credit:
    account: str
    client_id: str
    amount: Money
    entry_id: int            # the statement entry's EntryId
    bank_ref: str            # its BankRef (the posting's journal)
    booked: int              # the account's booked balance afterwards, minor units


def payer_bank(code: str) -> BankCode:
    """A CNAPS code (12 digits) or a BIC; BANK_CODE_INVALID for anything else."""
    code = code.strip().upper()
    return BankCode("CNAPS" if _CNAPS.fullmatch(code) else "BIC", code)


def credit(conn: Connection, *, account: str, amount: str, payer_name: str, payer_account: str,
           now: dt.datetime, zone: dt.tzinfo, own_cnaps_prefix: str, currency: str | None = None,
           payer_bank_code: str | None = None, reference: str | None = None, end_to_end_id: str | None = None,
           value_date: dt.date | None = None) -> Credit:
    """Book an incoming transfer from another bank into a client's account, in the caller's transaction.

    Every check comes before any write, so a refusal (PaymentRejected with its reason code) changes nothing."""
    row = conn.execute(select(accounts).where(accounts.c.number == account)).first()
    if row is None or row.client_id is None:
        raise PaymentRejected(ReasonCode.ACCOUNT_INVALID, f"{account!r} is not a client account of this bank")
    currency = check_currency(currency or row.currency)
    if currency != row.currency:
        raise PaymentRejected(ReasonCode.CURRENCY_NOT_ALLOWED, f"account {account} is in {row.currency}, "
                                                                f"not {currency}")
    money = parse_amount(amount, currency)
    name = check_text(payer_name, "payer name", 1, 70)
    check_account(payer_account, "payer")
    bank = payer_bank(payer_bank_code) if payer_bank_code else None
    if bank is not None and is_own_bank(bank.scheme, bank.code, own_cnaps_prefix):
        raise PaymentRejected(ReasonCode.BANK_CODE_INVALID, f"{bank.code} is this bank: money between its "
                                                            f"accounts moves by a payment, not from outside")
    narrative = check_text(reference, "reference", 1, 140) or f"Incoming transfer from {name}"[:140]
    if end_to_end_id is not None and check_text(end_to_end_id, "EndToEndId", 1, 35) != end_to_end_id.strip():
        raise PaymentRejected(ReasonCode.ACCOUNT_INVALID, "the EndToEndId must not start or end with blanks")
    today = now.astimezone(zone).date()

    journal = f"SBX{today:%Y%m%d}{secrets.token_hex(6).upper()}"
    source = ledger.ensure_internal_account(conn, currency, "CLEARING", now)
    ledger.lock_accounts(conn, {account, source})
    with UnitOfWork(conn) as uow:
        booked = ledger.post(uow, journal, [
            ledger.Leg(source, ledger.DBIT, money.minor, f"Incoming transfer {journal} for {account}"),
            ledger.Leg(account, ledger.CRDT, money.minor, narrative, counterparty_name=name,
                       counterparty_account=payer_account, counterparty_scheme=bank and bank.scheme,
                       counterparty_code=bank and bank.code, end_to_end_id=end_to_end_id),
        ], now, value_date or today, locked=True)
        outbox.posted(conn, booked, now)
        after = conn.execute(select(accounts.c.booked, accounts.c.entry_seq)
                             .where(accounts.c.number == account)).one()
        audit.append(uow, chain=row.client_id, at=now, kind="sandbox", code="SANDBOX_CREDIT",
                     client_id=row.client_id,
                     detail=f"{journal}: {money.text()} {currency} into {account} from {name} {payer_account} "
                            f"{bank.code if bank else '(bank not given)'}, value {value_date or today}, "
                            f"reference {narrative!r}")
    return Credit(account, row.client_id, money, after.entry_seq, journal, after.booked)
