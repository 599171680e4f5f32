"""Electronic receipts of booked entries: found in the ledger, signed with the gateway's key, printed as PDF.

A receipt is made from the entry when it is asked for, not stored: entries never change, so its content,
number and verification code are the same on every download (the signature's bytes differ, ECDSA being
randomised; each one verifies). Which entries: those on the client's own accounts the operator may query.
Paging by account works as statements do (gateway/statements.py): the cursor is the last EntryId returned.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, Select, select

from domain.errors import NotFound
from domain.money import Money
from domain.receipts import Receipt, ReceiptParty, entry_row_id, receipt_number
from gateway import businessday, receipt_pdf, statements
from gateway.payments import is_own_bank
from gateway.protocol import receipts as document
from gateway.protocol.signing import Signer
from gateway.settings import Settings
from gateway.storage.tables import accounts, entries, payments

FORMS = ("XML", "PDF", "BOTH")


@dataclass(frozen=True)
class Issued:
    """One receipt as the answer carries it."""

    receipt: Receipt
    code: str
    xml: bytes | None      # the signed document
    pdf: bytes | None      # the printable form, the signed document attached


@dataclass(frozen=True)
class Page:
    receipts: list[Receipt]
    next_cursor: str
    complete: bool


def _query(client: str, allowed: list[str]) -> Select:
    return (select(entries, accounts.c.name.label("holder"), accounts.c.currency,
                   payments.c.purpose.label("payment_purpose"), payments.c.remark,
                   payments.c.creditor_account, payments.c.creditor_bank_name)
            .select_from(entries.join(accounts, entries.c.account == accounts.c.number)
                         .outerjoin(payments, entries.c.payment_id == payments.c.id))
            .where(accounts.c.client_id == client, entries.c.account.in_(allowed)))


def by_payment(conn: Connection, settings: Settings, client: str, allowed: list[str],
               payment_ids: list[str]) -> list[Receipt]:
    """The receipts of the client's payments (the debit, and a return's credit): none yet while unbooked."""
    known = set(conn.execute(select(payments.c.id).where(payments.c.client_id == client,
                                                         payments.c.id.in_(payment_ids))).scalars())
    unknown = [p for p in payment_ids if p not in known]
    if unknown:
        raise NotFound(f"unknown payment {unknown[0]}")
    rows = conn.execute(_query(client, allowed).where(entries.c.payment_id.in_(payment_ids))
                        .order_by(entries.c.id)).all()
    return [_receipt(r, settings) for r in rows]


def by_number(conn: Connection, settings: Settings, client: str, allowed: list[str],
              numbers: list[str]) -> list[Receipt]:
    ids = {n: entry_row_id(n) for n in numbers}
    wanted = [i for i in ids.values() if i is not None]
    rows = {r.id: r for r in conn.execute(_query(client, allowed).where(entries.c.id.in_(wanted)))}
    missing = [n for n, i in ids.items() if i not in rows]
    if missing:   # a number of another client's account is as unknown as one never issued
        raise NotFound(f"unknown receipt {missing[0]}")
    return [_receipt(rows[i], settings) for i in dict.fromkeys(ids.values()) if i is not None]


def by_account(conn: Connection, settings: Settings, client: str, account: str, *, after: str | None,
               date_from: dt.date | None, date_to: dt.date | None, limit: int) -> Page:
    """One page of an account's receipts: after a cursor (an EntryId), or booked between two dates."""
    last_seq = conn.execute(select(accounts.c.entry_seq).where(accounts.c.number == account)).scalar_one()
    query = _query(client, [account])
    if after is not None:
        start = statements.parse_cursor(after, last_seq)
        query = query.where(entries.c.seq > start)
    else:
        begin, end = businessday.bounds(date_from, date_to, settings.zone)
        start = 0
        query = query.where(entries.c.booked_at >= begin, entries.c.booked_at < end)
    rows = conn.execute(query.order_by(entries.c.seq).limit(limit + 1)).all()
    complete = len(rows) <= limit
    rows = rows[:limit]
    last = rows[-1].seq if rows else start
    return Page([_receipt(r, settings) for r in rows], f"{last:012d}" if last else "", complete)


def _receipt(row, settings: Settings) -> Receipt:
    own = ReceiptParty(row.holder, row.account, settings.bank_name)
    if row.counterparty_scheme and is_own_bank(row.counterparty_scheme, row.counterparty_code or "",
                                               settings.own_cnaps_prefix):
        bank_name = settings.bank_name
    elif row.creditor_account is not None and row.counterparty_account == row.creditor_account:
        bank_name = row.creditor_bank_name or ""
    else:
        bank_name = ""
    other = ReceiptParty(row.counterparty_name or "", row.counterparty_account or "", bank_name,
                         row.counterparty_code or "", row.counterparty_scheme or "")
    paid = row.direction == "DBIT"
    from_payment = row.payment_purpose is not None
    return Receipt(
        number=receipt_number(row.id), account=row.account, entry_id=row.seq, direction=row.direction,
        payer=own if paid else other, payee=other if paid else own,
        amount=Money.from_minor(row.amount, row.currency), value_date=row.value_date, booked=row.booked_at,
        purpose=row.payment_purpose if from_payment else row.narrative,
        remittance=(row.remark or "") if from_payment and not row.reversal else row.narrative,
        bank_ref=row.journal, payment_id=row.payment_id, client_ref=row.client_ref,
        end_to_end_id=row.end_to_end_id, reversal=bool(row.reversal))


def issue(receipt: Receipt, signer: Signer, settings: Settings, form: str) -> Issued:
    """Sign the receipt document and, if asked, print it (the signed document goes inside the PDF)."""
    root = document.render(receipt, settings.bank_name, settings.zone)
    code = document.code_of(root)
    xml = signer.sign(root)
    pdf = receipt_pdf.render(receipt, code, settings.bank_name, settings.zone, xml) if form != "XML" else None
    return Issued(receipt, code, xml if form != "PDF" else None, pdf)
