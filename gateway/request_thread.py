"""SQLite's requests on one thread of their own, each answer released once its batch is durable.

SQLite has one writer, so the requests' units of work run one after the other whatever the number of threads;
with a thread a request (there were 40) their parsing, verifying and signing took the one interpreter from
each other, at a cost: 2.2 ms of the process's CPU a BalanceQuery against 1.6 ms on one thread
(docs/performance.md). So one thread runs every request, in arrival order: it keeps the batch of group commit
(gateway/storage/committer.py) open while requests wait in its queue, commits it when the queue is empty or
the batch is at its bounds, and only then hands the batch's answers back to the event loop, which reads and
writes HTTP meanwhile. One thread hop a request, there and back.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass

from gateway.pipeline import Gateway, Pending, Reply
from gateway.storage.committer import GroupCommit

log = logging.getLogger("directlink.requests")
# A body over this size is parsed and verified for a millisecond or more before its turn at the writer: the
# batch open before it is committed first rather than held open for it.
LARGE = 64 * 1024


@dataclass
class _Job:
    body: bytes
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    reply: Reply | None = None
    pending: Pending | None = None


class RequestThread:
    """Runs `Gateway.handle` for an event loop's requests on one thread. Started by the first request."""

    def __init__(self, gateway: Gateway):
        if not isinstance(gateway.committer, GroupCommit):
            raise TypeError("the request thread is for SQLite's group commit")
        self._gateway = gateway
        self._committer = gateway.committer
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        # The batch stays open while requests wait here: they will join it.
        self._committer.more = lambda: not self._queue.empty()

    async def handle(self, body: bytes) -> Reply:
        """The answer to a request body, once it is durable; an exception for a defect (nothing accepted)."""
        with self._starting:   # one thread, whichever event loop asks first
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="directlink-requests", daemon=True)
                self._thread.start()
        loop = asyncio.get_running_loop()
        job = _Job(body, loop, loop.create_future())
        self._queue.put(job)
        return await job.future

    def close(self) -> None:
        """Answer what is queued, then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        waiting: list[_Job] = []
        while (job := self._queue.get()) is not None:
            if len(job.body) > LARGE:
                # Parsed and verified for milliseconds before its turn: the batch does not wait for it.
                self._committer.commit_open()
            try:
                job.reply, job.pending = self._gateway.handle_deferred(job.body)
                waiting.append(job)
            except BaseException as err:  # noqa: BLE001 - a defect: its unit rolled back, nothing was accepted
                _deliver(job, error=err)   # (and the thread goes on: every later request depends on it)
            # With nobody else to join it, the batch commits now (a request that wrote nothing, say over the
            # rate limit, may have followed turns that left it open); else at its bounds, which requests that
            # take no turn would not otherwise check.
            self._committer.commit_open(due_only=not self._queue.empty())
            waiting = [j for j in waiting if not _released(j)]
        self._committer.commit_open()
        for j in waiting:
            _released(j)


def _released(job: _Job) -> bool:
    """Hand a job's answer to its event loop if its batch is done; whether it was."""
    assert job.pending is not None and job.reply is not None
    if not job.pending.settled:
        return False
    try:
        job.pending.settle()   # returns at once now, or raises CommitFailed
    except Exception as err:  # noqa: BLE001 - the batch did not commit: nothing of it was accepted
        _deliver(job, error=err)
    else:
        _deliver(job, reply=job.reply)
    return True


def _deliver(job: _Job, reply: Reply | None = None, error: BaseException | None = None) -> None:
    def complete() -> None:
        if job.future.done():   # the client went away and its task was cancelled
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(reply)
    try:
        job.loop.call_soon_threadsafe(complete)
    except RuntimeError:   # the event loop is closed: nobody is waiting any more
        log.warning("an answer was ready after its event loop closed")
