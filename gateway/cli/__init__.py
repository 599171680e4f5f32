"""The `directlink` command (spec section 7) and the composition root: the one place every sub-app is added,
and the only code of the server that wires in the enterprise side (agent/) and reconciliation (reconcile/).

Each command lives in the module of its sub-app; the order they are added here is the order `--help` lists
them in."""
from __future__ import annotations

import typer

from gateway.cli import (
    adapters,
    agent,
    audit,
    bank,
    certs,
    config,
    db,
    errors,
    grants,
    metrics,
    notify,
    operators,
    receipt,
    reconcile,
    rules,
    send,
    serve,
    usage,  # noqa: F401  (how --help shows flags; imported for its effect)
)

app = typer.Typer(help="DirectLink bank-enterprise direct-link gateway.", no_args_is_help=True,
                  add_completion=False,
                  pretty_exceptions_enable=False)
app.callback()(errors.debug_option)
app.command()(serve.init)
app.command()(serve.serve)
app.command()(send.send)
app.add_typer(adapters.adapters_app, name="adapters")
app.command()(serve.demo)
app.command("agent")(agent.agent_command)
app.command("reconcile")(reconcile.reconcile_command)
app.add_typer(config.config_app, name="config")
app.add_typer(certs.certs_app, name="certs")
app.add_typer(operators.operators_app, name="operators")
app.add_typer(grants.grants_app, name="grants")
app.command("metrics")(metrics.metrics)
app.add_typer(bank.clearing_app, name="clearing")
app.add_typer(certs.keys_app, name="keys")
app.add_typer(db.db_app, name="db")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(notify.notify_app, name="notify")
app.add_typer(bank.sandbox_app, name="sandbox")
app.add_typer(rules.rules_app, name="rules")
app.add_typer(receipt.receipt_app, name="receipt")


def main() -> None:
    errors.run(lambda: app(prog_name="directlink", standalone_mode=False))
