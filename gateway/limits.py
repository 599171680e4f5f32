"""Abuse limits: token buckets per client (and, if configured, per operator of a client), a concurrency cap
per client, and a cap on all requests of a process.

Applied only after the signature verified, so forged traffic cannot spend a real client's budget. On SQLite
(one process) the buckets live in memory (RateLimiter). On PostgreSQL every replica takes from the same
buckets, rows of rate_buckets (SharedRateLimiter): N replicas behind a balancer allow a client the configured
rate, not N times it. The concurrency caps stay per process: they guard a process's threads, not the bank.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, Float, bindparam, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from gateway.storage.tables import rate_buckets


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimiter:
    rate: float                   # requests per second a client, refilled continuously
    burst: int                    # bucket size
    max_concurrent: int           # requests of one client being processed at once (per process)
    clock: Callable[[], float] = time.monotonic
    operator_rate: float | None = None   # requests per second an operator of a client; None: no such limit
    operator_burst: int = 0
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _in_flight: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self, client: str, operator: str | None = None) -> int | None:
        """Take a slot for `client` (and its `operator`): None if granted, else the seconds to wait (for
        Retry-After). A granted slot is given back with release()."""
        with self._lock:
            if self._in_flight.get(client, 0) >= self.max_concurrent:
                return 1
            self._in_flight[client] = self._in_flight.get(client, 0) + 1
        wait = self._take(client, self.rate, self.burst)
        if wait is None and self.operator_rate is not None and operator is not None:
            wait = self._take(f"{client}/{operator}", self.operator_rate, self.operator_burst)
            if wait is not None:
                self._give_back(client)   # refused for the operator: the client's token is not spent
        if wait is not None:
            self.release(client)
        return wait

    def release(self, client: str) -> None:
        with self._lock:
            self._in_flight[client] -= 1

    def _take(self, key: str, rate: float, burst: int) -> int | None:
        now = self.clock()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                b = self._buckets[key] = _Bucket(float(burst), now)
            b.tokens = min(float(burst), b.tokens + (now - b.stamp) * rate)
            b.stamp = now
            if b.tokens < 1.0:
                return max(1, math.ceil((1.0 - b.tokens) / rate))
            b.tokens -= 1.0
            return None

    def _give_back(self, key: str) -> None:
        with self._lock:
            self._buckets[key].tokens += 1.0


# A claim of tokens from a shared bucket, in one statement: refill by the time since the row was last touched
# (the database's clock, the same for every replica), take what is asked for or what is there, remember how
# many were granted. The row is locked for this statement only (its own short transaction).
_AVAILABLE = func.least(bindparam("burst"), rate_buckets.c.tokens + func.greatest(
    0, func.extract("epoch", func.now() - rate_buckets.c.stamp)) * bindparam("rate"))
_GRANTED = func.least(bindparam("want"), func.floor(_AVAILABLE))
_CLAIM = (update(rate_buckets).where(rate_buckets.c.bucket == bindparam("key"))
          .values(tokens=_AVAILABLE - _GRANTED, granted=_GRANTED, stamp=func.now())
          .returning(rate_buckets.c.granted, rate_buckets.c.tokens))
_NEW = pg_insert(rate_buckets).values(bucket=bindparam("key"), tokens=bindparam("burst", type_=Float), granted=0,
                                     stamp=func.now()).on_conflict_do_nothing()   # a twin replica made it first


@dataclass
class SharedRateLimiter(RateLimiter):
    """The buckets in the database, shared by every replica (PostgreSQL). A replica takes a few tokens at a
    time and spends them locally for up to `lease_seconds`, so most requests cost no statement; tokens it
    leased and did not spend in time are lost, never handed out twice, so all replicas together stay within
    the bucket (a replica may at worst refuse a little early)."""

    engine: Engine | None = None
    lease_seconds: float = 1.0
    _leases: dict[str, tuple[int, float]] = field(default_factory=dict)   # key -> (tokens left, until)
    _claiming: dict[str, threading.Lock] = field(default_factory=dict)

    def _take(self, key: str, rate: float, burst: int) -> int | None:
        with self._lock:
            if self._spend(key):
                return None
            claiming = self._claiming.setdefault(key, threading.Lock())
        with claiming:   # one claim a bucket at a time in this process; the others then spend what it got
            with self._lock:
                if self._spend(key):
                    return None
            # A twentieth of a second's worth at a time: one statement per so many requests, and little
            # left idle in one replica while another waits.
            want = max(1, min(burst, math.ceil(rate / 20)))
            granted, left = self._claim(key, rate, burst, want)
            if granted == 0:
                return max(1, math.ceil((1.0 - left) / rate))
            with self._lock:
                self._leases[key] = (granted - 1, self.clock() + self.lease_seconds)
            return None

    def _spend(self, key: str) -> bool:
        left, until = self._leases.get(key, (0, 0.0))
        if left > 0 and self.clock() < until:
            self._leases[key] = (left - 1, until)
            return True
        return False

    def _give_back(self, key: str) -> None:
        with self._lock:
            left, until = self._leases.get(key, (0, 0.0))
            self._leases[key] = (left + 1, until)

    def _claim(self, key: str, rate: float, burst: int, want: int) -> tuple[int, float]:
        """(tokens granted, tokens left in the shared bucket) for up to `want` tokens of `key`."""
        assert self.engine is not None, "a SharedRateLimiter needs the engine of the shared database"
        params = {"key": key, "rate": rate, "burst": burst, "want": want}
        with self.engine.begin() as conn:
            row = conn.execute(_CLAIM, params).first()
            if row is None:   # the bucket's first request on any replica: it starts full
                conn.execute(_NEW, {"key": key, "burst": float(burst)})
                row = conn.execute(_CLAIM, params).one()
        return int(row.granted), float(row.tokens)


class InFlight:
    """A cap on all requests being processed by this process: past it, OVERLOADED (503)."""

    def __init__(self, limit: int):
        self.limit, self.count, self._lock = limit, 0, threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.count >= self.limit:
                return False
            self.count += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.count -= 1
