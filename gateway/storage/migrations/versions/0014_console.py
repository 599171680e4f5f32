"""the treasury console (issue 26): security keys, enrolment links, WebAuthn challenges, sessions

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 19:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_OPERATOR = ('client_id', 'operator_id'), ('operators.client_id', 'operators.id')


def upgrade() -> None:
    op.create_table(
        'console_credentials',
        sa.Column('id', sa.String(length=255), nullable=False),
        sa.Column('client_id', sa.String(length=35), nullable=False),
        sa.Column('operator_id', sa.String(length=35), nullable=False),
        sa.Column('public_key', sa.LargeBinary(), nullable=False),
        sa.Column('sign_count', sa.BigInteger(), nullable=False),
        sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(*_OPERATOR),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_console_credentials_operator', 'console_credentials', ['client_id', 'operator_id'])
    op.create_table(
        'console_enrolments',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('client_id', sa.String(length=35), nullable=False),
        sa.Column('operator_id', sa.String(length=35), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(*_OPERATOR),
        sa.PrimaryKeyConstraint('token_hash'),
    )
    op.create_table(
        'console_challenges',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('purpose', sa.String(length=8), nullable=False),
        sa.Column('client_id', sa.String(length=35), nullable=False),
        sa.Column('operator_id', sa.String(length=35), nullable=False),
        sa.Column('challenge', sa.LargeBinary(), nullable=False),
        sa.Column('statement', sa.Text(), nullable=True),
        sa.Column('session_hash', sa.String(length=64), nullable=True),
        sa.Column('address', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_console_challenges_operator', 'console_challenges',
                    ['client_id', 'operator_id', 'purpose', 'created_at'])
    op.create_table(
        'console_sessions',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('client_id', sa.String(length=35), nullable=False),
        sa.Column('operator_id', sa.String(length=35), nullable=False),
        sa.Column('credential_id', sa.String(length=255), nullable=False),
        sa.Column('csrf', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('token_hash'),
    )
    op.create_index('ix_console_sessions_operator', 'console_sessions', ['client_id', 'operator_id'])


def downgrade() -> None:
    for table in ('console_sessions', 'console_challenges', 'console_enrolments', 'console_credentials'):
        op.drop_table(table)
