"""`notify`: notifications to ERPs, their subscriptions, delivery and dead letters (docs/notifications.md)."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli.common import Home, current, fail, migrated, now
from gateway.cli.listing import Json, show
from gateway.settings import Settings

notify_app = typer.Typer(help="Notifications to ERPs: subscriptions, delivery, dead letters (docs/notifications.md).",
                         no_args_is_help=True)


@notify_app.command("subscribe")
def notify_subscribe(client: str, url: str,
                     kinds: Annotated[str, typer.Option(help="comma list of payment,credit")] = "payment,credit",
                     account: Annotated[str | None, typer.Option(help="only this account's events")] = None,
                     home: Home = Path(".")) -> None:
    """Send CLIENT's payment state changes and/or incoming credits to URL (signed XML by POST). A URL no
    notification would ever reach (a loopback or private address without notify_private_addresses, http://
    with notify_https_only) is refused."""
    from gateway.notify import subscriptions
    settings, engine = migrated(home)
    _check_reachable(url, settings)
    try:
        with engine.begin() as conn:
            sub = subscriptions.subscribe(conn, client, url, kinds, account, now())
    except subscriptions.SubscriptionError as err:
        fail(str(err))
    typer.echo(f"subscribed {sub.describe()}")


def _check_reachable(url: str, settings: Settings) -> None:
    from gateway.notify.delivery import undeliverable
    from gateway.notify.subscriptions import SubscriptionError, check_url
    try:
        check_url(url)
    except SubscriptionError as err:
        fail(str(err))
    refusal, warning = undeliverable(url, settings)
    if refusal is not None:
        fail(f"{url}: {refusal}")
    if warning is not None:
        typer.echo(f"warning: {warning}; each delivery tries again", err=True)


@notify_app.command("update")
def notify_update(subscription: int, url: str | None = None,
                  kinds: Annotated[str | None, typer.Option(help="comma list of payment,credit")] = None,
                  account: Annotated[str | None, typer.Option(help='only this account ("" for all)')] = None,
                  active: Annotated[bool | None, typer.Option("--active/--inactive")] = None,
                  home: Home = Path(".")) -> None:
    """Change a subscription's URL, kinds, account filter, or switch it off and on."""
    from gateway.notify import subscriptions
    settings, engine = migrated(home)
    if url is not None:
        _check_reachable(url, settings)
    changes = {"url": url, "kinds": kinds, "active": active, **({"account": account} if account is not None else {})}
    try:
        with engine.begin() as conn:
            sub = subscriptions.change(conn, subscription, now(), **changes)
    except subscriptions.SubscriptionError as err:
        fail(str(err))
    typer.echo(f"changed {sub.describe()}")


@notify_app.command("list")
def notify_list(client: str | None = None, home: Home = Path("."), as_json: Json = False) -> None:
    """List subscriptions with their delivery state (healthy, failing, dead letters, inactive), what waits,
    the last error and the next attempt."""
    from gateway.notify import health, subscriptions
    _, engine = current(home)
    with engine.connect() as conn:
        subs = subscriptions.listing(conn, client)
        states = health.by_subscription(conn)
    rows = []
    for sub in subs:
        h = states.get(sub.id, health.Health())
        rows.append({"id": sub.id, "client": sub.client_id, "url": sub.url, "kinds": sorted(sub.kinds),
                     "account": sub.account, "active": sub.active, "state": h.state(sub.active),
                     "pending": h.pending, "retrying": h.retrying, "dead": h.dead,
                     "next_attempt": h.next_attempt, "last_error": h.last_error})

    def line(r: Mapping[str, Any]) -> str:
        text = (f"#{r['id']} {r['client']} {','.join(r['kinds'])} {r['account'] or '(all accounts)'} {r['url']} "
                f"{'active' if r['active'] else 'inactive'}: {r['state']}")
        if r["pending"] or r["dead"]:
            text += f", {r['pending']} pending ({r['retrying']} retrying), {r['dead']} dead"
        if r["next_attempt"] is not None:
            text += f", next attempt {r['next_attempt']:%Y-%m-%d %H:%M:%S}Z"
        if r["last_error"] and r["state"] != health.HEALTHY:
            text += f"; last error: {r['last_error']}"
        return text
    show(rows, line, as_json, "no subscriptions: `directlink notify subscribe` adds one")


@notify_app.command("run")
def notify_run(home: Home = Path(".")) -> None:
    """Deliver every notification that is due now (the same job `serve` runs) and print what happened."""
    from gateway.app import build_gateway
    from gateway.notify.delivery import Delivery
    gateway = build_gateway(Settings.load(home))
    done = Delivery(gateway.engine, gateway.settings, gateway.signer).run_once()
    typer.echo(", ".join(f"{n} {what}" for what, n in sorted(done.items())) or "nothing due")


@notify_app.command("dead")
def notify_dead(client: str | None = None, home: Home = Path("."), as_json: Json = False) -> None:
    """List dead letters: notifications given up on after all retries (replay them with `notify replay`)."""
    from gateway.notify.delivery import dead_letters
    _, engine = current(home)
    with engine.connect() as conn:
        found = dead_letters(conn, client)
    rows = [{"id": r.id, "client": r.client_id, "event_id": r.event_id, "subscription": r.subscription_id,
             "attempts": r.attempts, "created_at": r.created_at, "last_error": r.last_error} for r in found]
    show(rows, lambda r: (f"#{r['id']} {r['client']} {r['event_id']} to subscription #{r['subscription']}, "
                          f"{r['attempts']} attempt(s), since {r['created_at']:%Y-%m-%d %H:%M:%S}Z: {r['last_error']}"),
         as_json, "no dead letters")
    if rows and not as_json:
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
