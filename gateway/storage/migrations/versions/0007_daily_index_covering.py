"""the daily-limit sum reads only the index: state and amount join ix_payments_daily

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 16:10:00
"""
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_payments_daily', 'payments')
    op.create_index('ix_payments_daily', 'payments',
                    ['client_id', 'maker', 'debtor_account', 'created_at', 'state', 'amount'])


def downgrade() -> None:
    op.drop_index('ix_payments_daily', 'payments')
    op.create_index('ix_payments_daily', 'payments', ['client_id', 'maker', 'debtor_account', 'created_at'])
