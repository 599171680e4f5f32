"""One pass of the agent, and the schedule that repeats it (spec section 7, `directlink agent`).

A pass: write inbox files still owed from before; finish files whose request is still open (a crash or a
lost answer); submit each new outbox file; ask about unfinished payments; pull new statement entries.
Each step commits its decision to the state file before it acts (agent/state.py), so a pass killed
anywhere and run again neither loses nor doubles a payment, a status report or a statement entry."""
from __future__ import annotations

import base64
import copy
import hashlib
import logging
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from adapters import registry
from adapters.base import StatusReport
from adapters.iso20022.pain001 import file_message_id, payment_info_ids
from agent import answers, crash, folders, logs
from agent.config import AgentConfig, ConfigError, load
from agent.link import Link, NoAnswer
from agent.state import DONE, FAILED, SUBMITTING, State, StateBusy
from domain.codes import PaymentState, ResultCode
from domain.models import PaymentStatus
from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q

# Asked about until they end (docs/lifecycle.md); a SETTLED payment that is later returned shows up in the
# statement as a reversal.
NOT_FINAL = tuple(s.value for s in (PaymentState.PENDING_APPROVAL, PaymentState.ACCEPTED,
                                     PaymentState.PROCESSING, PaymentState.UNKNOWN))
# Answers that judge the file itself: it goes to failed/. Any other refusal (a certificate, a limit on
# requests, a gateway defect) says nothing about the file, which is sent again on the next pass.
# XML_TOO_LARGE is not among them: the gateway signs it before reading a request, so it names none, and a
# replayed one must not make a file the gateway took look refused (its payments re-keyed would be paid
# twice). A file too large for the gateway is refused here instead, unsent (max_body_bytes).
FILE_FAULTS = {c.value for c in (
    ResultCode.DOCUMENT_INVALID, ResultCode.UNSUPPORTED_FORMAT, ResultCode.XML_MALFORMED,
    ResultCode.XML_SCHEMA_INVALID, ResultCode.XML_FORBIDDEN_CONSTRUCT, ResultCode.XML_ENCODING_INVALID)}
NOT_VISIBLE = "NOT_VISIBLE"   # the agent's own mark: the gateway no longer shows this payment to the operator
STATUS_QUERY_MAX = 1000   # ClientRef/PaymentId elements one PaymentStatusQuery may hold


@dataclass
class Summary:
    submitted: int = 0
    failed: int = 0
    payments: Counter = field(default_factory=Counter)    # state -> payments in submitted files
    polled: int = 0
    changed: int = 0
    entries: int = 0
    inbox_files: int = 0
    problems: list[str] = field(default_factory=list)     # not the files' fault: the exit code says so
    unreachable: bool = False    # the gateway did not answer, or its answer was not trusted: exit status 3

    def text(self) -> str:
        states = ", ".join(f"{n} {s}" for s, n in sorted(self.payments.items())) or "none"
        return (f"files submitted {self.submitted}, failed {self.failed}; payments {states}; "
                f"polled {self.polled} ({self.changed} changed); statement entries {self.entries}; "
                f"inbox files written {self.inbox_files}; problems {len(self.problems)}")

    @property
    def busy(self) -> bool:
        return bool(self.submitted or self.failed or self.changed or self.entries or self.inbox_files
                    or self.problems)


