"""`grants list`: who may do what on which account, per client or per account (set with `config grant` or
a directory file)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import Home, current, fail
from gateway.cli.listing import Json, show

grants_app = typer.Typer(help="Operators' grants and limits on accounts (set with `config grant`).",
                         no_args_is_help=True)


@grants_app.command("list")
def grants_list(client: Annotated[str | None, typer.Option(help="only this client's grants")] = None,
                account: Annotated[str | None, typer.Option(help="only grants on this account")] = None,
                home: Home = Path("."), as_json: Json = False) -> None:
    """List grants: operator, account, permissions and limits (single, daily, approve)."""
    from sqlalchemy import select

    from domain.money import Money
    from gateway.storage.tables import accounts, grants
    _, engine = current(home)
    query = (select(grants, accounts.c.currency).join(accounts, accounts.c.number == grants.c.account)
             .order_by(grants.c.client_id, grants.c.account, grants.c.operator_id))
    if client:
        query = query.where(grants.c.client_id == client)
    if account:
        query = query.where(grants.c.account == account)
    with engine.connect() as conn:
        found = conn.execute(query).all()
    if not found and account and client is None:
        with engine.connect() as conn:
            if conn.execute(select(accounts.c.number).where(accounts.c.number == account)).first() is None:
                fail(f"no account {account}: `directlink config accounts` lists them")

    def limit(minor: int | None, currency: str) -> str | None:
        return None if minor is None else Money.from_minor(minor, currency).text()
    rows = [{"client": r.client_id, "operator": r.operator_id, "account": r.account,
             "permissions": [p for p, on in (("query", r.can_query), ("pay", r.can_pay),
                                             ("approve", r.can_approve)) if on],
             "currency": r.currency, "single_limit": limit(r.single_limit, r.currency),
             "daily_limit": limit(r.daily_limit, r.currency), "approve_limit": limit(r.approve_limit, r.currency)}
            for r in found]

    def line(r: dict) -> str:
        limits = ", ".join(f"{name} {r[f'{name}_limit']}" for name in ("single", "daily", "approve")
                           if r[f"{name}_limit"] is not None)
        return (f"{r['client']}/{r['operator']:<10} {r['account']:<20} {','.join(r['permissions']) or '-':<18} "
                f"{r['currency']} {limits or 'no limits'}")
    show(rows, line, as_json, "no grants")
