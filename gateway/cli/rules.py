"""`rules`: the fund-flow rules every payment passes before acceptance, block lists, and known payees."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import Home, current, fail, migrated, now
from gateway.cli.listing import Json, show

rules_app = typer.Typer(help="Fund-flow rules that every payment passes before acceptance.", no_args_is_help=True)
payee_app = typer.Typer(help="Registered counterparties (the allow-list; known payees).", no_args_is_help=True)
rules_app.add_typer(payee_app, name="payee")


def _rule_params(pairs: list[str]) -> dict:
    """KEY=VALUE pairs; a value starting with { or [ is JSON (windows={"URGENT":"09:00-16:00"})."""
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            fail(f"--param {pair!r} is not KEY=VALUE")
        try:
            params[name] = json.loads(value) if value[:1] in "{[" else value
        except ValueError as err:
            fail(f"--param {name}: {err}")
    return params


@rules_app.command("set")
def rules_set(client: str, rule: Annotated[str, typer.Argument(help="e.g. duplicate, new_payee, velocity")],
              param: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable")] = None,
              account: Annotated[str, typer.Option(help="default: every account of the client")] = "",
              home: Home = Path(".")) -> None:
    """Declare a rule (replacing its earlier parameters); see docs/rules.md for each rule's parameters."""
    from gateway import rulebook
    _, engine = migrated(home)
    try:
        with engine.begin() as conn:
            parsed = rulebook.set_rule(conn, client, account, rule, _rule_params(param or []), now())
    except ValueError as err:
        fail(str(err))
    typer.echo(f"{client} {account or '(all accounts)'} {rule}: {parsed.model_dump_json()}")


@rules_app.command("remove")
def rules_remove(client: str, rule: str, account: str = "", home: Home = Path(".")) -> None:
    """Remove a rule declared for the client (or for one account with --account)."""
    from gateway import rulebook
    _, engine = migrated(home)
    with engine.begin() as conn:
        if not rulebook.remove_rule(conn, client, account, rule, now()):
            fail(f"no rule {rule} for {client} {account or '(all accounts)'}")
    typer.echo(f"removed {rule} for {client} {account or '(all accounts)'}")


@rules_app.command("list")
def rules_list(client: str, home: Home = Path("."), as_json: Json = False) -> None:
    """The client's rules with their parameters ('*': every account of the client)."""
    from gateway import rulebook
    _, engine = current(home)
    with engine.connect() as conn:
        rows = [{"account": account or None, "rule": rule, "params": params}
                for account, rule, params in rulebook.list_rules(conn, client)]
    show(rows, lambda r: f"{r['account'] or '*':<20} {r['rule']:<16} {json.dumps(r['params'], ensure_ascii=False)}",
         as_json, f"no rules for {client}: every payment passes the built-in checks only (docs/rules.md)")


@rules_app.command("block-list")
def rules_block_list(file: Annotated[Path, typer.Argument(help="CSV (name,account columns) or JSON")],
                     name: Annotated[str, typer.Option(help="the list's name; loading replaces it")],
                     client: Annotated[str, typer.Option(help="default: every client")] = "",
                     home: Home = Path(".")) -> None:
    """Load (replace) a block list: payees matching a name (Chinese or pinyin) or an account are refused."""
    from gateway import rulebook
    _, engine = migrated(home)
    try:
        with engine.begin() as conn:
            count = rulebook.load_block_list(conn, file, name, client, now())
    except (OSError, ValueError) as err:
        fail(str(err))
    typer.echo(f"block list {name}: {count} entries for {client or 'all clients'}")


@payee_app.command("add")
def payee_add(client: str, name: str, account: str, home: Home = Path(".")) -> None:
    """Register a counterparty of CLIENT."""
    from gateway import rulebook
    _, engine = migrated(home)
    try:
        with engine.begin() as conn:
            rulebook.add_counterparty(conn, client, name, account, now())
    except ValueError as err:
        fail(str(err))
    typer.echo(f"{client}: counterparty {name} {account}")


@payee_app.command("remove")
def payee_remove(client: str, account: str, home: Home = Path(".")) -> None:
    """Remove a registered counterparty of CLIENT (by its account); payments to it count as new payees again."""
    from gateway import rulebook
    _, engine = migrated(home)
    with engine.begin() as conn:
        if not rulebook.remove_counterparty(conn, client, account, now()):
            fail(f"{account} is not a counterparty of {client}")
    typer.echo(f"{client}: removed counterparty {account}")
