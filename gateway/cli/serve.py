"""Getting a gateway running: `init` a home, `serve` it, or watch `demo` do both with a story."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import Home, fail
from gateway.settings import Settings


def init(directory: Annotated[Path, typer.Argument(help="where to create it")] = Path("."),
         key_type: Annotated[str, typer.Option(help="p256 (ECDSA P-256) or rsa (2048)")] = "p256",
         database_url: Annotated[str | None, typer.Option(help="default: SQLite in DIR")] = None) -> None:
    """Create configuration, gateway key, database and the demo client DEMO in DIR."""
    from gateway.setup import init_home
    try:
        init_home(directory, key_type, database_url)
    except (FileExistsError, ValueError) as err:
        fail(str(err))
    typer.echo(f"initialised {directory.resolve()}: run `directlink serve` there; "
               f"operator keys are in {directory / 'demo'}")


def serve(home: Home = Path("."), host: str = "127.0.0.1", port: int = 8080,
          log_level: Annotated[str, typer.Option(help="uvicorn's: info logs each request")] = "info") -> None:
    """Serve protocol v1 over HTTP from the gateway home (the current directory by default)."""
    import uvicorn

    from gateway.app import build_gateway, create_app
    from gateway.transport import uvicorn_tls
    settings = Settings.load(home)
    try:
        tls = uvicorn_tls(settings)
    except ValueError as err:
        fail(str(err))
    uvicorn.run(create_app(build_gateway(settings)), host=host, port=port, log_level=log_level, **tls)


def demo() -> None:
    """Run a readable end-to-end story on the embedded default, with no other set-up."""
    from gateway.cli.demo import run
    raise typer.Exit(run())
