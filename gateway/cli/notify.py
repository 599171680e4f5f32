"""`notify`: notifications to ERPs, their subscriptions, delivery and dead letters (docs/notifications.md)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import Home, current, fail, migrated, now
from gateway.settings import Settings

notify_app = typer.Typer(help="Notifications to ERPs: subscriptions, delivery, dead letters (docs/notifications.md).",
                         no_args_is_help=True)


@notify_app.command("subscribe")
def notify_subscribe(client: str, url: str,
                     kinds: Annotated[str, typer.Option(help="comma list of payment,credit")] = "payment,credit",
                     account: Annotated[str | None, typer.Option(help="only this account's events")] = None,
                     home: Home = Path(".")) -> None:
    """Send CLIENT's payment state changes and/or incoming credits to URL (signed XML by POST)."""
    from gateway.notify import subscriptions
    _, engine = migrated(home)
    try:
        with engine.begin() as conn:
            sub = subscriptions.subscribe(conn, client, url, kinds, account, now())
    except subscriptions.SubscriptionError as err:
        fail(str(err))
    typer.echo(f"subscribed {sub.describe()}")


@notify_app.command("update")
def notify_update(subscription: int, url: str | None = None,
                  kinds: Annotated[str | None, typer.Option(help="comma list of payment,credit")] = None,
                  account: Annotated[str | None, typer.Option(help='only this account ("" for all)')] = None,
                  active: Annotated[bool | None, typer.Option("--active/--inactive")] = None,
                  home: Home = Path(".")) -> None:
    """Change a subscription's URL, kinds, account filter, or switch it off and on."""
    from gateway.notify import subscriptions
    _, engine = migrated(home)
    changes = {"url": url, "kinds": kinds, "active": active, **({"account": account} if account is not None else {})}
    try:
        with engine.begin() as conn:
            sub = subscriptions.change(conn, subscription, now(), **changes)
    except subscriptions.SubscriptionError as err:
        fail(str(err))
    typer.echo(f"changed {sub.describe()}")


@notify_app.command("list")
def notify_list(client: str | None = None, home: Home = Path(".")) -> None:
    """List subscriptions."""
    from gateway.notify import subscriptions
    _, engine = current(home)
    with engine.connect() as conn:
        for sub in subscriptions.listing(conn, client):
            typer.echo(sub.describe())


@notify_app.command("run")
def notify_run(home: Home = Path(".")) -> None:
    """Deliver every notification that is due now (the same job `serve` runs) and print what happened."""
    from gateway.app import build_gateway
    from gateway.notify.delivery import Delivery
    gateway = build_gateway(Settings.load(home))
    done = Delivery(gateway.engine, gateway.settings, gateway.signer).run_once()
    typer.echo(", ".join(f"{n} {what}" for what, n in sorted(done.items())) or "nothing due")


@notify_app.command("dead")
def notify_dead(client: str | None = None, home: Home = Path(".")) -> None:
    """List dead letters: notifications given up on after all retries (replay them with `notify replay`)."""
    from gateway.notify.delivery import dead_letters
    _, engine = current(home)
    with engine.connect() as conn:
        rows = dead_letters(conn, client)
    for r in rows:
        typer.echo(f"#{r.id} {r.client_id} {r.event_id} to subscription #{r.subscription_id}, {r.attempts} "
                   f"attempt(s), since {r.created_at:%Y-%m-%d %H:%M:%S}Z: {r.last_error}")
    typer.echo(f"{len(rows)} dead letter(s)")


@notify_app.command("replay")
def notify_replay(ids: Annotated[list[int] | None, typer.Argument(help="dead letter ids")] = None,
                  all_: Annotated[bool, typer.Option("--all", help="every dead letter")] = False,
                  home: Home = Path(".")) -> None:
    """Queue dead letters for delivery again (same EventId: the ERP deduplicates)."""
    from gateway.notify.delivery import replay
    if bool(ids) == all_:
        fail("give dead letter ids or --all")
    _, engine = migrated(home)
    try:
        with engine.begin() as conn:
            done = replay(conn, None if all_ else ids, now())
    except ValueError as err:
        fail(str(err))
    typer.echo(f"queued {len(done)} dead letter(s) again: run `directlink notify run` or wait for `serve`")
