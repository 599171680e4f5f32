"""Real processes for tests: `directlink serve` started, awaited and always stopped; a `directlink` command;
and xmlsec1, the independent judge of signatures."""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from gateway.cli import main; main()"]
XMLSEC1 = shutil.which("xmlsec1") or "/usr/bin/xmlsec1"


def env_with(**extra: str) -> dict[str, str]:
    """The environment without DIRECTLINK_* settings (only the home's directlink.toml counts) plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIRECTLINK_")}
    env.update(extra)
    return env


def cli(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `directlink ARGS...` (this interpreter's installed entry point) without DIRECTLINK_* overrides."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env_with(),
                          cwd=cwd)


def xmlsec_valid(document: bytes, cert_file: Path, workdir: Path) -> bool:
    """`xmlsec1 --verify` with the given certificate's public key: exit code 0 means a valid signature."""
    f = workdir / f"doc-{secrets.token_hex(6)}.xml"
    f.write_bytes(document)
    done = subprocess.run([XMLSEC1, "--verify", "--pubkey-cert-pem", str(cert_file), str(f)],
                          capture_output=True, timeout=30)
    return done.returncode == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Servers:
    """`directlink serve` processes of one test; whatever is still running at the end is stopped."""

    def __init__(self, home: Path, logs: Path):
        self.home, self.logs = home, logs
        self.procs: list[subprocess.Popen] = []

    def start(self, tls: httpx.Client | None = None, **env: str) -> tuple[subprocess.Popen, str]:
        """Start one server on a free port; returns it and its base URL once /healthz answers (over https
        through `tls`, a client that trusts its TLS certificate, when the server terminates TLS)."""
        port = free_port()
        log_path = self.logs / f"serve-{len(self.procs)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen([*CLI, "serve", "--home", str(self.home), "--port", str(port)], cwd=ROOT,
                                    stdout=log, stderr=subprocess.STDOUT, env=env_with(**env))
        self.procs.append(proc)
        base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"the server exited early:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"the server did not come up:\n{log_path.read_text()}"
            try:
                if (tls or httpx).get(f"{base}/healthz", timeout=1).status_code == 200:
                    return proc, base
            except httpx.TransportError:
                pass
            time.sleep(0.1)

    @staticmethod
    def stop(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs:
            self.stop(proc)
