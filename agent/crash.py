"""The agent's crash points (gateway/protocol/crashpoints.py): `DIRECTLINK_AGENT_CRASH_AT=<name>` makes a real
agent process SIGKILL itself there; the test starts it again and checks that nothing was lost or doubled."""
from __future__ import annotations

from gateway.protocol.crashpoints import CrashPoints

BEFORE_SEND = "before_send"                        # the signed request is stored, not yet sent
AFTER_SEND = "after_send"                          # the gateway answered; nothing of it recorded
AFTER_OUTCOME = "after_outcome"                    # outcome and report recorded; inbox, outbox untouched
BEFORE_MOVE = "before_move"                        # status report in the inbox; the file still in the outbox
POLL_AFTER_FETCH = "poll_after_fetch"              # new payment states received; nothing recorded
STATEMENT_AFTER_FETCH = "statement_after_fetch"    # a statement page received; nothing recorded
STATEMENT_AFTER_RECORD = "statement_after_record"  # page and cursor recorded; the file not yet written

ALL = (BEFORE_SEND, AFTER_SEND, AFTER_OUTCOME, BEFORE_MOVE, POLL_AFTER_FETCH, STATEMENT_AFTER_FETCH,
       STATEMENT_AFTER_RECORD)


point = CrashPoints("DIRECTLINK_AGENT_CRASH_AT", ALL)
