"""reconciliation in the console reads XLSX through a column mapping: recon_runs.columns keeps the mapping
(TOML text) a run read its workbooks through, so "run again" reads them the same way and the next upload of
this client is offered the last one used

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 21:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('recon_runs') as batch:
        batch.add_column(sa.Column('columns', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('recon_runs') as batch:
        batch.drop_column('columns')
