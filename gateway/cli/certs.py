"""`certs`: the operators' certificates; `keys`: the gateway's own signing key."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli.common import Home, current, fail, home_settings, migrated, now
from gateway.cli.listing import Json, show

certs_app = typer.Typer(help="Operator certificates: add, list, revoke.", no_args_is_help=True)
keys_app = typer.Typer(help="The gateway's own signing key.", no_args_is_help=True)


@certs_app.command("add")
def certs_add(client: str, operator: str, pem: Path, home: Home = Path(".")) -> None:
    """Register (pin) a certificate for an operator. Refused, nothing changed: a certificate registered to
    another operator, one outside its validity, a key type the signature profile does not allow."""
    from cryptography import x509
    from sqlalchemy import select

    from gateway import directory
    from gateway.protocol.signing import fingerprint
    from gateway.storage.tables import certificates
    data = pem.read_bytes()
    _, engine = migrated(home)
    try:
        with engine.begin() as conn:
            had = conn.execute(select(certificates.c.added_at).where(
                certificates.c.fingerprint == fingerprint(x509.load_pem_x509_certificate(data)))).scalar()
            fp = directory.register_certificate(conn, client, operator, data, now())
    except ValueError as err:   # an unknown operator, a file that is no certificate, any refusal above
        fail(f"{pem}: {err}")
    if had is not None:
        typer.echo(f"{client}/{operator} has {fp} already (registered {had:%Y-%m-%d %H:%M} UTC); nothing changed")
    else:
        typer.echo(f"registered {fp} for {client}/{operator}")


SOON_DAYS = 30   # `certs list` says "expires in N days" from this close on


def certificate_state(not_before: dt.datetime, not_after: dt.datetime, revoked_at: dt.datetime | None,
                      at: dt.datetime, soon_days: int = SOON_DAYS) -> tuple[str, int]:
    """(state, whole days left) of a registered certificate: revoked, expired, not yet valid, expiring
    (within `soon_days`) or active."""
    left = (not_after - at).days
    if revoked_at is not None:
        return "revoked", left
    if not_after <= at:
        return "expired", left
    if not_before > at:
        return "not yet valid", left
    return ("expiring" if left < soon_days else "active"), left


@certs_app.command("list")
def certs_list(home: Home = Path("."), as_json: Json = False) -> None:
    """List registered certificates: active, expiring (days left), expired, not yet valid or revoked."""
    from sqlalchemy import select

    from gateway.storage.tables import certificates
    _, engine = current(home)
    at = now()
    with engine.connect() as conn:
        found = conn.execute(select(certificates).order_by(certificates.c.client_id, certificates.c.operator_id,
                                                           certificates.c.not_after)).all()
    rows = []
    for r in found:
        state, left = certificate_state(r.not_before, r.not_after, r.revoked_at, at)
        rows.append({"client": r.client_id, "operator": r.operator_id, "fingerprint": r.fingerprint,
                     "not_before": r.not_before, "not_after": r.not_after, "state": state, "days_left": left,
                     "revoked_at": r.revoked_at})

    def line(r: Mapping[str, Any]) -> str:
        state = r["state"]
        if state == "revoked":
            state = f"revoked {r['revoked_at']:%Y-%m-%d %H:%M}"
        elif state == "expiring":
            state = f"expires in {r['days_left']} day(s)"
        elif state == "expired":
            state = f"expired {r['not_after']:%Y-%m-%d}"
        return (f"{r['client']}/{r['operator']:<10} {r['fingerprint']}  {r['not_before']:%Y-%m-%d} .. "
                f"{r['not_after']:%Y-%m-%d}  {state}")
    show(rows, line, as_json, "no certificates registered")


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
                key_type: Annotated[str, typer.Option(help="rsa (2048), p256 or sm2")] = "rsa",
                prepare: Annotated[bool, typer.Option("--prepare", help="step 1: make the next key and "
                                                      "publish its certificate; nothing signs with it yet")] = False,
                switch: Annotated[bool, typer.Option("--switch", help="step 2: make the prepared key "
                                                     "current (then restart each replica)")] = False) -> None:
    """A new gateway key and certificate. Without a flag day: --prepare, give clients the bundle from
    /v1/certificates, then --switch and restart. Without either option both steps run at once. With a
    PKCS#11 token the new key is made in the token (the PIN from DIRECTLINK_GATEWAY_PKCS11_PIN)."""
    from gateway.hsm import TokenError
    from gateway.rotation import prepare_gateway_key, rotate_gateway_key, switch_gateway_key
    if prepare and switch:
        fail("--prepare and --switch are two steps: run them one after the other, clients updated between")
    settings = home_settings(home)
    try:
        if prepare:
            path = prepare_gateway_key(settings, key_type)
            typer.echo(f"prepared the next gateway certificate {path}: it is published at /v1/certificates now; "
                       "give clients the bundle (current and next), then run `directlink keys rotate --switch`")
        elif switch:
            path = switch_gateway_key(settings)
            typer.echo(f"switched: {path} is current, the old certificate stays published as the previous one; "
                       "restart each replica (one at a time)")
        else:
            path = rotate_gateway_key(settings, key_type)
            typer.echo(f"new gateway certificate {path}; restart each replica, then distribute it to clients "
                       "(--prepare and --switch avoid the flag day)")
    except (TokenError, ValueError) as err:   # RotationError is a ValueError
        fail(str(err))
