"""The gateway's crash points (gateway/protocol/crashpoints.py): `DIRECTLINK_CRASH_AT=<name>` makes a real
process SIGKILL itself there; tests/scenarios/test_simulation.py installs a hook on `point` instead.

The batch points are SQLite's group commit (gateway/storage/committer.py): they are armed by the same variable
but are a set of their own, `batch`, since they belong to many requests at once: the simulation, which runs one
request at a time, crashes a batch of one at the request's points already."""
from __future__ import annotations

from gateway.protocol.crashpoints import CrashPoints
from gateway.storage.committer import GroupCommit

REQUEST_BEFORE_COMMIT = "request_before_commit"     # the operation ran, its transaction is still open
REQUEST_AFTER_COMMIT = "request_after_commit"       # committed, the answer not yet sent
CLEARING_AFTER_SENT = "clearing_after_sent"         # marked PROCESSING, not yet handed to clearing
CLEARING_AFTER_ANSWER = "clearing_after_answer"     # clearing decided, our books not yet updated

ALL = (REQUEST_BEFORE_COMMIT, REQUEST_AFTER_COMMIT, CLEARING_AFTER_SENT, CLEARING_AFTER_ANSWER)

point = CrashPoints("DIRECTLINK_CRASH_AT", ALL)

BATCH_BEFORE_COMMIT = GroupCommit.BEFORE_COMMIT   # every turn of the batch done, its COMMIT not yet sent
BATCH_AFTER_COMMIT = GroupCommit.AFTER_COMMIT     # committed, none of its answers released yet
BATCH = (BATCH_BEFORE_COMMIT, BATCH_AFTER_COMMIT)

batch = CrashPoints("DIRECTLINK_CRASH_AT", BATCH)
