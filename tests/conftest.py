"""Shared fixtures. Every gateway test runs twice: on SQLite and on the PostgreSQL server named by
DIRECTLINK_TEST_DATABASE_URL (set by .ci/run; each test gets a schema of its own there)."""
from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text

from gateway.app import build_gateway, create_app
from gateway.protocol import client as dl
from gateway.protocol import signing
from gateway.setup import DEMO_ACCOUNTS, init_home
from gateway.storage.tables import accounts, entries, holds, messages, payments

PG_ENV = "DIRECTLINK_TEST_DATABASE_URL"
OPERATING, PAYROLL, SUPPLIER = DEMO_ACCOUNTS["operating"], DEMO_ACCOUNTS["payroll"], DEMO_ACCOUNTS["supplier"]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.db'}"
        return
    yield from _pg_schema()


@pytest.fixture
def pg_url():
    """A PostgreSQL-only database URL (a schema of its own), for tests of several processes on one database."""
    yield from _pg_schema()


def _pg_schema():
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set (.ci/run sets it to the local PostgreSQL)")
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def home(tmp_path, db_url, request):
    """An initialised gateway home: keys (P-256, as `directlink init` makes them, unless the test is marked
    key_type("rsa")), directory, migrated database with the demo client."""
    marker = request.node.get_closest_marker("key_type")
    return init_home(tmp_path / "home", marker.args[0] if marker else "p256", database_url=db_url)


class Clock:
    """The gateway's clock, movable by tests (freshness, certificate validity, business days)."""

    def __init__(self):
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def gateway(home, clock):
    gw = build_gateway(home)
    gw.clock = clock
    yield gw
    gw.engine.dispose()


@pytest.fixture
def signxml_shadow(monkeypatch):
    """Every signature the test verifies (the gateway's requests, the client's answers) is judged again by
    signxml, the verifier the gateway used before it verified the profile itself: verdict and signed tree
    must be the same."""
    from signature_judge import agree

    lean = signing.verify

    def shadowed(root, certificate, **at):
        agree(root, certificate, lean)
        return lean(root, certificate, **at)

    monkeypatch.setattr(signing, "verify", shadowed)


@pytest.fixture
def http(gateway):
    with TestClient(create_app(gateway)) as tc:
        yield tc


def operator_client(home, http, name: str, client: str = "DEMO") -> dl.Client:
    demo = home.home / "demo"
    return dl.Client("http://testserver", client, name, (demo / f"{name}.key.pem").read_bytes(),
                     (demo / f"{name}.cert.pem").read_bytes(),
                     home.path(home.gateway_cert).read_bytes(), http=http)


@pytest.fixture
def maker(home, http):
    return operator_client(home, http, "maker")


@pytest.fixture
def viewer(home, http):
    return operator_client(home, http, "viewer")


@pytest.fixture
def checker(home, http):
    return operator_client(home, http, "checker")


def snapshot(engine) -> dict:
    """Everything a request could change: balances, holds, payments, entries, remembered MessageIds."""
    with engine.connect() as conn:
        return {
            "accounts": sorted(tuple(r) for r in conn.execute(
                select(accounts.c.number, accounts.c.booked, accounts.c.held, accounts.c.entry_seq))),
            "payments": sorted(tuple(r) for r in conn.execute(select(payments.c.id, payments.c.state))),
            "holds": conn.execute(select(func.count()).select_from(holds)).scalar(),
            "entries": conn.execute(select(func.count()).select_from(entries)).scalar(),
            "messages": conn.execute(select(func.count()).select_from(messages)).scalar(),
        }


def booked_total(engine) -> int:
    """Sum of all booked balances, the bank's books included: zero while money is conserved."""
    with engine.connect() as conn:
        return conn.execute(select(func.sum(accounts.c.booked))).scalar()


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parents[1]


def database_before(tmp_path: Path, revision: str, payments_made: list[tuple]):
    """A SQLite database migrated to `revision`, with client C, its account D1 and these payments from it,
    each (created_at, amount, state, maker), written as that revision's schema takes them (tests of upgrades)."""
    from gateway.storage.engine import make_engine, migrate
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(engine, to=revision)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO clients (id, name) VALUES ('C', 'C Co')"))
        conn.execute(text("INSERT INTO accounts (number, client_id, name, currency, booked, held, entry_seq, opened_at)"
                          " VALUES ('D1', 'C', 'D', 'CNY', 0, 0, 0, '2026-01-01 00:00:00')"))
        for i, (at, amount, state, maker) in enumerate(payments_made):
            conn.execute(text(
                "INSERT INTO payments (id, client_id, client_ref, end_to_end_id, debtor_account, amount, currency,"
                " creditor_name, creditor_account, creditor_bank_scheme, creditor_bank_code, purpose, requested_date,"
                " urgency, state, order_digest, content_hash, maker, approvals_required, approvals_given, created_at,"
                " updated_at, attempts) VALUES (:id, 'C', :id, :id, 'D1', :amount, 'CNY', 'P', 'P1', 'CNAPS', '1',"
                " 'x', '2026-01-01', 'NORMAL', :state, 'd', 'h', :maker, 0, 0, :at, :at, 0)"),
                {"id": f"P{i}", "amount": amount, "state": state, "maker": maker, "at": at.replace(tzinfo=None)})
    return engine
