"""notifications: per-client subscriptions and the transactional outbox

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'notify_subscriptions',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('client_id', sa.String(length=35), nullable=False),
        sa.Column('url', sa.String(length=500), nullable=False),
        sa.Column('kinds', sa.String(length=40), nullable=False),
        sa.Column('account', sa.String(length=34), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['client_id'], ['clients.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_notify_subscriptions_client_id', 'notify_subscriptions', ['client_id'])
    op.create_table(
        'outbox_events',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('event_id', sa.String(length=80), nullable=False),
        sa.Column('subscription_id', sa.Integer(), nullable=False),
        sa.Column('client_id', sa.String(length=35), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('payload', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('lease', sa.String(length=80), nullable=True),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(['subscription_id'], ['notify_subscriptions.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('event_id', 'subscription_id', name='uq_outbox_event_subscription'),
    )
    op.create_index('ix_outbox_due', 'outbox_events', ['state', 'due_at'])


def downgrade() -> None:
    op.drop_index('ix_outbox_due', table_name='outbox_events')
    op.drop_table('outbox_events')
    op.drop_index('ix_notify_subscriptions_client_id', table_name='notify_subscriptions')
    op.drop_table('notify_subscriptions')
