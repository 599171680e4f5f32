"""`agent`: the enterprise-side agent (agent/), started from here and wired to nothing of the server's."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def agent_command(
        config: Annotated[Path, typer.Option("--config", help="the agent's TOML file (docs/agent.md)")],
        once: Annotated[bool, typer.Option("--once", help="one full pass, then exit (for cron)")] = False,
        validate: Annotated[list[Path] | None, typer.Option(
            "--validate", help="check an ERP payment file as the gateway will read it, without sending it "
                               "(repeatable); exit 1 if any payment would be refused")] = None) -> None:
    """The enterprise-side agent: submits outbox files, polls payments, pulls statements into the inbox."""
    if validate:
        raise typer.Exit(_validate(config, validate))
    from agent.runner import main as run_agent
    raise typer.Exit(run_agent(config, once))


def _validate(config: Path, files: list[Path]) -> int:
    """Each file in the format the configuration gives its name (payment_formats, else payment_format)."""
    from agent.config import ConfigError, load
    from agent.validate import validate
    try:
        cfg = load(config)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        return 2
    all_good = True
    for file in files:
        good, lines = validate(file, cfg.format_of(file.name))
        all_good = all_good and good
        for line in lines:
            typer.echo(line)
    return 0 if all_good else 1
