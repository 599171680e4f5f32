"""Engine factory: SQLite for the embedded default, PostgreSQL by URL, and migrations to head."""
from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """Create an engine tuned for a payment ledger on the dialect the URL names."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20)
    event.listen(engine, "connect", _postgresql_on_connect)
    event.listen(engine, "checkout", _closed_by_the_server)
    return engine


def _closed_by_the_server(dbapi_conn, _record, _proxy) -> None:
    """pool_pre_ping's job without its round trip (4% of a BalanceQuery's CPU in cProfile): a connection the
    server closed while it sat in the pool (a restart, pg_terminate_backend) has something to read, the
    server's notice or the end of the stream; a live idle one has nothing. The pool then opens a new one.
    A connection lost in use is the request path's to retry (pipeline._transient)."""
    if not dbapi_conn.closed:
        poll = select.poll()
        poll.register(dbapi_conn.fileno(), select.POLLIN)
        if not poll.poll(0):
            return
    raise DisconnectionError("the server closed this connection while it sat in the pool")


def _postgresql_on_connect(dbapi_conn, _record) -> None:
    # Every statement here is prepared after a few runs and runs with bound parameters on indexed keys. Left
    # to choose, PostgreSQL keeps planning the rules' facts query anew for every payment (about 0.8 ms: its
    # guess at a generic plan's cost is pessimistic), where the generic plan is as good and free.
    with dbapi_conn.cursor() as cur:
        cur.execute("SET plan_cache_mode = force_generic_plan")
    dbapi_conn.commit()


def _sqlite_on_connect(dbapi_conn, _record) -> None:
    # Take over transaction control from the sqlite3 module, so BEGIN IMMEDIATE below is ours.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # WAL with NORMAL may lose a committed payment on power loss; FULL does not (security.md section 3).
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


READ_ONLY = {"directlink_read_only": True}


def _sqlite_on_begin(conn) -> None:
    # Writers take the write lock at the start: a deferred transaction that later upgrades can deadlock.
    # Readers (connections opened with read_only()) begin deferred, so they never queue behind writers.
    if conn.get_execution_options().get("directlink_read_only"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def read_only(engine: Engine) -> Iterator[Connection]:
    """A connection for reading only: on SQLite it does not take the write lock (WAL readers never block).

    It ends with COMMIT, not ROLLBACK: nothing was written either way, but psycopg forgets every prepared
    statement of a connection that rolls back, and the pool hands that connection to the payment path next,
    whose statements would then all be planned anew (about 0.1-1 ms each on PostgreSQL)."""
    with engine.connect().execution_options(**READ_ONLY) as conn:
        yield conn
        conn.commit()


MIGRATION_LOCK = 0x444C4D49   # an arbitrary, fixed advisory-lock key ("DLMI")


def migrate(engine: Engine, to: str = "head") -> None:
    """Bring the database to the newest schema, or to revision `to` (idempotent; safe to run at every start).

    On PostgreSQL an advisory lock makes replicas that start together migrate one after the other:
    the first upgrades, the others then find nothing to do."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, to)
