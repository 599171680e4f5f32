"""How `directlink serve` listens: plain HTTP (a reverse proxy in front terminates TLS), or TLS terminated
by the gateway itself, with client certificates required when a client CA is configured (mutual TLS, as the
direct links of Chinese banks use). TLS guards the channel; a request is still trusted only for its XML
signature against the operator's registered certificate (gateway/pipeline.py)."""
from __future__ import annotations

import ssl
from typing import Any

from gateway.settings import Settings


def uvicorn_tls(settings: Settings) -> dict[str, Any]:
    """uvicorn's TLS options for these settings (none for plain HTTP); a ValueError names what is missing."""
    cert, key, client_ca = settings.tls_certificate, settings.tls_key, settings.tls_client_ca
    if cert is None:
        if key is not None or client_ca is not None:
            raise ValueError("tls_key and tls_client_ca need tls_certificate in directlink.toml")
        return {}
    files = {"tls_certificate": settings.path(cert)}
    if key is not None:
        files["tls_key"] = settings.path(key)
    if client_ca is not None:
        files["tls_client_ca"] = settings.path(client_ca)
    for name, path in files.items():
        if not path.is_file():
            raise ValueError(f"{name}: no such file: {path}")
    options: dict[str, Any] = {"ssl_certfile": str(files["tls_certificate"])}
    if "tls_key" in files:
        options["ssl_keyfile"] = str(files["tls_key"])
    if "tls_client_ca" in files:
        options |= {"ssl_ca_certs": str(files["tls_client_ca"]), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return options
