"""the configuration's version, moved on by triggers whenever the configuration requests read changes

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 07:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# What gateway/config_cache.py keeps per version: a change to any of it must move the version on. Triggers,
# not the code that writes these tables: a change made by any path, a future one or a hand-run UPDATE too,
# cannot leave a replica on a stale grant. Accounts change on every payment (their balances), so only a
# change to what the configuration reads of them (owner, name, currency) counts.
WATCHED = {
    "grants": None,
    "approval_policies": None,
    "fund_rules": None,
    "block_lists": None,
    "notify_subscriptions": None,
    "accounts": ("client_id", "name", "currency"),
}
MOVE_ON = "UPDATE config_version SET version = version + 1"


def upgrade() -> None:
    op.create_table(
        'config_version',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.execute("INSERT INTO config_version (id, version) VALUES (1, 1)")
    if op.get_bind().dialect.name == "postgresql":
        # Once per statement, however many rows it changed; the function's search path is the one it was
        # created under (the gateway's schema), whatever the session's.
        op.execute(f"CREATE FUNCTION config_changed() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT "
                   f"AS $$ BEGIN {MOVE_ON}; RETURN NULL; END $$")
        for table, columns in WATCHED.items():
            update = f"UPDATE OF {', '.join(columns)}" if columns else "UPDATE"
            truncate = "" if columns else " OR TRUNCATE"
            op.execute(f"CREATE TRIGGER config_changed AFTER INSERT OR DELETE OR {update}{truncate} ON {table} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION config_changed()")
    else:
        # SQLite has row triggers only, one per event.
        for table, columns in WATCHED.items():
            for event in ("INSERT", "DELETE", f"UPDATE OF {', '.join(columns)}" if columns else "UPDATE"):
                name = f"config_changed_{table}_{event.split()[0].lower()}"
                op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {MOVE_ON}; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER config_changed ON {table}")
        op.execute("DROP FUNCTION config_changed()")
    else:
        for table in WATCHED:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER config_changed_{table}_{event}")
    op.drop_table('config_version')
