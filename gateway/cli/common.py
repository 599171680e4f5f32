"""What the commands share: the --home option, the clock, failing, and opening the home's database."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from gateway.settings import SETTINGS_FILE, Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

# SQLAlchemy and Alembic are imported where a command opens the database, not here: every command imports
# this module, and they would double the start of those that never touch it (--help, send, agent).

Home = Annotated[Path, typer.Option("--home", envvar="DIRECTLINK_HOME", help="the gateway's home directory")]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def home_settings(home: Path) -> Settings:
    """The settings of a gateway home, for a command that writes there. A folder with neither a settings file
    nor its database is refused, before connecting to SQLite would leave a stray database in it."""
    from sqlalchemy.engine import make_url
    settings = Settings.load(home)
    url = make_url(settings.db_url)
    if (not (settings.home / SETTINGS_FILE).exists() and url.get_backend_name() == "sqlite" and url.database
            and not Path(url.database).exists()):
        fail(f"{settings.home} is not a gateway home (no {SETTINGS_FILE}, no database): run `directlink init` "
             "there, or give --home")
    return settings


def migrated(home: Path) -> tuple[Settings, Engine]:
    """The home's settings and database, migrated to the newest schema: for commands that write."""
    from gateway.storage.engine import make_engine, migrate
    settings = home_settings(home)
    engine = make_engine(settings.db_url)
    migrate(engine)
    return settings, engine


def current(home: Path) -> tuple[Settings, Engine]:
    """The home's settings and database for a command that only reads. It is never migrated here: a listing
    must not change the schema under running replicas (that is `db upgrade`'s job, run once, on purpose), so a
    database that is not at the newest schema fails the command, which then changes nothing."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import make_url

    from gateway.storage.engine import MIGRATIONS, make_engine, read_only
    settings = Settings.load(home)
    url = make_url(settings.db_url)
    # Connecting to a SQLite file that is not there would create it.
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        fail(f"there is no database at {url.database}: run `directlink init` or `directlink db upgrade`")
    engine = make_engine(settings.db_url)
    scripts = ScriptDirectory(str(MIGRATIONS))
    head = scripts.get_current_head()
    with read_only(engine) as conn:
        at = MigrationContext.configure(conn).get_current_revision()
    if at != head:
        engine.dispose()
        if at is not None and at not in {script.revision for script in scripts.walk_revisions()}:
            fail(f"the database is at revision {at}, newer than this directlink knows (its newest is {head})")
        fail(f"the database is at revision {at or 'none (no schema)'}, not the newest ({head}): "
             "run `directlink db upgrade`")
    return settings, engine
