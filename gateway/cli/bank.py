"""The embedded core bank by hand: `clearing run` (a pass of the job `serve` runs) and `sandbox credit`."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import Home, fail, migrated, now

clearing_app = typer.Typer(help="The clearing job (it also runs inside `serve`).", no_args_is_help=True)
sandbox_app = typer.Typer(help="Sandbox bookings for demos and tests.", no_args_is_help=True)


@clearing_app.command("run")
def clearing_run(home: Home = Path(".")) -> None:
    """Run one clearing pass now and print what happened."""
    from gateway.clearing import Clearing
    settings, engine = migrated(home)
    done = Clearing(engine, settings, now).run_once()
    typer.echo(", ".join(f"{n} {what}" for what, n in sorted(done.items())) or "nothing due")


@sandbox_app.command("credit")
def sandbox_credit(account: str, amount: str,
                   payer_name: Annotated[str, typer.Option(help="who paid")],
                   payer_account: Annotated[str, typer.Option(help="the payer's account at their bank")],
                   payer_bank: Annotated[str | None, typer.Option(help="CNAPS code or BIC")] = None,
                   reference: Annotated[str | None, typer.Option(help="remittance text (the narrative)")] = None,
                   end_to_end_id: Annotated[str | None, typer.Option(help="the payer's EndToEndId")] = None,
                   currency: Annotated[str | None, typer.Option(help="default: the account's")] = None,
                   value_date: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
                   home: Home = Path(".")) -> None:
    """Book an incoming transfer from another bank into ACCOUNT (it shows on statements and notifies)."""
    from domain.errors import PaymentRejected
    from gateway import sandbox
    settings, engine = migrated(home)
    try:
        with engine.begin() as conn:
            done = sandbox.credit(conn, account=account, amount=amount, currency=currency, payer_name=payer_name,
                                  payer_account=payer_account, payer_bank_code=payer_bank, reference=reference,
                                  end_to_end_id=end_to_end_id, value_date=value_date and value_date.date(),
                                  now=now(), zone=settings.zone, own_cnaps_prefix=settings.own_cnaps_prefix)
    except PaymentRejected as err:
        fail(f"{err.reason.value}: {err.detail} (nothing was booked)")
    typer.echo(f"credited {done.amount.text()} {done.amount.currency} to {done.account} ({done.client_id}): "
               f"EntryId {done.entry_id:012d}, BankRef {done.bank_ref}, booked balance "
               f"{done.amount.from_minor(done.booked, done.amount.currency).text()}")
