"""`metrics`: the operational gauges of GET /metrics (gateway/metrics.py), read from the home's database
without a running gateway: for a cron job, a check script, or a look by hand."""
from __future__ import annotations

from pathlib import Path

import typer

from gateway.cli.common import Home, current


def metrics(home: Home = Path(".")) -> None:
    """Print pending approvals, the clearing backlog, undelivered notifications and certificate days left
    (Prometheus text format, as GET /metrics has them)."""
    from gateway.metrics import text
    from gateway.rotation import published
    settings, engine = current(home)
    current_cert = settings.path(settings.gateway_cert)
    typer.echo(text(engine, lambda: published(settings, current_cert.read_bytes())).decode(), nl=False)
