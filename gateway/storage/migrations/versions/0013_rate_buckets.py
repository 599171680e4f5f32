"""abuse limits shared by the replicas: rate_buckets (gateway/limits.py)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 17:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rate_buckets',
        sa.Column('bucket', sa.String(length=72), nullable=False),
        sa.Column('tokens', sa.Float(), nullable=False),
        sa.Column('granted', sa.Integer(), nullable=False),
        sa.Column('stamp', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('bucket'),
    )


def downgrade() -> None:
    op.drop_table('rate_buckets')
