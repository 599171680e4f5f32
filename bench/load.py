"""A small closed-loop load generator: C concurrent clients post pre-built bodies over keep-alive HTTP.

The same generator loads the baseline and the gateway, so their ratio holds on a noisy machine."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class Result:
    requests: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]
    # The whole machine during the measured run, where /proc/stat tells it: core-seconds busy (anything but
    # idle and I/O wait) and the load generator's own share of them.
    busy_cores: float | None = field(default=None, compare=False)
    loader_cores: float = field(default=0.0, compare=False)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    @property
    def all_ok(self) -> bool:
        """Every answer was 200: a ratio over failed requests measures nothing (the server's log says why)."""
        return set(self.statuses) == {200}

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    @staticmethod
    def merged(results: list["Result"]) -> "Result":
        """Several runs as one: all their requests over all their time."""
        statuses: dict[int, int] = {}
        for r in results:
            for code, n in r.statuses.items():
                statuses[code] = statuses.get(code, 0) + n
        return Result(sum(r.requests for r in results), sum(r.seconds for r in results),
                      [x for r in results for x in r.latencies], statuses)

    def line(self, name: str) -> str:
        return (f"{name:<44} {self.throughput:8.0f} req/s   p50 {self.pct(0.50):6.1f} ms   "
                f"p99 {self.pct(0.99):6.1f} ms   ({self.requests} requests, statuses {self.statuses})")


async def _run(urls: list[str], bodies: list[bytes], concurrency: int) -> Result:
    queue = list(reversed(bodies))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        async def worker(url: str):
            while queue:
                body = queue.pop()
                t0 = time.perf_counter()
                r = await client.post(url, content=body, headers={"Content-Type": "application/xml"})
                latencies.append(time.perf_counter() - t0)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        start = time.perf_counter()
        await asyncio.gather(*(worker(urls[i % len(urls)]) for i in range(concurrency)))
        return Result(len(bodies), time.perf_counter() - start, latencies, statuses)


def load(urls: str | list[str], bodies: list[bytes], concurrency: int = 16, warmup: int = 200) -> Result:
    """Warm up, then post every body once with `concurrency` clients (spread over the URLs)."""
    urls = [urls] if isinstance(urls, str) else urls
    asyncio.run(_run(urls, bodies[:warmup], concurrency))
    machine, own = machine_cpu(), time.process_time()
    result = asyncio.run(_run(urls, bodies[warmup:], concurrency))
    result.loader_cores = (time.process_time() - own) / result.seconds
    if machine is not None:
        result.busy_cores = (machine_cpu() - machine) / os.sysconf("SC_CLK_TCK") / result.seconds
    return result


def machine_cpu() -> int | None:
    """Jiffies every core has spent busy since boot, from /proc/stat's first line, or None without /proc.
    Busy is user, nice, system, irq and softirq time: what the gateways, the database and this process used,
    not idle, I/O wait or time the hypervisor took (steal; guest time is already counted in user)."""
    try:
        with open("/proc/stat") as f:
            user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in f.readline().split()[1:8])
    except OSError:
        return None
    return user + nice + system + irq + softirq


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server in a child process (its own interpreter), stopped on exit."""

    def __init__(self, argv: list[str], port: int, env: dict | None = None):
        self.port = port
        self.log = open(f"/tmp/directlink-bench-{port}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, env={**os.environ, **(env or {})}, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {argv}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/messages"

    def cpu_seconds(self) -> float | None:
        """CPU time the server process has used so far (user and system), or None where there is no /proc:
        what requests cost the server, whatever the load generator does."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def baseline(port: int | None = None) -> Server:
    port = port or free_port()
    return Server([sys.executable, "-m", "uvicorn", "bench.baseline_app:app", "--port", str(port),
                   "--log-level", "warning"], port)


def gateway(home: str, port: int | None = None, env: dict | None = None) -> Server:
    port = port or free_port()
    return Server([sys.executable, "-c", "from gateway.cli import main; main()", "serve", "--home", home,
                   "--port", str(port), "--log-level", "warning"], port, {**UNLIMITED, **(env or {})})


# Benchmarks measure the request path, not the abuse limits: one client sends everything here.
UNLIMITED = {"DIRECTLINK_RATE_LIMIT_PER_SECOND": "1e9", "DIRECTLINK_RATE_LIMIT_BURST": "1000000000",
             "DIRECTLINK_MAX_CONCURRENT_PER_CLIENT": "100000", "DIRECTLINK_MAX_IN_FLIGHT": "100000"}


def median(values: list[float]) -> float:
    return statistics.median(values)
