"""Crash points of the agent, for crash-safety tests: `DIRECTLINK_AGENT_CRASH_AT=<name>` makes a real agent
process SIGKILL itself there; the test starts it again and checks that nothing was lost or doubled.
(The gateway has the same mechanism in gateway/crash.py.)"""
from __future__ import annotations

import os
import signal

BEFORE_SEND = "before_send"                        # the signed request is stored, not yet sent
AFTER_SEND = "after_send"                          # the gateway answered; nothing of it recorded
AFTER_OUTCOME = "after_outcome"                    # outcome and report recorded; inbox, outbox untouched
BEFORE_MOVE = "before_move"                        # status report in the inbox; the file still in the outbox
POLL_AFTER_FETCH = "poll_after_fetch"              # new payment states received; nothing recorded
STATEMENT_AFTER_FETCH = "statement_after_fetch"    # a statement page received; nothing recorded
STATEMENT_AFTER_RECORD = "statement_after_record"  # page and cursor recorded; the file not yet written

ALL = (BEFORE_SEND, AFTER_SEND, AFTER_OUTCOME, BEFORE_MOVE, POLL_AFTER_FETCH, STATEMENT_AFTER_FETCH,
       STATEMENT_AFTER_RECORD)


def point(name: str) -> None:
    """A place where a crash is survivable by design; tests may crash here."""
    if os.environ.get("DIRECTLINK_AGENT_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