class Agent:
    def __init__(self, cfg: AgentConfig):
        self.cfg = cfg
        for key, folder in (("outbox", cfg.outbox), ("inbox", cfg.inbox)):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise ConfigError(f"{cfg.source}: {key}: {folder} cannot be made a folder ({err.strerror})") from err
        self.state = State(cfg.state, cfg.outbox)
        self.link = Link(cfg)
        self.status_writer, is_text = registry.status_writer(cfg.status_format, cfg.formats)
        self.status_extension = cfg.status_format.rsplit(".", 1)[-1] if is_text else "xml"
        self.stopping = threading.Event()

    def close(self) -> None:
        self.state.close()

    # ---- a pass -----------------------------------------------------------------------------------------

    def run_pass(self, *, statements: bool, poll_all: bool) -> Summary:
        summary = Summary()
        # processed/ and failed/ first: a file of the ERP's under one of their names must not stop the pass.
        for unsafe in folders.own_folders(self.cfg.processed, self.cfg.failed):
            self.refuse_unsafe(unsafe, summary)
        self.deliver(summary)
        try:
            self.resume(summary)
            self.scan_outbox(summary)
            self.poll(summary, poll_all)
            if statements:
                self.pull_statements(summary)
                if self.cfg.receipts != "none":
                    self.pull_receipts(summary)
        except (NoAnswer, answers.AnswerUnreadable) as err:
            # Nothing more can be done without a usable gateway; every open request is kept for the next pass.
            summary.problems.append(str(err))
            summary.unreachable = True
            logs.event("gateway_unreachable", f"  ! {err}", level=logging.ERROR, error=str(err))
        return summary

    # ---- inbox ------------------------------------------------------------------------------------------

    def deliver(self, summary: Summary) -> None:
        """Write every inbox file recorded but not yet written (the same name and bytes if it is a retry)."""
        for row in self.state.pending_deliveries():
            folders.write_atomically(self.cfg.inbox, row["name"], row["data"])
            self.state.delivered(row["seq"])
            summary.inbox_files += 1
            logs.event("inbox_written", f"  wrote {self.cfg.inbox.name}/{row['name']}", file=row["name"],
                       bytes=len(row["data"]))

    def _status_report(self, db, label: str, batch_id: str | None, statuses: list[PaymentStatus],
                       sha256: str) -> str:
        data = self.status_writer(StatusReport(tuple(statuses), original_message_id=batch_id,
                                               payment_info_ids=self.state.payment_blocks(db, sha256)))
        return self.state.add_delivery(db, f"{{seq}}-status-{label}.{self.status_extension}", data)

    # ---- outbox -----------------------------------------------------------------------------------------

    def resume(self, summary: Summary) -> None:
        """Files whose request went out with no answer recorded: that request first, before anything new."""
        for row in self.state.db.execute("SELECT sha256 FROM files WHERE state = ? ORDER BY seen_at",
                                         (SUBMITTING,)).fetchall():
            self.send(row["sha256"], summary)

    def scan_outbox(self, summary: Summary) -> None:
        files, unsafe = folders.waiting(self.cfg.outbox)
        for entry in unsafe:
            self.refuse_unsafe(entry, summary)
        for file in files:
            if self.stopping.is_set():
                return
            row = self.state.file(file.sha256)
            if row is None:
                fmt = self.cfg.format_of(file.name)
                message_id, signed_at, body = self.link.sign(dl.document_submit(file.data, fmt))
                if len(body) > self.cfg.max_body_bytes:
                    self.refuse_too_large(file, len(body), summary)
                    continue
                self.state.record_intent(file.sha256, file.name, fmt, message_id, body, signed_at,
                                         payment_info_ids(file.data))
                logs.event("file_picked_up", None, file=file.name, format=fmt, sha256=file.sha256,
                           message_id=message_id)
                crash.point(crash.BEFORE_SEND)
                self.send(file.sha256, summary)
            elif row["state"] == SUBMITTING:
                continue                                    # still open: resume() sends it again
            elif row["name"] == file.name and not self._moved_before(file, row):
                self.move(file, row)                        # decided before a crash, not yet moved
            else:
                self.refuse_copy(file, row, summary)

    def _moved_before(self, file: folders.OutboxFile, row) -> bool:
        """True if this very file was moved out once already: then the ERP has dropped it a second time."""
        folder = self.cfg.processed if row["state"] == DONE else self.cfg.failed
        return folders.same_bytes(folder / file.name, file.data)

    def refuse_too_large(self, file: folders.OutboxFile, size: int, summary: Summary) -> None:
        """Refused here, before anything is recorded or sent: a request the gateway would not read. (Only a
        file never sent is judged so: one whose request may have gone out is left to the gateway.)"""
        reason = (f"XML_TOO_LARGE: the signed request is {size} bytes, over the gateway's limit of "
                  f"{self.cfg.max_body_bytes} (max_body_bytes); it was not sent: split the file")
        folders.move_failed(file, self.cfg.failed, reason)
        summary.failed += 1
        logs.event("file_refused", f"  FAILED {file.name}: {reason}", level=logging.WARNING, file=file.name,
                   code="XML_TOO_LARGE", detail=reason)

    def refuse_unsafe(self, entry: folders.Unsafe, summary: Summary) -> None:
        """Not read, not sent, not recorded: moved to failed/ as it is, with the reason."""
        try:
            folders.move_failed(entry, self.cfg.failed, entry.reason)
        except OSError as err:      # e.g. another user's file in a sticky outbox: it stays, and is reported
            problem = f"{entry.name}: {entry.reason}; it could not be moved to failed/ ({err.strerror})"
            summary.problems.append(problem)
            logs.event("file_unsafe", f"  ! {problem}", level=logging.ERROR, file=entry.name, reason=entry.reason)
            return
        summary.failed += 1
        logs.event("file_refused", f"  FAILED {entry.name}: {entry.reason}", level=logging.WARNING,
                   file=entry.name, code="UNSAFE_FILE", detail=entry.reason)

    def refuse_copy(self, file: folders.OutboxFile, row, summary: Summary) -> None:
        when = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(row["seen_at"]))
        outcome = "submitted" if row["state"] == DONE else f"refused ({row['reason']})"
        reason = (f"DUPLICATE_FILE: the same content as {row['name']}, first seen {when} and {outcome} "
                  f"(MessageId {row['message_id']}); this file was not sent again")
        folders.move_failed(file, self.cfg.failed, reason)
        summary.failed += 1
        logs.event("file_duplicate", f"  duplicate {file.name}: same content as {row['name']}; not sent",
                   level=logging.WARNING, file=file.name, earlier=row["name"], sha256=file.sha256)

    def send(self, sha256: str, summary: Summary) -> None:
        """Send a file's stored request (again), renewed first if the gateway would no longer take it."""
        row = self.state.file(sha256)
        body = row["request"]
        if self.link.age(row["signed_at"]) > self.cfg.resend_within_seconds:
            message_id, signed_at, body = self.link.sign(_operation(row["request"]))
            self.state.renew_request(sha256, message_id, body, signed_at)
            logs.event("request_renewed", None, file=row["name"], message_id=message_id,
                       previous=row["message_id"])
            row = self.state.file(sha256)
        answer = self.link.post(body)
        crash.point(crash.AFTER_SEND)
        self.record(row, answer, summary)
        crash.point(crash.AFTER_OUTCOME)
        self.deliver(summary)
        crash.point(crash.BEFORE_MOVE)
        row = self.state.file(sha256)
        if row["state"] not in (DONE, FAILED):
            return        # refused for a reason that is not the file's (a certificate, a limit): it stays to be sent again
        path = self.cfg.outbox / row["name"]
        try:
            data = folders.read_own(path)
        except (FileNotFoundError, folders.UnsafeFile):
            data = b""      # gone, or swapped for a link or another's file: that is not moved to processed/
        if hashlib.sha256(data).hexdigest() == sha256:        # still there, and still this file
            self.move(folders.OutboxFile(path, data, sha256), row)

    def record(self, row, answer: dl.Answer, summary: Summary) -> None:
        name, sha256 = row["name"], row["sha256"]
        if answer.code == ResultCode.OK:
            batch_id, statuses = answers.payment_report(answer.body)
            now = time.time()
            with self.state.transaction() as db:
                self.state.finish_file(db, sha256, DONE, batch_id, None)
                for s in statuses:
                    if s.payment_id:
                        self.state.add_payment(db, s.payment_id, s.client_ref, batch_id, sha256, str(s.state),
                                               now + self.cfg.poll_backoff_seconds)
                report = self._status_report(db, Path(name).stem, batch_id, statuses, sha256)
            counts = Counter(str(s.state) for s in statuses)
            summary.submitted += 1
            summary.payments.update(counts)
            logs.event("file_submitted", f"  sent {name} ({row['format']}): {len(statuses)} payment(s): "
                       + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f" -> {report}",
                       file=name, message_id=row["message_id"], batch_id=batch_id, states=dict(counts),
                       report=report)
        elif answer.code in FILE_FAULTS:
            reason = f"{answer.code}: {answer.detail} (MessageId {row['message_id']})"
            with self.state.transaction() as db:
                self.state.finish_file(db, sha256, FAILED, None, reason)
                # The ERP learns it where it reads every status: a pain.002 rejecting the whole file (GrpSts
                # RJCT) in the inbox, beside the .reason.txt in failed/ that a person reads. Other status
                # formats have no way to say "the whole file" and keep the .reason.txt alone.
                if self.cfg.status_format.startswith("pain.002."):
                    # OrgnlMsgId: the file's own MsgId when it has one to read, as the ERP knows the file by
                    # it; else (not XML, no pain.001) the request's MessageId, which its .reason.txt names too.
                    original = file_message_id(_file_of(row["request"])) or row["message_id"]
                    rejection = StatusReport((), original_message_id=original,
                                             rejected=(answer.code, answer.detail))
                    self.state.add_delivery(db, f"{{seq}}-status-{Path(name).stem}.{self.status_extension}",
                                            self.status_writer(rejection))
            summary.failed += 1
            logs.event("file_refused", f"  FAILED {name}: {answer.code}: {answer.detail}",
                       level=logging.WARNING, file=name, code=answer.code, detail=answer.detail,
                       message_id=row["message_id"])
        else:
            # A signed refusal means the gateway did nothing with this request, so the next attempt may be
            # signed afresh (new MessageId, the configuration as it is then: a fixed certificate or operator
            # takes effect). Payments stay idempotent by ClientRef. No answer at all is not this branch:
            # then the same bytes go again (NoAnswer), since they may have been executed.
            self.state.renew_request(sha256, row["message_id"], row["request"], 0)
            problem = f"{name}: the gateway answered {answer.code}: {answer.detail}; it will be sent again"
            summary.problems.append(problem)
            logs.event("file_not_taken", f"  ! {problem}", level=logging.ERROR, file=name, code=answer.code,
                       detail=answer.detail, message_id=row["message_id"])

    def move(self, file: folders.OutboxFile, row) -> None:
        assert row["state"] in (DONE, FAILED), f"{file.name} is still {row['state']}: it must stay in the outbox"
        if row["state"] == DONE:
            target = folders.move_processed(file, self.cfg.processed)
        else:
            target = folders.move_failed(file, self.cfg.failed, row["reason"])
        logs.event("file_moved", None, file=file.name, to=str(target))

    # ---- payments ---------------------------------------------------------------------------------------

    def poll(self, summary: Summary, poll_all: bool) -> None:
        """Ask about unfinished payments (by PaymentId, never by sending anything again); report changes."""
        rows = self.state.payments_to_poll(NOT_FINAL, None if poll_all else time.time())
        for start in range(0, len(rows), STATUS_QUERY_MAX):
            chunk = rows[start:start + STATUS_QUERY_MAX]
            found = self._statuses([r["payment_id"] for r in chunk], summary)
            crash.point(crash.POLL_AFTER_FETCH)
            self._record_polls(chunk, found, summary)
        self.deliver(summary)

    def _statuses(self, ids: list[str], summary: Summary) -> dict[str, PaymentStatus | None]:
        """PaymentId -> status; None for a payment the gateway no longer shows this operator (a grant
        withdrawn). The gateway answers NOT_FOUND for a whole query when one id is not visible, so such a
        query is halved until the one is found: the others go on being reported."""
        answer = self.link.call(dl.status_query(payment_ids=tuple(ids)))
        if answer.code == ResultCode.OK:
            return {s.payment_id: s for s in answers.payment_report(answer.body)[1]}
        if answer.code == ResultCode.NOT_FOUND and len(ids) > 1:
            half = len(ids) // 2
            return {**self._statuses(ids[:half], summary), **self._statuses(ids[half:], summary)}
        problem = f"payment status query: {answer.code}: {answer.detail}"
        summary.problems.append(problem)
        logs.event("poll_refused", f"  ! {problem}", level=logging.ERROR, code=answer.code, payments=ids)
        return {ids[0]: None} if answer.code == ResultCode.NOT_FOUND else {}

    def _record_polls(self, rows, found: dict[str, PaymentStatus | None], summary: Summary) -> None:
        now, base, most = time.time(), self.cfg.poll_backoff_seconds, self.cfg.poll_backoff_max_seconds
        changed: dict[tuple[str | None, str], list[PaymentStatus]] = defaultdict(list)
        with self.state.transaction() as db:
            for r in rows:
                if r["payment_id"] in found and found[r["payment_id"]] is None:
                    # Not visible any more: stop asking (the problem is reported); the ERP asks the bank.
                    self.state.update_payment(db, r["payment_id"], NOT_VISIBLE, r["attempts"], now)
                    continue
                s = found.get(r["payment_id"])
                if s is not None and s.state != r["state"]:
                    self.state.update_payment(db, r["payment_id"], str(s.state), 0, now + base)
                    changed[r["batch_id"], r["file_sha256"]].append(s)
                else:   # unchanged (or not answered): wait twice as long as last time, up to the maximum
                    attempts = r["attempts"] + 1
                    self.state.update_payment(db, r["payment_id"], r["state"], attempts,
                                              now + min(base * 2 ** attempts, most))
            for (batch_id, sha256), statuses in changed.items():
                label = Path(self.state.file(sha256)["name"]).stem
                report = self._status_report(db, label, batch_id, statuses, sha256)
                logs.event("payments_changed", f"  {label}: " + ", ".join(
                    f"{s.client_ref} {s.state}" for s in statuses) + f" -> {report}",
                    batch_id=batch_id, changes={s.client_ref: str(s.state) for s in statuses}, report=report)
        summary.polled += len(rows)
        summary.changed += sum(len(v) for v in changed.values())

    # ---- statements -------------------------------------------------------------------------------------

    def pull_statements(self, summary: Summary) -> None:
        fmt = self.cfg.statement_format
        for account in self.cfg.accounts:
            pulled = 0
            while not self.stopping.is_set():
                after = self.state.cursor(account)
                answer = self.link.call(dl.statement_query(account, after, self.cfg.statement_page_size, fmt))
                if answer.code != ResultCode.OK:
                    _refused(summary, "statement", account, answer)
                    break
                page = answers.statement_page(answer.body, fmt)
                crash.point(crash.STATEMENT_AFTER_FETCH)
                if page.next_cursor == after:          # nothing booked since the last page
                    break
                # The page and the cursor past it are one decision, committed together; the file comes after.
                with self.state.transaction() as db:
                    report = self.state.add_delivery(db, f"{{seq}}-statement-{account}.{page.extension}",
                                                     page.data)
                    self.state.set_cursor(db, account, page.next_cursor)
                crash.point(crash.STATEMENT_AFTER_RECORD)
                count = _entries_between(after, page.next_cursor)
                pulled += count
                logs.event("statement_page", None, account=account, after=after, next_cursor=page.next_cursor,
                           entries=count, file=report)
                self.deliver(summary)
                if page.complete:
                    break
            summary.entries += pulled
            logs.event("statement_pulled", f"  statement {account}: {pulled} new entr"
                       f"{'y' if pulled == 1 else 'ies'} ({fmt}), cursor {self.state.cursor(account) or '-'}",
                       account=account, entries=pulled, cursor=self.state.cursor(account))

    # ---- receipts ---------------------------------------------------------------------------------------

    def pull_receipts(self, summary: Summary) -> None:
        """Each account's new receipts into the inbox beside the status reports, paged by cursor like the
        statement (its cursor is kept apart, under receipts/<account>)."""
        form = self.cfg.receipts.upper()
        for account in self.cfg.accounts:
            key = f"receipts/{account}"
            while not self.stopping.is_set():
                after = self.state.cursor(key)
                answer = self.link.call(dl.receipt_query(account=account, after=after, limit=20, form=form))
                if answer.code != ResultCode.OK:
                    _refused(summary, "receipts", account, answer)
                    break
                page = answers.receipt_page(answer.body)
                if page.next_cursor == after:
                    break
                with self.state.transaction() as db:   # the files and the cursor past them: one decision
                    for name, data in page.files:
                        self.state.add_delivery(db, f"{{seq}}-receipt-{name}", data)
                    self.state.set_cursor(db, key, page.next_cursor)
                logs.event("receipts_page", f"  receipts {account}: {len(page.files)} file(s), cursor "
                           f"{page.next_cursor}", account=account, after=after, next_cursor=page.next_cursor)
                self.deliver(summary)
                if page.complete:
                    break


