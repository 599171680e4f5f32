"""`config`: the directory of clients, accounts, operators, certificates and grants, and approval policies."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import Home, current, fail, home_settings, migrated, now
from gateway.cli.listing import Json, show

config_app = typer.Typer(help="Clients, accounts, operators, certificates and grants.", no_args_is_help=True)


def _refused() -> tuple[type[Exception], ...]:
    """What a directory change refuses with, nothing changed: a bad value or an unknown operator or account
    (ValueError), or an amount or currency the gateway does not take (PaymentRejected; imported here, not at
    the top: see common.py). A row the database's keys still refuse is gateway/cli/errors.py's."""
    from domain.errors import PaymentRejected
    return ValueError, PaymentRejected


@config_app.command("apply")
def config_apply(file: Path, home: Home = Path(".")) -> None:
    """Apply a directory TOML file (clients, accounts, operators, certificates, grants)."""
    import tomllib

    from gateway.setup import apply_directory
    settings = home_settings(home)   # outside the try: its own mistakes are the settings file's, not FILE's
    try:
        counts = apply_directory(settings, file)
    except tomllib.TOMLDecodeError as err:
        fail(f"{file} is not valid TOML ({err}): fix the file")
    except KeyError as err:
        fail(f"{file}: an entry lacks {err}: config/directory.toml shows the keys each kind of entry has")
    except _refused() as err:
        fail(f"{file}: {err}; nothing was applied")
    typer.echo(", ".join(f"{v} {k}" for k, v in counts.items()))


@config_app.command("grant")
def config_grant(client: str, operator: str, account: str,
                 permissions: Annotated[str, typer.Option(help="comma list of query,pay,approve; empty revokes")],
                 single_limit: str | None = None, daily_limit: str | None = None,
                 approve_limit: str | None = None, home: Home = Path(".")) -> None:
    """Set an operator's grants and limits on one account."""
    from gateway import directory
    _, engine = migrated(home)
    rights = {p.strip() for p in permissions.split(",") if p.strip()}
    try:
        with engine.begin() as conn:
            directory.set_grant(conn, client, operator, account, rights, single_limit, daily_limit, now(),
                                approve_limit)
    except _refused() as err:
        fail(str(err))
    typer.echo(f"{client}/{operator} on {account}: {sorted(rights) or 'no grants'}")


@config_app.command("accounts")
def config_accounts(home: Home = Path("."), as_json: Json = False) -> None:
    """List accounts with booked, held and available balances."""
    from sqlalchemy import select

    from domain.money import Money
    from gateway.storage.tables import accounts
    _, engine = current(home)
    with engine.connect() as conn:
        found = conn.execute(select(accounts).order_by(accounts.c.client_id, accounts.c.number)).all()
    rows = [{"client": r.client_id, "account": r.number, "currency": r.currency, "name": r.name,
             **{k: Money.from_minor(m, r.currency).text() for k, m in (("booked", r.booked), ("held", r.held),
                                                                      ("available", r.booked - r.held))}}
            for r in found]
    show(rows, lambda r: (f"{r['client'] or '(bank)':<8} {r['account']:<20} {r['currency']} booked "
                          f"{r['booked']:>16} held {r['held']:>14} available {r['available']:>16}  {r['name']}"),
         as_json, "no accounts: `directlink config apply` adds them")


@config_app.command("policy")
def config_policy(client: str, threshold: str, approvals: int,
                  account: Annotated[str, typer.Option(help="default: every account of the client")] = "",
                  currency: Annotated[str, typer.Option(help="for client-wide tiers")] = "CNY",
                  home: Home = Path(".")) -> None:
    """Payments at or above THRESHOLD need APPROVALS distinct approvers (0 removes the tier)."""
    from gateway import directory
    _, engine = migrated(home)
    try:
        with engine.begin() as conn:
            directory.set_approval_policy(conn, client, account, threshold, approvals, now(), currency)
    except _refused() as err:
        fail(str(err))
    typer.echo(f"{client} {account or '(all accounts)'} >= {threshold}: {approvals} approval(s)")
