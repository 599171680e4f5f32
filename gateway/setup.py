"""`directlink init`: a ready-to-run gateway home with keys, configuration, database and a demo client."""
from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from gateway import directory_file
from gateway.keys import new_key, write_key_pair
from gateway.settings import SETTINGS_FILE, Pkcs11Key, Settings
from gateway.storage.engine import make_engine, migrate

DEMO_ACCOUNTS = {"operating": "6222000000000001", "payroll": "6222000000000002", "supplier": "6222000000009001"}

SETTINGS_TEMPLATE = """\
# DirectLink gateway settings. Every key can be overridden by an environment variable
# DIRECTLINK_<KEY> (e.g. DIRECTLINK_DATABASE_URL=postgresql+psycopg://user@host/db).
[gateway]
database_url = "sqlite:///directlink.db"
bank_name = "DirectLink Demo Bank"
own_cnaps_prefix = "999"        # CNAPS codes of this bank: such payments settle at once
timezone = "Asia/Shanghai"
freshness_seconds = 300
replay_retention_hours = 48
max_body_bytes = 10485760
gateway_key = "certs/gateway.key.pem"
gateway_cert = "certs/gateway.cert.pem"
directory_file = "config/directory.toml"
"""

GATEWAY_NAME, BANK_NAME = "DirectLink gateway", "DirectLink Demo Bank"   # the gateway certificate's subject


def token_settings(token: Pkcs11Key) -> str:
    """The settings table naming the token that holds the gateway key."""
    return ("\n# The gateway key is in this PKCS#11 token; the PIN is DIRECTLINK_GATEWAY_PKCS11_PIN (environment only).\n"
            "[gateway.gateway_key_pkcs11]\n"
            + "".join(f"{name} = {toml_value(str(value))}\n" for name, value in token.model_dump().items()))


DIRECTORY_HEADER = """\
# Clients, accounts, operators, certificates and grants. Applied by `directlink init` and
# `directlink config apply`; the database is the source of truth afterwards (see docs/configuration.md).
# Maker-checker: payments from the operating account at or above 200,000.00 wait for one approver.
"""


def _demo_directory() -> dict[str, list[dict]]:
    operating, payroll = DEMO_ACCOUNTS["operating"], DEMO_ACCOUNTS["payroll"]
    return {
        "clients": [{"id": "DEMO", "name": "Demo Trading Co., Ltd."},
                    {"id": "ACME", "name": "ACME Supplies (Shanghai) Co., Ltd."}],
        "accounts": [
            {"number": operating, "client": "DEMO", "name": "演示贸易有限公司 基本户", "currency": "CNY",
             "opening_balance": "1000000.00"},
            {"number": payroll, "client": "DEMO", "name": "演示贸易有限公司 工资户", "currency": "CNY",
             "opening_balance": "400000.00"},
            {"number": DEMO_ACCOUNTS["supplier"], "client": "ACME", "name": "ACME Supplies operating", "currency": "CNY"}],
        "operators": [{"client": "DEMO", "id": op, "name": name, "certificates": [f"../demo/{op}.cert.pem"]}
                      for op, name in (("maker", "Wang Fang (AP clerk)"), ("checker", "Li Wei (treasury)"),
                                       ("viewer", "Zhao Min (accounting)"))],
        "grants": [
            {"client": "DEMO", "operator": "maker", "account": operating, "permissions": ["query", "pay"],
             "single_limit": "500000.00", "daily_limit": "800000.00"},
            {"client": "DEMO", "operator": "maker", "account": payroll, "permissions": ["query", "pay"],
             "single_limit": "100000.00", "daily_limit": "300000.00"},
            {"client": "DEMO", "operator": "checker", "account": operating,
             "permissions": ["query", "approve"], "approve_limit": "1000000.00"},
            {"client": "DEMO", "operator": "checker", "account": payroll,
             "permissions": ["query", "approve"]},
            {"client": "DEMO", "operator": "viewer", "account": operating, "permissions": ["query"]},
            {"client": "DEMO", "operator": "viewer", "account": payroll, "permissions": ["query"]}],
        "approval_policies": [{"client": "DEMO", "account": operating, "threshold": "200000.00",
                               "approvals": 1}],
    }


def directory_toml(tables: Mapping[str, Iterable[Mapping[str, object]]]) -> str:
    """A directory file's text (what `directory_file.apply` reads) from its tables, e.g.
    {"clients": [{"id": "DEMO", "name": ...}], "accounts": [...], "grants": [...]}: each row an
    array-of-tables entry, in the order given."""
    return "".join(f"\n[[{name}]]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in row.items())
                   for name, rows in tables.items() for row in rows)


def toml_value(value: object) -> str:
    """A string, integer, boolean or list of them as TOML (a JSON string is a valid TOML basic string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def init_home(home: Path, key_type: str = "p256", database_url: str | None = None,
              token: Pkcs11Key | None = None) -> Settings:
    """Create settings, keys, the demo directory and the database under `home`; return the settings. With a
    `token`, the gateway key is made inside it (the PIN from the environment) and no key file is written.
    All or nothing: a failure part-way removes what this call made, so `init` can simply be run again."""
    if (home / SETTINGS_FILE).exists():
        raise FileExistsError(f"{home / SETTINGS_FILE} exists already: this home is initialised")
    new_key(key_type)   # an unknown key type is refused before anything is written
    made = [p for p in (home, home / SETTINGS_FILE, home / "certs", home / "demo", home / "config",
                        home / "directlink.db") if not p.exists()]
    try:
        return _init_home(home, key_type, database_url, token)
    except BaseException:
        for path in reversed(made):   # the home itself last, and only if this call made it
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise


def _init_home(home: Path, key_type: str, database_url: str | None, token: Pkcs11Key | None) -> Settings:
    home.mkdir(parents=True, exist_ok=True)
    text = SETTINGS_TEMPLATE
    if database_url:
        text = text.replace('database_url = "sqlite:///directlink.db"', f'database_url = "{database_url}"')
    if token is None:
        write_key_pair(home / "certs", "gateway", GATEWAY_NAME, BANK_NAME, key_type)
    else:
        from gateway import hsm
        # The token first: a refused PIN or a missing token leaves no half-made home behind.
        cert = hsm.create_key(Settings.load(home, gateway_key_pkcs11=token), key_type, GATEWAY_NAME, BANK_NAME)
        (home / "certs").mkdir(exist_ok=True)
        (home / "certs" / "gateway.cert.pem").write_bytes(cert)
        text = text.replace('gateway_key = "certs/gateway.key.pem"\n', "") + token_settings(token)
    (home / SETTINGS_FILE).write_text(text, "utf-8")
    for op in ("maker", "checker", "viewer"):
        write_key_pair(home / "demo", op, f"DEMO/{op}", "Demo Trading Co., Ltd.", key_type)
    (home / "config").mkdir(exist_ok=True)
    (home / "config" / "directory.toml").write_text(DIRECTORY_HEADER + directory_toml(_demo_directory()),
                                                    "utf-8")
    settings = Settings.load(home)
    apply_directory(settings)
    return settings


def apply_directory(settings: Settings, path: Path | None = None) -> dict[str, int]:
    """Migrate the database and apply a directory file (default: the configured one)."""
    engine = make_engine(settings.db_url)
    migrate(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        counts = directory_file.apply(conn, path or settings.path(settings.directory_file), now,
                                      now.astimezone(settings.zone).date())
    engine.dispose()
    return counts
