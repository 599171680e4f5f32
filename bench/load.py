"""Loading servers: load_wrk drives wrk, the load generator of every ratio the benchmarks give, and the
servers' processes (the baseline, `directlink serve`) are started and measured here.

load() is a small closed-loop generator in Python (C concurrent clients post pre-built bodies over keep-alive
HTTP) for scenarios wrk cannot express. It saturates near 850 requests a second by itself on 2 cores, so it
measures itself as much as the server: it never gives a ratio."""
from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Result:
    requests: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]
    # The whole machine during the measured run, where /proc/stat tells it: cores busy (machine_cpu: not idle,
    # I/O wait or steal) and the load generator's own share of them.
    busy_cores: float | None = field(default=None, compare=False)
    loader_cores: float = field(default=0.0, compare=False)
    server_cores: float | None = field(default=None, compare=False)   # the servers given to load()
    # wrk reports percentiles, not each latency: {50: ms, 99: ms}
    percentiles: dict[int, float] | None = field(default=None, compare=False)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    @property
    def all_ok(self) -> bool:
        """Every answer was 200: a ratio over failed requests measures nothing (the server's log says why)."""
        return set(self.statuses) == {200}

    def pct(self, p: float) -> float:
        if self.percentiles is not None:
            return self.percentiles[round(p * 100)]
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    @staticmethod
    def merged(results: list[Result]) -> Result:
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


def load(urls: str | list[str], bodies: list[bytes], concurrency: int = 16, warmup: int = 200,
         servers: list[Server] = ()) -> Result:
    """Warm up, then post every body once with `concurrency` clients (spread over the URLs); the CPU the
    machine, this process and `servers` used in the measured part goes with the result."""
    urls = [urls] if isinstance(urls, str) else urls
    asyncio.run(_run(urls, bodies[:warmup], concurrency))
    machine, own, theirs = machine_cpu(), time.process_time(), _servers_cpu(servers)
    result = asyncio.run(_run(urls, bodies[warmup:], concurrency))
    return _with_cpu(result, machine, time.process_time() - own, servers, theirs)


WRK_SCRIPT = Path(__file__).with_name("wrk_bodies.lua")


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def need_wrk() -> None:
    """wrk, installed with apt-get where it is missing (as root, or through sudo without a password); the
    benchmark stops, saying so, if it cannot be had: a ratio is never measured with the Python client."""
    if have_wrk():
        return
    print("wrk is not installed: installing it with apt-get install -y wrk")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    done = subprocess.run([*sudo, "apt-get", "install", "-y", "wrk"], capture_output=True, text=True)
    if done.returncode != 0 or not have_wrk():
        raise SystemExit(f"wrk could not be installed ({(done.stderr or done.stdout).strip()[-300:]}); install it "
                         f"(Debian and Ubuntu: apt-get install wrk) and run the benchmark again")


def load_wrk(urls: list[str], bodies: list[bytes], seconds: float, connections: int = 16,
             warmup: int = 400, servers: list[Server] = ()) -> Result:
    """Post bodies for `seconds` with wrk, one wrk process of one thread for each URL (the connections
    shared among them) and each with a part of the bodies of its own, in order; the warm-up bodies first,
    for a second. The CPU used in the measured part goes with the result, as for load().

    A load generator in C leaves the cores to what is measured: the Python one above took 0.34-0.37 of a core
    beside two replicas making 224-271 payments a second on 2 cores, wrk 0.02. Each body is posted at most
    once, unless a process runs out of them: then it starts over, the gateway answers those as replays, and
    the result counts them as failed (give more bodies than `seconds` can use)."""
    with tempfile.TemporaryDirectory() as tmp:
        def run(part: list[bytes], duration: float, tag: str) -> Result:
            files = []
            for i, share in enumerate(_split(part, len(urls))):
                files.append(Path(tmp) / f"{tag}-{i}.bin")
                files[-1].write_bytes(b"".join(b"%d\n%s" % (len(b), b) for b in share))
            machine, children, theirs = machine_cpu(), _children_cpu(), _servers_cpu(servers)
            procs = [subprocess.Popen(["wrk", "-t1", f"-c{max(1, connections // len(urls))}",
                                       f"-d{duration:g}s", "--timeout", "60s", "-s", str(WRK_SCRIPT), url,
                                       "--", str(path)], stdout=subprocess.PIPE, text=True)
                     for url, path in zip(urls, files)]
            outputs = [p.communicate()[0] for p in procs]
            return _with_cpu(_wrk_result(outputs), machine, _children_cpu() - children, servers, theirs)

        run(bodies[:warmup], 1, "warmup")
        return run(bodies[warmup:], seconds, "measured")


def _split(bodies: list[bytes], n: int) -> list[list[bytes]]:
    """n consecutive parts of about the same size (each keeps the bodies' turn of clients)."""
    size = -(-len(bodies) // n)
    return [bodies[i * size:(i + 1) * size] for i in range(n)]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wrk_result(outputs: list[str]) -> Result:
    """One Result over the wrk processes: their requests over the longest duration, failures under status 0
    and the percentiles of the process that saw the slower ones (wrk gives no single latencies to merge)."""
    runs = []
    for out in outputs:
        line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            raise RuntimeError(f"wrk gave no result:\n{out}")
        runs.append([int(x) for x in line.split()[1:]])
    requests, failed = sum(r[0] for r in runs), sum(r[2] for r in runs)
    statuses = {200: requests - failed, **({0: failed} if failed else {})}
    return Result(requests, max(r[1] for r in runs) / 1e6, [], statuses,
                  percentiles={50: max(r[3] for r in runs) / 1000, 99: max(r[4] for r in runs) / 1000})


def _servers_cpu(servers) -> float:
    return sum(s.cpu_seconds() or 0 for s in servers)


def _with_cpu(result: Result, machine: int | None, loader: float, servers, theirs: float) -> Result:
    """The result with what the machine, the load generator and the servers used over its seconds."""
    result.loader_cores = loader / result.seconds
    if servers:
        result.server_cores = (_servers_cpu(servers) - theirs) / result.seconds
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
