"""The rulebook: fund-flow rules, registered counterparties and block lists, as configured per client.

Everything here is configuration, changed by `directlink rules ...` and `config/directory.toml`, validated
(domain/rules.py) before it is stored and audited when it changes. gateway/rule_facts.py reads it per payment.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, delete, insert, select

from domain import rules as dr
from domain.names import account_key
from domain.names import key as name_key
from gateway import directory
from gateway.storage.tables import accounts, block_lists, blocked_parties, clients, counterparties, fund_rules


def set_rule(conn: Connection, client: str, account: str, rule: str, params: dict, now: dt.datetime) -> dr.RuleParams:
    """Declare (or replace) a rule for a client ("" account) or one of its accounts."""
    parsed = dr.parse_params(rule, params)
    _check_client(conn, client)
    if account and conn.execute(select(accounts.c.number).where(
            accounts.c.number == account, accounts.c.client_id == client)).first() is None:
        raise ValueError(f"account {account} does not belong to client {client}")
    stored = parsed.model_dump_json(exclude_defaults=False)
    key = (fund_rules.c.client_id == client) & (fund_rules.c.account == account) & (fund_rules.c.rule == rule)
    conn.execute(delete(fund_rules).where(key))
    conn.execute(insert(fund_rules).values(client_id=client, account=account, rule=rule, params=stored,
                                           updated_at=now))
    directory.audit_change(conn, now, "RULE_SET", f"{client} {account or '*'} {rule} {stored}")
    return parsed


def _check_client(conn: Connection, client: str) -> None:
    if conn.execute(select(clients.c.id).where(clients.c.id == client)).first() is None:
        raise ValueError(f"unknown client {client}")


def remove_rule(conn: Connection, client: str, account: str, rule: str, now: dt.datetime) -> bool:
    gone = conn.execute(delete(fund_rules).where(
        fund_rules.c.client_id == client, fund_rules.c.account == account, fund_rules.c.rule == rule)).rowcount
    if gone:
        directory.audit_change(conn, now, "RULE_REMOVED", f"{client} {account or '*'} {rule}")
    return bool(gone)


def list_rules(conn: Connection, client: str) -> list[tuple[str, str, dict]]:
    """(account, rule, params) of a client, client-wide rules first."""
    rows = conn.execute(select(fund_rules).where(fund_rules.c.client_id == client)
                        .order_by(fund_rules.c.account, fund_rules.c.rule)).all()
    return [(r.account, r.rule, json.loads(r.params)) for r in rows]


def add_counterparty(conn: Connection, client: str, name: str, account: str, now: dt.datetime) -> None:
    if not 1 <= len(name) <= 70 or not 1 <= len(account) <= 34:
        raise ValueError("a counterparty needs a name (1-70 characters) and an account (1-34)")
    _check_client(conn, client)
    conn.execute(delete(counterparties).where(counterparties.c.client_id == client,
                                              counterparties.c.account == account))
    conn.execute(insert(counterparties).values(client_id=client, account=account, name=name,
                                               name_key=name_key(name), added_at=now))
    directory.audit_change(conn, now, "COUNTERPARTY_SET", f"{client} {account} {name}")


def remove_counterparty(conn: Connection, client: str, account: str, now: dt.datetime) -> bool:
    gone = conn.execute(delete(counterparties).where(counterparties.c.client_id == client,
                                                     counterparties.c.account == account)).rowcount
    if gone:
        directory.audit_change(conn, now, "COUNTERPARTY_REMOVED", f"{client} {account}")
    return bool(gone)


@dataclass(frozen=True)
class ListEntry:
    name: str | None
    account: str | None


def read_block_list(data: bytes, filename: str) -> list[ListEntry]:
    """A block list file: CSV with a header naming `name` and/or `account` columns (more columns are kept
    out), or JSON: a list of {"name": ..., "account": ..., "aliases": [...]}. Each alias is an entry."""
    text = data.decode("utf-8-sig")
    entries: list[ListEntry] = []
    if filename.endswith(".json"):
        items = json.loads(text)
        if not isinstance(items, list):
            raise ValueError(f"{filename}: expected a JSON list of entries")
        for i, item in enumerate(items, 1):
            if not isinstance(item, dict):
                raise ValueError(f"{filename}: entry {i} is not an object")
            names = [item.get("name"), *item.get("aliases", [])]
            account = item.get("account") or None
            for name in names or [None]:
                entries.append(ListEntry(name or None, account))
    else:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or not {"name", "account"} & set(reader.fieldnames):
            raise ValueError(f"{filename}: the header must name a 'name' and/or an 'account' column")
        for row in reader:
            entries.append(ListEntry((row.get("name") or "").strip() or None,
                                     (row.get("account") or "").strip() or None))
    for i, e in enumerate(entries, 1):
        if e.name is None and e.account is None:
            raise ValueError(f"{filename}: entry {i} has neither a name nor an account")
        if (e.name is not None and len(e.name) > 140) or (e.account is not None and len(e.account) > 34):
            raise ValueError(f"{filename}: entry {i} is too long (name 140, account 34 characters)")
        if e.name is not None and not name_key(e.name):
            raise ValueError(f"{filename}: entry {i} has a name with no letters or digits")
    return entries


def load_block_list(conn: Connection, path: Path, list_name: str, client: str, now: dt.datetime) -> int:
    """Replace block list `list_name` (for one client, or "" for all) with the entries of a file."""
    entries = read_block_list(path.read_bytes(), path.name)
    for table in (blocked_parties, block_lists):
        conn.execute(delete(table).where(table.c.client_id == client, table.c.list_name == list_name))
    if entries:
        conn.execute(insert(blocked_parties), [
            dict(client_id=client, list_name=list_name, name=e.name, name_key=name_key(e.name) or None,
                 account=account_key(e.account) or None, added_at=now) for e in entries])
        conn.execute(insert(block_lists).values(client_id=client, list_name=list_name, entries=len(entries),
                                                loaded_at=now, version=secrets.token_hex(16)))
    directory.audit_change(conn, now, "BLOCK_LIST_LOADED",
                           f"{list_name} for {client or 'all clients'}: {len(entries)} entries from {path.name}")
    return len(entries)
