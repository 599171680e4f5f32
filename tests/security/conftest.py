"""Fixtures of the attack suite: a listener that must never be reached, and a second client (BETA)."""
from __future__ import annotations

import socket
import threading

import pytest

from gateway import directory, keys
from gateway.protocol import client as dl
from security.attack_kit import BETA_ACCOUNT, attacker_key


@pytest.fixture(autouse=True)
def _judged_by_signxml(signxml_shadow):
    """Every document of the attack suite is also judged by signxml (tests/conftest.py, signxml_shadow)."""


@pytest.fixture
def listener():
    """A TCP port on 127.0.0.1 that counts connections: nothing the gateway parses may ever reach it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    hits, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            hits.append(conn.recv(1024))
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", hits
    stop.set()
    thread.join()
    server.close()


@pytest.fixture
def beta(gateway, home, http, clock):
    """A second client, BETA, with an account, an operator named maker (like DEMO's) and its own key."""
    key = attacker_key("beta")
    cert = keys.self_signed(key, "BETA/maker", "Beta Industrial Ltd.")
    now = clock()
    with gateway.engine.begin() as conn:
        directory.upsert_client(conn, "BETA", "Beta Industrial Ltd.", now)
        directory.open_account(conn, BETA_ACCOUNT, "BETA", "Beta operating", "CNY", "50000.00", now,
                               now.date())
        directory.upsert_operator(conn, "BETA", "maker", "Beta clerk", now)
        directory.register_certificate(conn, "BETA", "maker", keys.cert_pem(cert), now)
        directory.set_grant(conn, "BETA", "maker", BETA_ACCOUNT, {"query", "pay"}, None, None, now)
    return dl.Client("http://testserver", "BETA", "maker", keys.key_pem(key), keys.cert_pem(cert),
                     home.path(home.gateway_cert).read_bytes(), http=http)
