"""The configuration requests read (grants, approval tiers, subscriptions, fund-flow rules, accounts' owners),
kept per version.

Every request used to read its operator's grants, and every payment its client's approval tiers,
subscriptions and rules: four statements of configuration that changes a few times a day. Database triggers
(migration 0010) move `config_version` on with every change to those tables, in the changing transaction;
every request reads the version in its first statement (gateway/pipeline.py) and takes the configuration
kept for it here, reading it only the first time a version asks for it. A grant revoked on one replica is
so revoked at once on all of them, as when it was read every time.

Why a value kept under version V is never older than V: it was read after a request had read V, and any
change commits together with the version's move past V. It may be newer (a change committed between the
two reads), which is what reading it afresh would have given too. Values are kept only for the newest
version seen; a request that read an older one reads afresh and keeps nothing.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from gateway import directory, rule_facts
from gateway.notify import outbox
from gateway.notify.subscriptions import Subscription, active_for
from gateway.storage.tables import config_version

# The version as the first statement of a request reads it (a scalar subquery beside its other columns).
VERSION = select(config_version.c.version).where(config_version.c.id == 1).scalar_subquery()


class ConfigCache:
    """Values by key for the newest configuration version seen. One per process; thread-safe."""

    def __init__(self) -> None:
        # (version, its values): one attribute, read in one step, so that a thread never pairs a version
        # with the values of another (a value read under V kept as V+1's would be stale).
        self._current: tuple[int, dict[tuple, Any]] = (-1, {})
        self._lock = threading.Lock()

    def get(self, version: int, key: tuple, load: Callable[[], Any]) -> Any:
        values = self._values_of(version)
        if values is None:
            return load()
        try:
            return values[key]
        except KeyError:
            value = values[key] = load()   # two threads may both load it: the same value, kept once
            return value

    def _values_of(self, version: int) -> dict[tuple, Any] | None:
        newest, values = self._current
        if version == newest:
            return values
        with self._lock:
            if version > self._current[0]:
                self._current = (version, {})
            newest, values = self._current
            return values if version == newest else None


@dataclass(frozen=True)
class Config:
    """The configuration as of one request's version, read through its transaction when not kept yet.
    What it returns is shared between requests: callers must not change it."""

    cache: ConfigCache
    version: int
    conn: Connection

    def grants(self, client: str, operator: str) -> dict[str, directory.AccountGrant]:
        return self.cache.get(self.version, ("grants", client, operator),
                              lambda: directory.operator_grants(self.conn, client, operator))

    def approval_tiers(self, client: str) -> directory.ApprovalTiers:
        return self.cache.get(self.version, ("tiers", client), lambda: directory.approval_tiers(self.conn, client))

    def subscriptions(self, client: str) -> tuple[Subscription, ...]:
        return self.cache.get(self.version, ("subscriptions", client),
                              lambda: tuple(active_for(self.conn, {client})))

    def rules(self, client: str, account: str) -> tuple:
        return self.cache.get(self.version, ("rules", client, account),
                              lambda: rule_facts.configuration(self.conn, client, account))

    def owners(self, numbers: set[str]) -> list:
        """outbox.owners() of these accounts, kept per account: an account's owner and currency, and the
        owner's active subscriptions, are all watched (a new account too)."""
        return [row for number in sorted(numbers) for row in self.cache.get(
            self.version, ("owner", number), lambda number=number: outbox.owners(self.conn, {number}))]
