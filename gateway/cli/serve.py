"""Getting a gateway running: `init` a home, `serve` it, or watch `demo` do both with a story."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import Home, fail
from gateway.settings import Pkcs11Key, Settings


def init(directory: Annotated[Path, typer.Argument(help="where to create it")] = Path("."),
         key_type: Annotated[str, typer.Option(help="p256 (ECDSA P-256), rsa (2048) or sm2 (SM2/SM3)")] = "p256",
         database_url: Annotated[str | None, typer.Option(help="default: SQLite in DIR")] = None,
         key_store: Annotated[str, typer.Option(help="file (a PEM key in DIR/certs) or pkcs11 (an HSM)")] = "file",
         pkcs11_module: Annotated[Path | None, typer.Option(help="pkcs11: the token's PKCS#11 library")] = None,
         token_label: Annotated[str | None, typer.Option(help="pkcs11: the token to make the key in")] = None,
         key_label: Annotated[str, typer.Option(help="pkcs11: the key's label")] = "directlink-gateway") -> None:
    """Create configuration, gateway key, database and the demo client DEMO in DIR.

    With --key-store pkcs11 the gateway key is generated inside the token and never leaves it; the token's
    user PIN is read from DIRECTLINK_GATEWAY_PKCS11_PIN."""
    from gateway.hsm import TokenError
    from gateway.setup import init_home
    token = None
    if key_store == "pkcs11":
        if pkcs11_module is None or token_label is None:
            fail("--key-store pkcs11 needs --pkcs11-module and --token-label")
        token = Pkcs11Key(module=pkcs11_module.absolute(), token_label=token_label, key_label=key_label)
    elif key_store != "file":
        fail(f"unknown key store {key_store!r} (file or pkcs11)")
    try:
        init_home(directory, key_type, database_url, token)
    except (FileExistsError, ValueError, TokenError) as err:
        fail(str(err))
    typer.echo(f"initialised {directory.resolve()}: run `directlink serve` there; "
               f"operator keys are in {directory / 'demo'}")


def serve(home: Home = Path("."), host: str = "127.0.0.1", port: int = 8080,
          log_level: Annotated[str, typer.Option(help="uvicorn's: info logs each request")] = "info") -> None:
    """Serve protocol v1 over HTTP from the gateway home (the current directory by default)."""
    import uvicorn

    from gateway.app import build_gateway, create_app, settle_heap
    from gateway.transport import uvicorn_tls
    settings = Settings.load(home)
    key = settings.path(settings.gateway_key)
    if settings.gateway_key_pkcs11 is None and not key.exists():
        fail(f"{settings.home} is not a gateway home (no {key}): run `directlink init` there, or give --home")
    try:
        tls = uvicorn_tls(settings)
    except ValueError as err:
        fail(str(err))
    from gateway.cli.reconciler import reconcile_uploads
    app = create_app(build_gateway(settings), reconcile_uploads)
    settle_heap()
    uvicorn.run(app, host=host, port=port, log_level=log_level, **tls)


def demo() -> None:
    """Run a readable end-to-end story on the embedded default, with no other set-up."""
    from gateway.cli.demo import run
    raise typer.Exit(run())
