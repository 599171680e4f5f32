"""A directory file (config/directory.toml): a bank's clients, accounts, operators and their certificates,
grants, approval policies, fund-flow rules, counterparties and block lists, applied in one transaction.

Apart from gateway/directory.py because it spans that module and gateway/rulebook.py, which audits its
changes through the directory: one module holding both would import itself round.
"""
from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

from sqlalchemy import Connection

from gateway import rulebook
from gateway.directory import (
    open_account,
    register_certificate,
    set_approval_policy,
    set_grant,
    upsert_client,
    upsert_operator,
)


def apply(conn: Connection, path: Path, now: dt.datetime, today: dt.date) -> dict[str, int]:
    """Apply a directory TOML file; returns how many of each kind of entry it holds."""
    doc = tomllib.loads(path.read_text("utf-8"))
    base = path.parent
    for c in doc.get("clients", []):
        upsert_client(conn, c["id"], c["name"], now)
    for a in doc.get("accounts", []):
        open_account(conn, a["number"], a["client"], a["name"], a["currency"], a.get("opening_balance"), now,
                     today)
    for o in doc.get("operators", []):
        upsert_operator(conn, o["client"], o["id"], o.get("name", o["id"]), now)
        for cert_path in o.get("certificates", []):
            register_certificate(conn, o["client"], o["id"], (base / cert_path).read_bytes(), now)
    for g in doc.get("grants", []):
        set_grant(conn, g["client"], g["operator"], g["account"], set(g["permissions"]),
                  g.get("single_limit"), g.get("daily_limit"), now, g.get("approve_limit"))
    for p in doc.get("approval_policies", []):
        set_approval_policy(conn, p["client"], p.get("account", ""), p["threshold"], int(p["approvals"]), now,
                            p.get("currency", "CNY"))
    for r in doc.get("rules", []):
        params = {k: v for k, v in r.items() if k not in ("client", "account", "rule")}
        rulebook.set_rule(conn, r["client"], r.get("account", ""), r["rule"], params, now)
    for c in doc.get("counterparties", []):
        rulebook.add_counterparty(conn, c["client"], c["name"], c["account"], now)
    for b in doc.get("block_lists", []):
        rulebook.load_block_list(conn, base / b["file"], b["name"], b.get("client", ""), now)
    return {k: len(doc.get(k, [])) for k in ("clients", "accounts", "operators", "grants", "approval_policies",
                                             "rules", "counterparties", "block_lists")}
