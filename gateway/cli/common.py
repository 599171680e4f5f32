"""What the commands share: the --home option, the clock, failing, and opening the home's database."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from sqlalchemy import Engine

from gateway.settings import Settings
from gateway.storage.engine import make_engine, migrate

Home = Annotated[Path, typer.Option("--home", envvar="DIRECTLINK_HOME", help="the gateway's home directory")]


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def migrated(home: Path) -> tuple[Settings, Engine]:
    """The home's settings and database, migrated to the newest schema: for commands that write."""
    settings = Settings.load(home)
    engine = make_engine(settings.db_url)
    migrate(engine)
    return settings, engine

