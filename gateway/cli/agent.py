"""`agent`: the enterprise-side agent (agent/), started from here and wired to nothing of the server's."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def agent_command(
        config: Annotated[Path, typer.Option("--config", help="the agent's TOML file (docs/agent.md)")],
        once: Annotated[bool, typer.Option("--once", help="one full pass, then exit (for cron)")] = False) -> None:
    """The enterprise-side agent: submits outbox files, polls payments, pulls statements into the inbox."""
    from agent.runner import main as run_agent
    raise typer.Exit(run_agent(config, once))
