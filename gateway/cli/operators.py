"""`operators`: disable an operator at once, or enable them again (the bank's answer to a lost key or a
leaver, before the certificates and grants are sorted out)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import Home, current, fail, migrated, now
from gateway.cli.listing import Json, show

operators_app = typer.Typer(help="Operators: list, disable at once, enable again; enrol a security key for the console.",
                            no_args_is_help=True)


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


@operators_app.command("enrol")
def operators_enrol(client: str, operator: str, home: Home = Path("."),
                    hours: Annotated[float, typer.Option(help="how long the link stays valid")] = 24.0,
                    url: Annotated[str | None, typer.Option(help="the console's address (default: the "
                                                             "console_origin setting, else http://localhost:8080)")] = None,
                    ) -> None:
    """Print a one-time link with which OPERATOR registers a security key or passkey for the treasury
    console (docs/console.md); audited. Give it to the operator over a channel you trust."""
    from gateway.console import keys
    settings, engine = migrated(home)
    if not 0 < hours <= 24 * 30:
        fail("--hours must be more than 0 and at most 720 (30 days)")
    try:
        with engine.begin() as conn:
            token, expires = keys.new_enrolment(conn, client, operator, now(), hours)
    except ValueError as err:
        fail(str(err))
    base = (url or settings.console_origin or "http://localhost:8080").rstrip("/")
    typer.echo(f"{base}/console/enrol/{token}")
    typer.echo(f"one-time enrolment link for {client}/{operator}, valid until {expires.isoformat(timespec='seconds')}")


@operators_app.command("revoke-keys")
def operators_revoke_keys(client: str, operator: str, home: Home = Path(".")) -> None:
    """Revoke every console security key of OPERATOR (a key lost): their console sessions end at once and they
    sign in again only with a key enrolled anew; audited. Their certificates and the XML protocol are untouched."""
    from gateway.console import keys
    _, engine = migrated(home)
    try:
        with engine.begin() as conn:
            count = keys.revoke_all(conn, client, operator, now())
    except ValueError as err:
        fail(str(err))
    typer.echo(f"{count} security key(s) of {client}/{operator} revoked")


@operators_app.command("list")
def operators_list(client: Annotated[str | None, typer.Option(help="only this client's operators")] = None,
                   home: Home = Path("."), as_json: Json = False) -> None:
    """List operators: enabled or disabled, their active certificates and the accounts they hold grants on."""
    from sqlalchemy import func, select

    from gateway.storage.tables import certificates, grants, operators
    _, engine = current(home)
    at = now()
    certs = (select(certificates.c.client_id, certificates.c.operator_id, func.count().label("n"))
             .where(certificates.c.revoked_at.is_(None), certificates.c.not_after > at,
                    certificates.c.not_before <= at)
             .group_by(certificates.c.client_id, certificates.c.operator_id))
    granted = (select(grants.c.client_id, grants.c.operator_id, func.count().label("n"))
               .group_by(grants.c.client_id, grants.c.operator_id))
    query = select(operators).order_by(operators.c.client_id, operators.c.id)
    if client:
        query = query.where(operators.c.client_id == client)
    with engine.connect() as conn:
        found = conn.execute(query).all()
        cert_counts = {(r.client_id, r.operator_id): r.n for r in conn.execute(certs)}
        grant_counts = {(r.client_id, r.operator_id): r.n for r in conn.execute(granted)}
    rows = [{"client": r.client_id, "operator": r.id, "name": r.name,
             "state": "disabled" if r.disabled_at else "enabled", "disabled_at": r.disabled_at,
             "certificates": cert_counts.get((r.client_id, r.id), 0),
             "accounts": grant_counts.get((r.client_id, r.id), 0)} for r in found]
    show(rows, lambda r: (f"{r['client']}/{r['operator']:<12} {r['state']:<8} {r['certificates']} valid "
                          f"certificate(s), grants on {r['accounts']} account(s)  {r['name']}"),
         as_json, f"no operators{f' of {client}' if client else ''}")
