"""The gateway's crash points (gateway/protocol/crashpoints.py): `DIRECTLINK_CRASH_AT=<name>` makes a real
process SIGKILL itself there; tests/scenarios/test_simulation.py installs a hook on `point` instead."""
from __future__ import annotations

from gateway.protocol.crashpoints import CrashPoints

REQUEST_BEFORE_COMMIT = "request_before_commit"     # the operation ran, its transaction is still open
REQUEST_AFTER_COMMIT = "request_after_commit"       # committed, the answer not yet sent
CLEARING_AFTER_SENT = "clearing_after_sent"         # marked PROCESSING, not yet handed to clearing
CLEARING_AFTER_ANSWER = "clearing_after_answer"     # clearing decided, our books not yet updated

ALL = (REQUEST_BEFORE_COMMIT, REQUEST_AFTER_COMMIT, CLEARING_AFTER_SENT, CLEARING_AFTER_ANSWER)

point = CrashPoints("DIRECTLINK_CRASH_AT", ALL)
