"""reconciliation in the console: recon_runs (each run, its inputs and report) and recon_decisions (pairs a
person confirmed or matched by hand, used by the next runs)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 20:45:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'recon_runs',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('client_id', sa.String(length=35), nullable=False),
        sa.Column('operator_id', sa.String(length=35), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('accounts', sa.String(length=400), nullable=False),
        sa.Column('statement_name', sa.String(length=200), nullable=False),
        sa.Column('items_name', sa.String(length=200), nullable=False),
        sa.Column('statement_data', sa.LargeBinary(), nullable=False),
        sa.Column('items_data', sa.LargeBinary(), nullable=False),
        sa.Column('summary', sa.Text(), nullable=False),
        sa.Column('report', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_recon_runs_client', 'recon_runs', ['client_id', 'id'])
    op.create_table(
        'recon_decisions',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('client_id', sa.String(length=35), nullable=False),
        sa.Column('line_key', sa.String(length=120), nullable=False),
        sa.Column('item_key', sa.String(length=120), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('operator_id', sa.String(length=35), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('client_id', 'line_key', name='uq_recon_decisions_line'),
        sa.UniqueConstraint('client_id', 'item_key', name='uq_recon_decisions_item'),
    )


def downgrade() -> None:
    op.drop_table('recon_decisions')
    op.drop_index('ix_recon_runs_client', table_name='recon_runs')
    op.drop_table('recon_runs')
