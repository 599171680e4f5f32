"""approval policies per currency

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 13:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _policies(name: str, with_currency: bool) -> None:
    key = ['client_id', 'account', 'currency', 'threshold'] if with_currency else ['client_id', 'account', 'threshold']
    op.create_table(
        name,
        sa.Column('client_id', sa.String(length=35), sa.ForeignKey('clients.id'), nullable=False),
        sa.Column('account', sa.String(length=34), nullable=False),
        *([sa.Column('currency', sa.String(length=3), nullable=False)] if with_currency else []),
        sa.Column('threshold', sa.BigInteger(), nullable=False),
        sa.Column('approvals', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*key, name=f'pk_{name}'),
    )


def upgrade() -> None:
    # The primary key gains a column: build the new table, copy (existing tiers were read in CNY), swap.
    _policies('approval_policies_v3', with_currency=True)
    op.execute("INSERT INTO approval_policies_v3 (client_id, account, currency, threshold, approvals) "
               "SELECT client_id, account, 'CNY', threshold, approvals FROM approval_policies")
    op.drop_table('approval_policies')
    op.rename_table('approval_policies_v3', 'approval_policies')


def downgrade() -> None:
    _policies('approval_policies_v2', with_currency=False)
    op.execute("INSERT INTO approval_policies_v2 (client_id, account, threshold, approvals) "
               "SELECT client_id, account, threshold, approvals FROM approval_policies WHERE currency = 'CNY'")
    op.drop_table('approval_policies')
    op.rename_table('approval_policies_v2', 'approval_policies')
