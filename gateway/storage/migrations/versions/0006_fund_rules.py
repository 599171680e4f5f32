"""fund-flow rules: rules, counterparties, block lists; payee key and rule hits on payments

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 15:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'fund_rules',
        sa.Column('client_id', sa.String(length=35), nullable=False),
        sa.Column('account', sa.String(length=34), nullable=False),
        sa.Column('rule', sa.String(length=40), nullable=False),
        sa.Column('params', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['client_id'], ['clients.id']),
        sa.PrimaryKeyConstraint('client_id', 'account', 'rule'),
    )
    op.create_table(
        'counterparties',
        sa.Column('client_id', sa.String(length=35), nullable=False),
        sa.Column('account', sa.String(length=34), nullable=False),
        sa.Column('name', sa.String(length=70), nullable=False),
        sa.Column('name_key', sa.String(length=420), nullable=False),
        sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['client_id'], ['clients.id']),
        sa.PrimaryKeyConstraint('client_id', 'account'),
    )
    op.create_index('ix_counterparties_name', 'counterparties', ['client_id', 'name_key'])
    op.create_table(
        'block_lists',
        sa.Column('client_id', sa.String(length=35), nullable=False),
        sa.Column('list_name', sa.String(length=40), nullable=False),
        sa.Column('entries', sa.Integer(), nullable=False),
        sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('version', sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint('client_id', 'list_name'),
    )
    op.create_table(
        'blocked_parties',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('client_id', sa.String(length=35), nullable=False),
        sa.Column('list_name', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=140), nullable=True),
        sa.Column('name_key', sa.String(length=420), nullable=True),
        sa.Column('account', sa.String(length=34), nullable=True),
        sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_blocked_client_list', 'blocked_parties', ['client_id', 'list_name'])
    with op.batch_alter_table('payments') as batch:
        batch.add_column(sa.Column('creditor_key', sa.String(length=420), nullable=True))
        batch.add_column(sa.Column('rule_hits', sa.Text(), nullable=True))
    op.create_index('ix_payments_payee_account', 'payments',
                    ['client_id', 'creditor_account', 'created_at', 'state', 'amount'])
    op.create_index('ix_payments_payee_name', 'payments', ['client_id', 'creditor_key', 'created_at'])
    op.create_index('ix_payments_debtor_recent', 'payments', ['debtor_account', 'created_at', 'state', 'amount'])


def downgrade() -> None:
    op.drop_index('ix_payments_debtor_recent', 'payments')
    op.drop_index('ix_payments_payee_name', 'payments')
    op.drop_index('ix_payments_payee_account', 'payments')
    with op.batch_alter_table('payments') as batch:
        batch.drop_column('rule_hits')
        batch.drop_column('creditor_key')
    op.drop_index('ix_blocked_client_list', 'blocked_parties')
    op.drop_table('blocked_parties')
    op.drop_table('block_lists')
    op.drop_index('ix_counterparties_name', 'counterparties')
    op.drop_table('counterparties')
    op.drop_table('fund_rules')
