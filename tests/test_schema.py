"""The migrations build exactly the schema that gateway/storage/tables.py describes (the code reads and
writes by the latter, the databases are made by the former), on SQLite and PostgreSQL."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gateway.storage.engine import make_engine, migrate
from gateway.storage.tables import metadata


def test_the_migrated_schema_is_the_one_the_code_describes(db_url):
    engine = make_engine(db_url)
    migrate(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert differences == []
