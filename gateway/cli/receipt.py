"""`receipt`: check an electronic receipt (signed XML, or the PDF that carries it) offline."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import fail

receipt_app = typer.Typer(help="Electronic receipts (电子回单).", no_args_is_help=True)


@receipt_app.command("verify")
def receipt_verify(
        file: Annotated[Path, typer.Argument(help="a receipt: the signed XML, or the PDF", exists=True,
                                             dir_okay=False)],
        gateway_cert: Annotated[list[Path] | None, typer.Option(
            "--gateway-cert", help="the gateway's certificate (PEM); repeat for the previous one after a key "
                                   "rotation. Default: the home's gateway certificates")] = None,
        home: Annotated[Path, typer.Option("--home", envvar="DIRECTLINK_HOME",
                                           help="a gateway home, for its certificates")] = Path("."),
) -> None:
    """Check that the gateway signed this receipt and that a PDF shows what was signed; print what it
    certifies. Exit 0 if it checks out, 1 if not (and why)."""
    from cryptography import x509

    from gateway.protocol import receipts
    from gateway.settings import Settings

    paths = gateway_cert or []
    if not paths:
        settings = Settings.load(home)
        paths = [p for p in (settings.path(settings.gateway_cert), settings.path(settings.gateway_previous_cert))
                 if p.is_file()]
        if not paths:
            fail(f"no gateway certificate in {home}: give --gateway-cert")
    certs = []
    for path in paths:
        try:
            certs.append(x509.load_pem_x509_certificate(path.read_bytes()))
        except (OSError, ValueError) as err:
            fail(f"{path} is not a PEM certificate: {err}")
    data = file.read_bytes()
    problems = []
    for cert in certs:   # a receipt signed before a rotation verifies with the previous certificate
        try:
            checked = receipts.verify_file(data, cert)
        except receipts.ReceiptInvalid as err:
            problems.append(str(err))
            continue
        r = checked.receipt
        typer.echo(f"OK receipt {r.number} ({'debit' if r.direction == 'DBIT' else 'credit'} {r.account}, "
                   f"entry {r.entry_id:012d}), verification code {checked.code}")
        typer.echo(f"   {r.amount.currency} {r.amount.text()} ({r.capital}), value date {r.value_date}")
        typer.echo(f"   payer {r.payer.name} {r.payer.account}; payee {r.payee.name} {r.payee.account}")
        typer.echo(f"   signed by the gateway certificate {checked.signed_by}")
        raise typer.Exit(0)
    typer.echo(f"FAILED {file}: {problems[0] if len(set(problems)) == 1 else '; '.join(problems)}")
    raise typer.Exit(1)
