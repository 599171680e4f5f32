"""Abuse limits, per process: a token bucket and a concurrency cap per client.

Applied only after the signature verified, so forged traffic cannot spend a real client's budget.
Each replica keeps its own buckets: with N replicas behind a balancer a client may reach N times the
rate (docs/security.md); the database-backed guarantees (limits, idempotency) do not depend on this.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    in_flight: int = 0


@dataclass
class RateLimiter:
    rate: float                   # requests per second, refilled continuously
    burst: int                    # bucket size
    max_concurrent: int           # requests of one client being processed at once
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self, client: str) -> int | None:
        """Take a slot for `client`: None if granted, else the seconds to wait (for Retry-After)."""
        now = self.clock()
        with self._lock:
            b = self._buckets.get(client)
            if b is None:
                b = self._buckets[client] = _Bucket(float(self.burst), now)
            b.tokens = min(float(self.burst), b.tokens + (now - b.stamp) * self.rate)
            b.stamp = now
            if b.in_flight >= self.max_concurrent:
                return 1
            if b.tokens < 1.0:
                return max(1, math.ceil((1.0 - b.tokens) / self.rate))
            b.tokens -= 1.0
            b.in_flight += 1
            return None

    def release(self, client: str) -> None:
        with self._lock:
            self._buckets[client].in_flight -= 1


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
