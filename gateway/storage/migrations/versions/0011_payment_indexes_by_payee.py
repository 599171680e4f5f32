"""the payee and maker indexes of payments lead with the account, not the client

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 16:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

GONE = "state IN ('CANCELLED', 'FAILED', 'REJECTED', 'RETURNED')"
# Until PostgreSQL has statistics (a new database, before autovacuum's first ANALYZE), an index that leads
# with client_id looks as good to it as uq_payments_client_ref for a ClientRef lookup, and it read every
# payment of the client at each one. Every read of these indexes names the client and the account (or the
# payee's name key) alike, so leading with the account costs them nothing, and the ClientRef's own index is
# the only one that leads with client_id.
PLAIN = {
    'ix_payments_payee_account': (['creditor_account', 'client_id', 'created_at', 'state', 'amount', 'currency'],
                                  ['client_id', 'creditor_account', 'created_at', 'state', 'amount', 'currency']),
    'ix_payments_payee_name': (['creditor_key', 'client_id', 'created_at'],
                               ['client_id', 'creditor_key', 'created_at']),
    'ix_payments_payee_amount': (['creditor_account', 'client_id', 'amount', 'created_at'],
                                 ['client_id', 'creditor_account', 'amount', 'created_at']),
}
PARTIAL = {
    'ix_payments_gone_payee': (['creditor_account', 'client_id', 'created_at', 'state', 'currency', 'amount'],
                               ['client_id', 'creditor_account', 'created_at', 'state', 'currency', 'amount']),
    'ix_payments_gone_maker': (['debtor_account', 'maker', 'client_id', 'created_at', 'state', 'amount'],
                               ['client_id', 'maker', 'debtor_account', 'created_at', 'state', 'amount']),
}


def _rebuild(which: int) -> None:
    for name, columns in PLAIN.items():
        op.drop_index(name, 'payments')
        op.create_index(name, 'payments', columns[which])
    for name, columns in PARTIAL.items():
        op.drop_index(name, 'payments')
        op.create_index(name, 'payments', columns[which], sqlite_where=sa.text(GONE), postgresql_where=sa.text(GONE))


def upgrade() -> None:
    _rebuild(0)


def downgrade() -> None:
    _rebuild(1)
