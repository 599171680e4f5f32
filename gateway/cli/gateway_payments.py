"""The gateway's own payments as reconcile's open items, read from a gateway home's database (read only),
for `directlink reconcile --home` (reconcile/ takes them as input and never reads the server's tables).

A payment the gateway accepted from an account should show up on that account's statement as a debit
whose BankRef is the PaymentId and which carries the ClientRef and EndToEndId. Those three are the
item's references, so the exact rules find them; a payment still unmatched after that has not (yet)
reached the statement, and a debit with a ClientRef but no payment is one the gateway knows nothing of.
Payments that never left (rejected, failed, cancelled, waiting for approval) are not expected, nor are
returned ones: their debit and the return cancel out on the statement (the reversal rule pairs them).
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from domain.codes import PaymentState as S
from domain.money import Money
from gateway.settings import Settings
from gateway.storage.engine import make_engine, read_only
from gateway.storage.tables import payments
from reconcile.model import DBIT, OpenItem

EXPECTED = (S.ACCEPTED, S.PROCESSING, S.UNKNOWN, S.SETTLED)


def load(home: Path, account: str, until: dt.date | None = None) -> list[OpenItem]:
    """Payments from `account` that left or are leaving it (created on or before `until`, bank time)."""
    if not (home / "directlink.toml").is_file():
        raise FileNotFoundError(f"{home} is not a gateway home (no directlink.toml)")
    settings = Settings.load(home)
    engine = make_engine(settings.db_url)
    try:
        with read_only(engine) as conn:
            rows = conn.execute(select(payments).where(payments.c.debtor_account == account,
                                                       payments.c.state.in_([s.value for s in EXPECTED]))
                                .order_by(payments.c.id)).all()
    finally:
        engine.dispose()
    zone = settings.zone
    items = []
    for row in rows:
        created = row.created_at.astimezone(zone).date()
        if until is not None and created > until:
            continue
        items.append(OpenItem(
            id=row.id, reference=row.client_ref, counterparty_account=row.creditor_account,
            amount=Money.from_minor(row.amount, row.currency), due_date=max(row.requested_date, created),
            direction=DBIT, counterparty_name=row.creditor_name, text=f"{row.purpose} ({row.state})",
            other_references=tuple(r for r in (row.end_to_end_id, row.id) if r != row.client_ref),
            where=f"payment {row.id}"))
    return items
