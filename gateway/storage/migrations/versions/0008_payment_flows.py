"""running totals of payments per account and minute for the fund-flow rules; their indexes

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 18:00:00
"""
import datetime as dt
from collections import Counter

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

GONE = "state IN ('CANCELLED', 'FAILED', 'REJECTED', 'RETURNED')"
# The rules' longest window is a velocity window of 7 days: older payments are never counted again.
HORIZON = dt.timedelta(days=8)


def upgrade() -> None:
    flows = op.create_table(
        'payment_flows',
        sa.Column('side', sa.String(length=1), nullable=False),
        sa.Column('client_id', sa.String(length=35), nullable=False),
        sa.Column('account', sa.String(length=34), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('minute', sa.BigInteger(), nullable=False),
        sa.Column('payments', sa.Integer(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('side', 'client_id', 'account', 'minute', 'currency'),
    )
    op.create_index('ix_payments_payee_amount', 'payments', ['client_id', 'creditor_account', 'amount', 'created_at'])
    op.drop_index('ix_payments_payee_account', 'payments')
    op.create_index('ix_payments_payee_account', 'payments',
                    ['client_id', 'creditor_account', 'created_at', 'state', 'amount', 'currency'])
    op.create_index('ix_payments_gone_debtor', 'payments', ['debtor_account', 'created_at', 'state', 'amount'],
                    sqlite_where=sa.text(GONE), postgresql_where=sa.text(GONE))
    op.create_index('ix_payments_gone_payee', 'payments',
                    ['client_id', 'creditor_account', 'created_at', 'state', 'currency', 'amount'],
                    sqlite_where=sa.text(GONE), postgresql_where=sa.text(GONE))
    # Count the payments of the horizon, as the gateway counts new ones (gateway/flows.py).
    conn = op.get_bind()
    since = dt.datetime.now(dt.UTC) - HORIZON
    if conn.dialect.name == "sqlite":
        since = since.replace(tzinfo=None)
    counted: Counter = Counter()
    rows = conn.execute(sa.text("SELECT client_id, debtor_account, creditor_account, currency, created_at, amount "
                                "FROM payments WHERE created_at >= :since"), {"since": since})
    for client, debtor, creditor, currency, created, amount in rows:
        if isinstance(created, str):   # SQLite hands back the stored text
            created = dt.datetime.fromisoformat(created)
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        minute = int(created.timestamp()) // 60
        for side, account in (("D", debtor), ("C", creditor)):
            counted[(side, client, account, currency, minute, "n")] += 1
            counted[(side, client, account, currency, minute, "a")] += amount
    keys = sorted({k[:5] for k in counted})
    if keys:
        op.bulk_insert(flows, [dict(side=s, client_id=c, account=a, currency=cur, minute=m,
                                    payments=counted[(s, c, a, cur, m, "n")], amount=counted[(s, c, a, cur, m, "a")])
                               for s, c, a, cur, m in keys])


def downgrade() -> None:
    op.drop_index('ix_payments_gone_payee', 'payments')
    op.drop_index('ix_payments_gone_debtor', 'payments')
    op.drop_index('ix_payments_payee_account', 'payments')
    op.create_index('ix_payments_payee_account', 'payments', ['client_id', 'creditor_account', 'created_at', 'state',
                                                            'amount'])
    op.drop_index('ix_payments_payee_amount', 'payments')
    op.drop_table('payment_flows')