def _refused(summary: Summary, what: str, account: str, answer: dl.Answer) -> None:
    """A statement or receipt pull the gateway refused: a problem of the pass (the exit code says so)."""
    problem = f"{what} of {account}: {answer.code}: {answer.detail}"
    summary.problems.append(problem)
    logs.event(f"{what}_refused", f"  ! {problem}", level=logging.ERROR, account=account,
               code=answer.code, detail=answer.detail)


def _operation(request: bytes) -> etree._Element:
    """The DocumentSubmit of a stored request (our own bytes), for a new message carrying the same file."""
    root = etree.fromstring(request, etree.XMLParser(resolve_entities=False, no_network=True))
    return copy.deepcopy(root.find(q("DocumentSubmit")))


def _file_of(request: bytes) -> bytes:
    """The ERP file a stored DocumentSubmit request carries (our own bytes: base64, see dl.document_submit)."""
    return base64.b64decode(_operation(request).findtext(q("Document")) or "")


def _entries_between(after: str, next_cursor: str) -> int:
    """How many entries a page held: EntryIds are a per-account sequence without gaps (docs/protocol.md),
    and the cursor is the EntryId of the last entry returned."""
    if next_cursor.isdigit() and (after == "" or after.isdigit()):
        return int(next_cursor) - int(after or 0)
    return 0


