"""approvals clearing audit chain

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:44:07.552361
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_head',
    sa.Column('chain', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('base_seq', sa.BigInteger(), nullable=False),
    sa.Column('base_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('chain')
    )
    op.create_table('sim_clearing',
    sa.Column('payment_id', sa.String(length=35), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.String(length=140), nullable=True),
    sa.Column('returned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('return_reason', sa.String(length=140), nullable=True),
    sa.PrimaryKeyConstraint('payment_id')
    )
    op.create_table('approval_policies',
    sa.Column('client_id', sa.String(length=35), nullable=False),
    sa.Column('account', sa.String(length=34), nullable=False),
    sa.Column('threshold', sa.BigInteger(), nullable=False),
    sa.Column('approvals', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], ),
    sa.PrimaryKeyConstraint('client_id', 'account', 'threshold')
    )
    op.create_table('payment_approvals',
    sa.Column('payment_id', sa.String(length=35), nullable=False),
    sa.Column('approver', sa.String(length=35), nullable=False),
    sa.Column('decision', sa.String(length=8), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('comment', sa.String(length=140), nullable=True),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], ),
    sa.PrimaryKeyConstraint('payment_id', 'approver')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('seq', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('payment_id', sa.String(length=35), nullable=True))
        batch_op.add_column(sa.Column('from_state', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('to_state', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('cert_fingerprint', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('request', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('response', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_audit_log_payment_id'), ['payment_id'], unique=False)
        batch_op.create_unique_constraint('uq_audit_log_chain_seq', ['chain', 'seq'])

    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('approve_limit', sa.BigInteger(), nullable=True))

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('attempts')
        batch_op.drop_column('sent_at')

    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_column('approve_limit')

    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_constraint('uq_audit_log_chain_seq', type_='unique')
        batch_op.drop_index(batch_op.f('ix_audit_log_payment_id'))
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('response')
        batch_op.drop_column('request')
        batch_op.drop_column('cert_fingerprint')
        batch_op.drop_column('to_state')
        batch_op.drop_column('from_state')
        batch_op.drop_column('payment_id')
        batch_op.drop_column('seq')
        batch_op.drop_column('chain')

    op.drop_table('payment_approvals')
    op.drop_table('approval_policies')
    op.drop_table('sim_clearing')
    op.drop_table('audit_head')
