"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 12:33:20.225774
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('client_id', sa.String(length=35), nullable=True),
    sa.Column('operator_id', sa.String(length=35), nullable=True),
    sa.Column('message_id', sa.String(length=35), nullable=True),
    sa.Column('code', sa.String(length=35), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('request_digest', sa.String(length=44), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('clients',
    sa.Column('id', sa.String(length=35), nullable=False),
    sa.Column('name', sa.String(length=140), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('messages',
    sa.Column('client_id', sa.String(length=35), nullable=False),
    sa.Column('message_id', sa.String(length=35), nullable=False),
    sa.Column('request_digest', sa.String(length=44), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('http_status', sa.Integer(), nullable=False),
    sa.Column('response', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('client_id', 'message_id')
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messages_received_at'), ['received_at'], unique=False)

    op.create_table('accounts',
    sa.Column('number', sa.String(length=34), nullable=False),
    sa.Column('client_id', sa.String(length=35), nullable=True),
    sa.Column('name', sa.String(length=140), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('booked', sa.BigInteger(), nullable=False),
    sa.Column('held', sa.BigInteger(), nullable=False),
    sa.Column('entry_seq', sa.BigInteger(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], ),
    sa.PrimaryKeyConstraint('number')
    )
    op.create_table('operators',
    sa.Column('client_id', sa.String(length=35), nullable=False),
    sa.Column('id', sa.String(length=35), nullable=False),
    sa.Column('name', sa.String(length=140), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], ),
    sa.PrimaryKeyConstraint('client_id', 'id')
    )
    op.create_table('certificates',
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=35), nullable=False),
    sa.Column('operator_id', sa.String(length=35), nullable=False),
    sa.Column('pem', sa.Text(), nullable=False),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
    sa.Column('not_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id', 'operator_id'], ['operators.client_id', 'operators.id'], ),
    sa.PrimaryKeyConstraint('fingerprint')
    )
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.create_index('ix_certificates_operator', ['client_id', 'operator_id'], unique=False)

    op.create_table('entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account', sa.String(length=34), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('journal', sa.String(length=35), nullable=False),
    sa.Column('booked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('value_date', sa.Date(), nullable=False),
    sa.Column('direction', sa.String(length=4), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('counterparty_name', sa.String(length=70), nullable=True),
    sa.Column('counterparty_account', sa.String(length=34), nullable=True),
    sa.Column('counterparty_scheme', sa.String(length=8), nullable=True),
    sa.Column('counterparty_code', sa.String(length=12), nullable=True),
    sa.Column('client_ref', sa.String(length=35), nullable=True),
    sa.Column('end_to_end_id', sa.String(length=35), nullable=True),
    sa.Column('narrative', sa.String(length=140), nullable=False),
    sa.Column('reversal', sa.Boolean(), nullable=False),
    sa.Column('payment_id', sa.String(length=35), nullable=True),
    sa.ForeignKeyConstraint(['account'], ['accounts.number'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account', 'seq', name='uq_entries_account_seq')
    )
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.create_index('ix_entries_account_booked', ['account', 'booked_at'], unique=False)

    op.create_table('grants',
    sa.Column('client_id', sa.String(length=35), nullable=False),
    sa.Column('operator_id', sa.String(length=35), nullable=False),
    sa.Column('account', sa.String(length=34), nullable=False),
    sa.Column('can_query', sa.Boolean(), nullable=False),
    sa.Column('can_pay', sa.Boolean(), nullable=False),
    sa.Column('can_approve', sa.Boolean(), nullable=False),
    sa.Column('single_limit', sa.BigInteger(), nullable=True),
    sa.Column('daily_limit', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['account'], ['accounts.number'], ),
    sa.ForeignKeyConstraint(['client_id', 'operator_id'], ['operators.client_id', 'operators.id'], ),
    sa.PrimaryKeyConstraint('client_id', 'operator_id', 'account')
    )
    op.create_table('payments',
    sa.Column('id', sa.String(length=35), nullable=False),
    sa.Column('client_id', sa.String(length=35), nullable=False),
    sa.Column('client_ref', sa.String(length=35), nullable=False),
    sa.Column('end_to_end_id', sa.String(length=35), nullable=False),
    sa.Column('batch_id', sa.String(length=35), nullable=True),
    sa.Column('debtor_account', sa.String(length=34), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('creditor_name', sa.String(length=70), nullable=False),
    sa.Column('creditor_account', sa.String(length=34), nullable=False),
    sa.Column('creditor_bank_scheme', sa.String(length=8), nullable=False),
    sa.Column('creditor_bank_code', sa.String(length=12), nullable=False),
    sa.Column('creditor_bank_name', sa.String(length=70), nullable=True),
    sa.Column('purpose', sa.String(length=60), nullable=False),
    sa.Column('remark', sa.String(length=140), nullable=True),
    sa.Column('requested_date', sa.Date(), nullable=False),
    sa.Column('urgency', sa.String(length=8), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('reason_code', sa.String(length=35), nullable=True),
    sa.Column('reason_text', sa.String(length=255), nullable=True),
    sa.Column('order_digest', sa.String(length=44), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('maker', sa.String(length=35), nullable=False),
    sa.Column('approvals_required', sa.Integer(), nullable=False),
    sa.Column('approvals_given', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['debtor_account'], ['accounts.number'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('client_id', 'client_ref', name='uq_payments_client_ref')
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index('ix_payments_daily', ['client_id', 'maker', 'debtor_account', 'created_at'], unique=False)

    op.create_table('holds',
    sa.Column('payment_id', sa.String(length=35), nullable=False),
    sa.Column('account', sa.String(length=34), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('placed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account'], ['accounts.number'], ),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], ),
    sa.PrimaryKeyConstraint('payment_id')
    )
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.create_index('ix_holds_account', ['account', 'placed_at'], unique=False)

    op.create_table('payment_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('payment_id', sa.String(length=35), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('from_state', sa.String(length=20), nullable=True),
    sa.Column('to_state', sa.String(length=20), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('payment_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_events_payment_id'), ['payment_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('payment_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_events_payment_id'))

    op.drop_table('payment_events')
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.drop_index('ix_holds_account')

    op.drop_table('holds')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('ix_payments_daily')

    op.drop_table('payments')
    op.drop_table('grants')
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.drop_index('ix_entries_account_booked')

    op.drop_table('entries')
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.drop_index('ix_certificates_operator')

    op.drop_table('certificates')
    op.drop_table('operators')
    op.drop_table('accounts')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_received_at'))

    op.drop_table('messages')
    op.drop_table('clients')
    op.drop_table('audit_log')