# ---- the command -------------------------------------------------------------------------------------------

def main(config_path: Path, once: bool) -> int:
    """`directlink agent`: 0 when the pass (or the run until stopped) went well, 1 when the gateway refused
    something that is not a file's fault, 2 when the configuration is unusable, 3 when the gateway could not
    be reached or its answer was not trusted (the exit statuses of every command, docs/protocol.md)."""
    try:
        cfg = load(config_path)
        logs.setup(cfg.log_level, cfg.log_file)
        agent = Agent(cfg)
    except (ConfigError, StateBusy) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as err:     # an unreadable or unusable key or certificate
        print(f"error: {config_path}: key or certificate: {err}", file=sys.stderr)
        return 2
    try:
        if once:
            return _once(agent)
        return _forever(agent)
    finally:
        agent.close()


def _once(agent: Agent) -> int:
    print(f"directlink agent: one pass against {agent.cfg.gateway}", flush=True)
    summary = agent.run_pass(statements=True, poll_all=True)
    print(f"done: {summary.text()}", flush=True)
    logs.event("pass_done", None, summary=summary.text(), problems=summary.problems)
    return 3 if summary.unreachable else 1 if summary.problems else 0


def _forever(agent: Agent) -> int:
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    cfg = agent.cfg

    def watch() -> None:
        _report(agent.run_pass(statements=False, poll_all=False))

    def pull() -> None:
        _report(agent.run_pass(statements=True, poll_all=False))

    # One worker: the jobs never overlap, so the state file sees one pass at a time.
    scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(1)},
                                    job_defaults={"coalesce": True, "max_instances": 1,
                                                  "misfire_grace_time": None})
    scheduler.add_job(pull, "date", id="start")       # a full pass at start: resume whatever a stop left open
    scheduler.add_job(watch, IntervalTrigger(seconds=max(cfg.watch_interval_seconds, 1)), id="watch")
    scheduler.add_job(pull, cfg.cron(), id="statements")
    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        logs.event("stopping", f"directlink agent: {signal.Signals(signum).name}, finishing the current step",
                   signal=signal.Signals(signum).name)
        agent.stopping.set()
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"directlink agent: watching {cfg.outbox} every {cfg.watch_interval_seconds:g} s, statements on "
          f"'{cfg.schedule}', gateway {cfg.gateway}; stop with Ctrl-C or SIGTERM", flush=True)
    scheduler.start()
    while not stop.wait(1):
        pass
    scheduler.shutdown(wait=True)
    print("directlink agent: stopped", flush=True)
    return 0


def _report(summary: Summary) -> None:
    if summary.busy:
        print(f"pass: {summary.text()}", flush=True)
        logs.event("pass_done", None, summary=summary.text(), problems=summary.problems)
