"""an operator can be disabled at once (`directlink operators disable`): operators.disabled_at

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 17:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: enabled. Every request reads it in its first statement (gateway/pipeline.py), not through the
    # configuration cache, so it needs no trigger of migration 0010.
    with op.batch_alter_table('operators') as batch:
        batch.add_column(sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('operators') as batch:
        batch.drop_column('disabled_at')
