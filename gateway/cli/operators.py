"""`operators`: disable an operator at once, or enable them again (the bank's answer to a lost key or a
leaver, before the certificates and grants are sorted out)."""
from __future__ import annotations

from pathlib import Path

import typer

from gateway.cli.common import Home, fail, migrated, now

operators_app = typer.Typer(help="Operators: disable at once, enable again.", no_args_is_help=True)


@operators_app.command("disable")
def operators_disable(client: str, operator: str, home: Home = Path(".")) -> None:
    """Refuse every request of OPERATOR from the next one on, on every replica (PERMISSION_DENIED); audited."""
    _set(client, operator, False, home)


@operators_app.command("enable")
def operators_enable(client: str, operator: str, home: Home = Path(".")) -> None:
    """Let a disabled OPERATOR's requests through again (grants and certificates as they are); audited."""
    _set(client, operator, True, home)


def _set(client: str, operator: str, enabled: bool, home: Path) -> None:
    from gateway import directory
    _, engine = migrated(home)
    state = "enabled" if enabled else "disabled"
    try:
        with engine.begin() as conn:
            changed = directory.set_operator_enabled(conn, client, operator, enabled, now())
    except ValueError as err:
        fail(str(err))
    typer.echo(f"{client}/{operator} {state}" if changed else f"{client}/{operator} was already {state}")
