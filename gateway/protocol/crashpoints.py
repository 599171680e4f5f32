"""Crash points for crash-safety tests, one mechanism for the gateway and the agent.

A crash point is a named place where dying is survivable by design. A real process told by its environment
variable (`DIRECTLINK_CRASH_AT`, `DIRECTLINK_AGENT_CRASH_AT`) SIGKILLs itself there, and the test starts it
again and checks that nothing was lost or doubled; an in-process simulation replaces `hook` instead. Kept in
the shared library because the agent may not import the server.
"""
from __future__ import annotations

import os
import signal
from collections.abc import Callable


class CrashPoints:
    """The crash points of one program, armed by one environment variable."""

    def __init__(self, variable: str, names: tuple[str, ...]):
        self.variable, self.names = variable, names
        self.hook: Callable[[str], None] = self._die_if_named

    def _die_if_named(self, name: str) -> None:
        if os.environ.get(self.variable) == name:
            os.kill(os.getpid(), signal.SIGKILL)

    def __call__(self, name: str) -> None:
        self.hook(name)
