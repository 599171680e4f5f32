"""How `directlink serve` listens: plain HTTP (a reverse proxy in front terminates TLS), or TLS terminated
by the gateway itself, with client certificates required when a client CA is configured (mutual TLS, as the
direct links of Chinese banks use). TLS guards the channel; a request is still trusted only for its XML
signature against the operator's registered certificate (gateway/pipeline.py)."""
from __future__ import annotations

import ssl
from typing import Any

from gateway.protocol.client import load_tls_identity, trusting
from gateway.settings import Settings


def uvicorn_tls(settings: Settings) -> dict[str, Any]:
    """uvicorn's TLS options for these settings (none for plain HTTP); a ValueError names what is missing."""
    cert, key, client_ca = settings.tls_certificate, settings.tls_key, settings.tls_client_ca
    if cert is None:
        if key is not None or client_ca is not None:
            raise ValueError("tls_key and tls_client_ca need tls_certificate in directlink.toml")
        return {}
    cert_file = settings.path(cert)
    key_file = settings.path(key) if key is not None else None
    # Loaded here, as the client loads its own, so that a wrong file is one line before uvicorn starts.
    load_tls_identity(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), cert_file, key_file)
    options: dict[str, Any] = {"ssl_certfile": str(cert_file)}
    if key_file is not None:
        options["ssl_keyfile"] = str(key_file)
    if client_ca is not None:
        ca_file = settings.path(client_ca)
        trusting(ca_file, "tls_client_ca")
        options |= {"ssl_ca_certs": str(ca_file), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return options
