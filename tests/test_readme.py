"""The README's "Running a gateway" works when pasted as it is: its shell block runs here, line for line,
under bash with -e (any command that fails fails the test), and what it prints is checked. Two things differ
from a paste, each for a reason: the virtual environment is the one running the tests (the block's first line
would create and install a second one, a minute of work that `make test` did already), and the port is a
free one instead of 8080 (tests run side by side), which `send` is told by DIRECTLINK_URL."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from processes import free_port

README = Path(__file__).resolve().parents[1] / "README.md"

pytestmark = pytest.mark.slow


def running_a_gateway() -> str:
    section = README.read_text("utf-8").split("## Running a gateway", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_readme_block_runs_as_written(tmp_path):
    block = running_a_gateway()
    first, rest = block.split("\n", 1)
    assert first.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install")
    port = str(free_port())
    assert rest.count("8080") == 2 and "--url" not in rest
    # `wait` at the end: the test leaves no gateway running behind it (the block's `kill %1` stops it).
    script = "set -euo pipefail\n" + rest.replace("8080", port) + "wait\n"
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "DIRECTLINK_URL": f"http://127.0.0.1:{port}", "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(Path(venv_bin).parent)}
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    answers = re.findall(r"<Response.*?</Response>", done.stdout, re.S)
    assert len(answers) == 3                              # dry run, approval, statement (the payment went to a file)
    dry_run, approval, statement = answers
    assert 'dryRun="true"' in dry_run and "<PaymentId>" not in dry_run
    paid = (tmp_path / "mybank" / "paid.xml").read_text("utf-8")
    assert "<State>PENDING_APPROVAL</State>" in paid
    assert "<State>SETTLED</State>" in approval
    assert "<ClientRef>INV-2026-0001</ClientRef>" in statement and "250000.00" in statement
    assert done.stderr.count("(signature verified)") == 4
