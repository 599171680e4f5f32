"""`db`: the database schema."""
from __future__ import annotations

from pathlib import Path

import typer

from gateway.cli.common import Home, migrated

db_app = typer.Typer(help="The database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(home: Home = Path(".")) -> None:
    """Migrate the database to the newest schema (serve does this too, under a lock; run it once first
    when rolling out a new version to several replicas)."""
    migrated(home)
    typer.echo("database is at the newest schema")
