"""`certs`: the operators' certificates; `keys`: the gateway's own signing key."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import Home, current, fail, home_settings, migrated, now

certs_app = typer.Typer(help="Operator certificates: add, list, revoke.", no_args_is_help=True)
keys_app = typer.Typer(help="The gateway's own signing key.", no_args_is_help=True)


@certs_app.command("add")
def certs_add(client: str, operator: str, pem: Path, home: Home = Path(".")) -> None:
    """Register (pin) a certificate for an operator."""
    from gateway import directory
    _, engine = migrated(home)
    try:
        with engine.begin() as conn:
            fp = directory.register_certificate(conn, client, operator, pem.read_bytes(), now())
    except ValueError as err:   # an unknown operator, a file that is no certificate, a key type not allowed
        fail(f"{pem}: {err}")
    typer.echo(fp)


@certs_app.command("list")
def certs_list(home: Home = Path(".")) -> None:
    """List registered certificates with validity and revocation."""
    from sqlalchemy import select

    from gateway.storage.tables import certificates
    _, engine = current(home)
    with engine.connect() as conn:
        for r in conn.execute(select(certificates).order_by(certificates.c.client_id, certificates.c.operator_id)):
            state = f"revoked {r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "active"
            typer.echo(f"{r.client_id}/{r.operator_id:<10} {r.fingerprint}  {r.not_before:%Y-%m-%d} .. "
                       f"{r.not_after:%Y-%m-%d}  {state}")


@certs_app.command("revoke")
def certs_revoke(fingerprint: str, home: Home = Path(".")) -> None:
    """Revoke a certificate at once (on every replica sharing the database)."""
    from gateway import directory
    _, engine = migrated(home)
    with engine.begin() as conn:
        if not directory.revoke_certificate(conn, fingerprint.lower(), now()):
            fail(f"no active certificate {fingerprint}")
    typer.echo(f"revoked {fingerprint}")


@keys_app.command("rotate")
def keys_rotate(home: Home = Path("."),
                key_type: Annotated[str, typer.Option(help="p256 (ECDSA P-256), rsa (2048) or sm2")] = "p256") -> None:
    """Make a new gateway key and certificate; the old certificate stays published for the overlap. With a
    PKCS#11 token the new key is made in the token (the PIN from DIRECTLINK_GATEWAY_PKCS11_PIN)."""
    from gateway.hsm import TokenError
    from gateway.rotation import rotate_gateway_key
    try:
        path = rotate_gateway_key(home_settings(home), key_type)
    except (TokenError, ValueError) as err:
        fail(str(err))
    typer.echo(f"new gateway certificate {path}; restart each replica, then distribute it to clients")
