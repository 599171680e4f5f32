"""running totals of each maker's payments per debtor account and quarter hour, for the daily limit

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 03:30:00
"""
import datetime as dt
from collections import Counter

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

GONE = "state IN ('CANCELLED', 'FAILED', 'REJECTED', 'RETURNED')"
# A business day lies within the last 26 hours in any zone: older payments never count against a limit again.
HORIZON = dt.timedelta(days=2)
QUARTER = 15 * 60


def upgrade() -> None:
    totals = op.create_table(
        'maker_totals',
        sa.Column('client_id', sa.String(length=35), nullable=False),
        sa.Column('maker', sa.String(length=35), nullable=False),
        sa.Column('account', sa.String(length=34), nullable=False),
        sa.Column('quarter', sa.BigInteger(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('client_id', 'maker', 'account', 'quarter'),
    )
    # The daily limit no longer sums the day's payments: the index that served the sum goes (one index fewer
    # to write per payment), and a partial one finds the payments taken back, which the totals still count.
    op.drop_index('ix_payments_daily', 'payments')
    op.create_index('ix_payments_gone_maker', 'payments',
                    ['client_id', 'maker', 'debtor_account', 'created_at', 'state', 'amount'],
                    sqlite_where=sa.text(GONE), postgresql_where=sa.text(GONE))
    # Count the payments of the horizon as the gateway counts new ones (gateway/maker_totals.py): every one,
    # in the quarter hour it was created. Replicas still running the previous version would create payments
    # uncounted: stop them before this upgrade (docs/deployment.md).
    conn = op.get_bind()
    since = dt.datetime.now(dt.UTC) - HORIZON
    if conn.dialect.name == "sqlite":
        since = since.replace(tzinfo=None)
    counted: Counter = Counter()
    rows = conn.execute(sa.text("SELECT client_id, maker, debtor_account, created_at, amount FROM payments "
                                "WHERE created_at >= :since"), {"since": since})
    for client, maker, account, created, amount in rows:
        if isinstance(created, str):   # SQLite hands back the stored text
            created = dt.datetime.fromisoformat(created)
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        counted[(client, maker, account, int(created.timestamp()) // QUARTER)] += amount
    if counted:
        op.bulk_insert(totals, [dict(client_id=c, maker=m, account=a, quarter=q, amount=counted[(c, m, a, q)])
                                for c, m, a, q in sorted(counted)])


def downgrade() -> None:
    op.drop_index('ix_payments_gone_maker', 'payments')
    op.create_index('ix_payments_daily', 'payments',
                    ['client_id', 'maker', 'debtor_account', 'created_at', 'state', 'amount'])
    op.drop_table('maker_totals')
