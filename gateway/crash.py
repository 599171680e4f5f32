"""Crash points for crash-safety tests: named places where a test can make the process die abruptly.

`DIRECTLINK_CRASH_AT=<name>` makes a real process SIGKILL itself there (the tests then restart it and
check that nothing was lost or doubled); in-process simulations install a hook instead.
"""
from __future__ import annotations

import os
import signal
from collections.abc import Callable

REQUEST_BEFORE_COMMIT = "request_before_commit"     # the operation ran, its transaction is still open
REQUEST_AFTER_COMMIT = "request_after_commit"       # committed, the answer not yet sent
CLEARING_AFTER_SENT = "clearing_after_sent"         # marked PROCESSING, not yet handed to clearing
CLEARING_AFTER_ANSWER = "clearing_after_answer"     # clearing decided, our books not yet updated


def _die_if_named(name: str) -> None:
    if os.environ.get("DIRECTLINK_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


hook: Callable[[str], None] = _die_if_named


def point(name: str) -> None:
    """A place where a crash is survivable by design; tests may crash here."""
    hook(name)
