"""`audit`: check the hash-chained audit trail, and anchor its heads outside the database."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509

from gateway.cli.common import Home, current, fail, now

audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(home: Home = Path("."),
                 anchor: Annotated[Path | None, typer.Option(help="an anchor file from `audit anchor`")] = None,
                 ) -> None:
    """Check every audit chain (and an anchor, if given); exit 1 and name what was edited, removed or reordered."""
    from gateway import audit
    from gateway.console import evidence
    settings, engine = current(home)
    trusted = [x509.load_pem_x509_certificate(settings.path(settings.gateway_cert).read_bytes())]
    if settings.path(settings.gateway_previous_cert).exists():
        trusted.append(x509.load_pem_x509_certificate(settings.path(settings.gateway_previous_cert).read_bytes()))
    with engine.connect() as conn:
        checked, findings = audit.verify(conn)
        # The console's signed approvals: each security key's signature checked again, offline.
        signed, problems = evidence.verify_all(conn)
        findings += [audit.Finding(p.chain, p.seq, f"approval evidence: {p.problem}") for p in problems]
        if anchor is not None:
            try:
                findings += audit.check_anchor(conn, audit.read_anchor(anchor.read_bytes(), trusted))
            except (ValueError, KeyError) as err:
                fail(f"anchor {anchor}: {err}")
    for f in findings:
        typer.echo(f"BROKEN chain {f.chain} record {f.seq}: {f.problem}")
    if signed:
        typer.echo(f"{signed} signed console decision(s): each key's signature checked against its enrolment")
    typer.echo(f"{checked} records checked: " + ("intact" if not findings else f"{len(findings)} problem(s)"))
    raise typer.Exit(1 if findings else 0)


@audit_app.command("anchor")
def audit_anchor(out: Annotated[Path, typer.Option(help="where to write it (keep it outside the database)")],
                 home: Home = Path(".")) -> None:
    """Write the chain heads, signed with the gateway key: later `audit verify --anchor` catches any
    rewrite of what came before, even one that recomputed every hash."""
    from gateway import audit
    from gateway.app import build_gateway
    settings, checked = current(home)
    checked.dispose()
    gateway = build_gateway(settings, run_migrations=False)
    with gateway.engine.connect() as conn:
        anchored = audit.heads(conn)
    out.write_bytes(audit.sign_anchor(gateway.signer.key, gateway.signer.cert_pem, anchored, now()))
    typer.echo(f"anchored {len(anchored)} chain(s) in {out}")
