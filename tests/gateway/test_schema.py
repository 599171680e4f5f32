"""The migrations build exactly the schema that gateway/storage/tables.py describes (the code reads and
writes by the latter, the databases are made by the former), on SQLite and PostgreSQL."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import database_before

from gateway.storage.engine import make_engine, migrate
from gateway.storage.tables import metadata


def test_the_migrated_schema_is_the_one_the_code_describes(db_url):
    engine = make_engine(db_url)
    migrate(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert differences == []


def test_a_client_ref_is_looked_up_by_its_own_index_before_any_statistics(pg_url):
    """On a new database PostgreSQL has no statistics yet, and an index leading with client_id looked as good
    to it as the ClientRef's own unique index: it then read every payment of the client at each lookup, until
    autovacuum first analysed the table. Only uq_payments_client_ref leads with client_id."""
    from gateway.payments import _BY_REFS
    engine = make_engine(pg_url)
    migrate(engine)
    sql = str(_BY_REFS.params(client="DEMO", refs=["R-1", "R-2"]).compile(
        dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + sql).scalars())
    engine.dispose()
    assert "uq_payments_client_ref" in plan, plan


def test_payments_made_before_the_payment_info_id_upgrade_read_back_without_one(tmp_path):
    """Migration 0015 adds payments.payment_info_id; the payments already stored keep all they had, with no
    PmtInfId (their pain.002 names the block after the original message, as it did)."""
    import datetime as dt

    from sqlalchemy import select

    from gateway.payment_record import PaymentRecord
    from gateway.payments import status_of
    from gateway.storage.tables import payments
    at = dt.datetime(2026, 11, 25, 9, 30, tzinfo=dt.UTC)
    engine = database_before(tmp_path, "0013", [(at, 1234, "SETTLED", "m")])
    migrate(engine)
    with engine.connect() as conn:
        record = PaymentRecord.from_row(conn.execute(select(payments)).one())
    engine.dispose()
    status = status_of(record)
    assert (record.id, record.amount, record.created_at, record.payment_info_id) == ("P0", 1234, at, None)
    assert (status.client_ref, status.state, status.payment_info_id) == ("P0", "SETTLED", None)
