"""The cash position of accounts (domain/cash.py) from the ledger and the unsettled payments."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, func, select

from domain.cash import Expected, Position, project
from domain.codes import PaymentState, ResultCode
from domain.errors import XmlRejected
from gateway import ledger
from gateway.storage.tables import payments

# Money that has not left yet but will (or may: UNKNOWN is asked, never assumed failed).
UNSETTLED = (PaymentState.PENDING_APPROVAL, PaymentState.ACCEPTED, PaymentState.PROCESSING, PaymentState.UNKNOWN)


def position(conn: Connection, account: str, currency: str, today: dt.date, days: int,
             expected: list[Expected]) -> Position:
    for item in expected:
        if item.account == account and item.currency != currency:
            raise XmlRejected(f"Expected {item.ref or ''} on {account} is in {item.currency}; the account is in "
                              f"{currency}", code=ResultCode.XML_SCHEMA_INVALID)
    booked, available = ledger.balance(conn, account)
    outflows = conn.execute(select(payments.c.requested_date, func.sum(payments.c.amount)).where(
        payments.c.debtor_account == account, payments.c.state.in_(UNSETTLED))
        .group_by(payments.c.requested_date)).all()
    return project(account, currency, booked, available, [(d, int(a)) for d, a in outflows], expected, today, days)
