"""a payment keeps the PmtInfId of the pain.001 block it came in, for the pain.002s: payments.payment_info_id

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 19:45:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for every payment before it and for those that came in no pain.001 (a PaymentOrder, a Kingdee
    # file): their pain.002 names the block as before.
    with op.batch_alter_table('payments') as batch:
        batch.add_column(sa.Column('payment_info_id', sa.String(length=35), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payments') as batch:
        batch.drop_column('payment_info_id')
