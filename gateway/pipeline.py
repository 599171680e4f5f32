"""One request, start to end: hardened parse, schema, signature, identity, freshness, replay guard, the
operation, and a signed answer, all of whose effects are one unit of work, committed (on SQLite with the batch
it joined: gateway/storage/committer.py) before the answer leaves.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lxml import etree
from sqlalchemy import Engine, and_, bindparam, func, insert, or_, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from domain.codes import ResultCode
from domain.errors import (
    CertificateRejected,
    DirectLinkError,
    FreshnessRejected,
    PermissionDenied,
    SignatureRejected,
    UnsupportedVersion,
    XmlRejected,
)
from gateway import audit, crash, directory
from gateway.config_cache import VERSION, Config, ConfigCache
from gateway.limits import RateLimiter, SharedRateLimiter
from gateway.operations import OPERATIONS, Context
from gateway.protocol import messages, signing, xmlsafe
from gateway.protocol.errors import RETRY_AFTER, http_status
from gateway.settings import Settings
from gateway.storage.committer import CommitFailed, GroupCommit, PerRequest, Turn
from gateway.storage.engine import read_only
from gateway.storage.hot import HotRead
from gateway.storage.tables import certificates, operators
from gateway.storage.tables import messages as message_log
from gateway.storage.unit_of_work import UnitOfWork

log = logging.getLogger("directlink.pipeline")
UNVERIFIED_BODY_KEPT = 64 * 1024
_ID35 = re.compile(r"[A-Za-z0-9._:\-]{1,35}", re.ASCII)
# Operations that never write: a refusal of theirs has nothing to roll back (see _transaction).
READ_ONLY = frozenset({"AccountQuery", "BalanceQuery", "PaymentStatusQuery", "StatementQuery",
                       "CashPositionQuery", "ReceiptQuery"})

# The statements every request runs, built once (building one costs about as much as running it on SQLite).
# The MessageId's earlier use, if any, and whether the certificate that verified the request is still
# registered and unrevoked, and the configuration's version (gateway/config_cache.py): read together, first
# thing in the transaction (see Gateway._authenticate).
_c = certificates.c
_signer = select(func.count().label("signer_ok")).where(
    _c.fingerprint == bindparam("signer"), _c.client_id == bindparam("claim_client"),
    _c.operator_id == bindparam("claim_operator"), or_(_c.revoked_at.is_(None), _c.revoked_at > bindparam("now"))
).subquery("signer")
# When the operator was disabled (`directlink operators disable`), NULL while enabled: read here, by every
# request, so that disabling takes effect on the next request on every replica.
_DISABLED = select(operators.c.disabled_at).where(
    operators.c.client_id == bindparam("claim_client"), operators.c.id == bindparam("claim_operator")
).scalar_subquery()
_SEEN = select(_signer.c.signer_ok, VERSION.label("config_version"), _DISABLED.label("operator_disabled"),
               message_log).select_from(
    _signer.outerjoin(message_log, and_(message_log.c.client_id == bindparam("claim_client"),
                                        message_log.c.message_id == bindparam("claim_message"))))
_SEEN_READ = HotRead(_SEEN)   # past SQLAlchemy's per-run work (storage/hot.py)
# The MessageId's claim, written with its answer at the request's end (Gateway._conclude).
_CLAIM = insert(message_log).values(
    client_id=bindparam("claim_client"), message_id=bindparam("claim_message"),
    request_digest=bindparam("claim_digest"), received_at=bindparam("claim_received"),
    http_status=bindparam("answer_status"), response=bindparam("answer_body"))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    code: ResultCode
    headers: dict[str, str] = field(default_factory=dict)


class _Refused(Exception):
    """An operation that writes refused the request: raised out of its transaction, so that it rolls back."""

    def __init__(self, error: DirectLinkError, operation: str):
        super().__init__(error.detail)
        self.error, self.operation = error, operation


class _SignerLapsed(Exception):
    """The certificate that verified a request is no longer registered, or was revoked, as the transaction
    reads the registry (the process's snapshot of it was stale)."""


@dataclass(frozen=True)
class _Claim:
    """What the unverified envelope claims: used to find the certificate and to echo MessageId."""

    message_id: str | None
    client: str | None
    operator: str | None


class Gateway:
    """The request pipeline. Built once per process; `handle` is thread-safe."""

    def __init__(self, settings: Settings, engine: Engine, signer: signing.Signer,
                 clock: Callable[[], dt.datetime] = utcnow):
        self.settings = settings
        self.engine = engine
        self.signer = signer
        self.clock = clock
        limits = dict(rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst,
                      max_concurrent=settings.max_concurrent_per_client,
                      operator_rate=settings.operator_rate_limit_per_second,
                      operator_burst=settings.operator_rate_limit_burst)
        # On PostgreSQL the replicas share the buckets; SQLite is one process.
        self.limiter = (SharedRateLimiter(**limits, engine=engine) if engine.dialect.name == "postgresql"
                        else RateLimiter(**limits))
        # SQLite has one writer at a time: the requests take turns at it, and their writes commit in batches
        # (group commit). On PostgreSQL each request commits its own transaction.
        self.committer: GroupCommit | PerRequest = (
            GroupCommit(engine, crash.batch) if engine.dialect.name == "sqlite" else PerRequest(engine))
        # (client, operator) -> their certificates as last read from the registry (see _authenticate)
        self._certs: dict[tuple[str | None, str | None], list[directory.RegisteredCert]] = {}
        self.config = ConfigCache()

    # ---- the steps before any state is touched ------------------------------------------------------------

    def handle(self, body: bytes) -> Reply:
        """Answer one request body with a signed Response, once what it wrote is durable."""
        reply, pending = self.handle_deferred(body)
        pending.settle()
        return reply

    def handle_deferred(self, body: bytes, fresh: bool = False) -> tuple[Reply, Pending]:
        """The answer to one request body, and what must be durable before it may leave (`Pending.settle`):
        the request thread (gateway/request_thread.py) goes on to the next request meanwhile. `fresh`: read
        the certificates from the registry, not from this process's snapshot of it."""
        pending = Pending()
        now = self.clock()
        digest = signing.digest_b64(body)
        claim = _Claim(None, None, None)
        try:
            root = xmlsafe.parse(body, self.settings.max_body_bytes)
            claim = _claims(root)
            if root.tag != xmlsafe.q("Request"):
                raise XmlRejected("the root element must be urn:directlink:v1 Request",
                                  code=ResultCode.XML_SCHEMA_INVALID)
            if root.get("version") != "1":
                raise UnsupportedVersion(f"protocol version {root.get('version')!r} is not supported (1)")
            xmlsafe.validate(root)
            sig = signing.signature_element(root)
            signing.check_profile(sig)
            verified = self._authenticate(root, sig, claim, now, fresh)
            header = messages.header(verified.signed)
            self._check_fresh(header.created, now)
        except DirectLinkError as err:
            reply = self._answer(err.code, err.detail, claim.message_id, digest, now)
            self._audit_unverified(pending, now, claim, err.code, err.detail, digest, body, reply.body)
            return reply, pending
        wait = self.limiter.acquire(header.client, header.operator)
        if wait is not None:
            # Not audited one by one (a flood must not flood the trail): counted in /metrics instead.
            return self._answer(ResultCode.RATE_LIMITED, f"too many requests from {header.client}; nothing was "
                                f"accepted, retry in {wait} s", header.message_id, digest, now,
                                retry_after=wait), pending
        try:
            return self._execute(pending, verified, header, body, digest, now), pending
        except _SignerLapsed:
            pass
        finally:
            self.limiter.release(header.client)
        # The certificate was revoked or removed after this process last read it: the registry decides again.
        self._certs.pop((claim.client, claim.operator), None)
        if not fresh:
            return self.handle_deferred(body, fresh=True)
        detail = f"certificate {signing.fingerprint(verified.certificate)[:16]} was revoked"   # just now
        reply = self._answer(ResultCode.CERT_REVOKED, detail, claim.message_id, digest, now)
        self._audit_unverified(pending, now, claim, ResultCode.CERT_REVOKED, detail, digest, body, reply.body)
        return reply, pending

    def _authenticate(self, root, sig, claim: _Claim, now: dt.datetime, fresh: bool) -> signing.Verified:
        """Verify the signature against the operator's registered certificates.

        Each process keeps the certificates as it last read them, which spares every request a connection
        and three round trips of its own. That snapshot may only let a request through: the transaction then
        checks, in its first read, that the verifying certificate is still registered and unrevoked (a
        revocation takes effect at once on every replica), and a request the snapshot refuses (a certificate
        registered since) is judged again on the registry as it stands."""
        key = (claim.client, claim.operator)
        cached = None if fresh else self._certs.get(key)
        if cached:
            try:
                return self._verify(root, sig, claim, cached, now)
            except (SignatureRejected, CertificateRejected):
                pass
        # A pooled connection of its own: on SQLite's request thread, a batch left open must not hold the
        # database's lock while this waits for one that others, waiting for that lock, hold.
        self.committer.release_writer()
        with read_only(self.engine) as conn:
            registered = directory.registered_certs(conn, claim.client, claim.operator)
        if registered:
            self._certs[key] = registered
        return self._verify(root, sig, claim, registered, now)

    def _verify(self, root, sig, claim: _Claim, registered: list[directory.RegisteredCert],
                now: dt.datetime) -> signing.Verified:
        if not registered:
            raise CertificateRejected(f"no certificate is registered for {claim.client}/{claim.operator}")
        hinted = signing.keyinfo_certificate(sig)
        if hinted is not None:
            # KeyInfo only picks among pinned certificates; an unregistered one is never trusted.
            fp = signing.fingerprint(hinted)
            registered = [r for r in registered if r.fingerprint == fp]
            if not registered:
                raise CertificateRejected(f"the certificate in KeyInfo is not registered for "
                                          f"{claim.client}/{claim.operator}")
        # Validity first (the certificate is public, nothing leaks): signxml would otherwise refuse an
        # expired one as a bad signature, and the client would not learn what to fix.
        errors: list[DirectLinkError] = []
        for reg in registered:
            try:
                _check_validity(reg, now)
                return signing.verify(root, reg.certificate)
            except (SignatureRejected, CertificateRejected) as err:
                errors.append(err)
        # With one candidate its own error; among several, a bad signature outranks another one's expiry.
        raise next((e for e in errors if isinstance(e, SignatureRejected)), errors[0])

    def _check_fresh(self, created: dt.datetime, now: dt.datetime) -> None:
        skew = abs((now - created).total_seconds())
        if skew > self.settings.freshness_seconds:
            raise FreshnessRejected(f"Created is {skew:.0f} s from the gateway clock "
                                    f"(window {self.settings.freshness_seconds} s)",
                                    code=ResultCode.TIMESTAMP_OUT_OF_WINDOW)

    # ---- the transaction ----------------------------------------------------------------------------------

    def _execute(self, pending: Pending, verified: signing.Verified, header: messages.Header, body: bytes,
                 digest: str, now: dt.datetime) -> Reply:
        for attempt in range(5):
            try:
                return self._transaction(pending, verified, header, body, digest, now)
            except IntegrityError:
                # A concurrent twin committed first (the same MessageId, or a ClientRef of the payments: see
                # payments.submit); the next attempt answers from it.
                continue
            except DBAPIError as err:
                if not _transient(err) or attempt == 4:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise RuntimeError("could not complete the transaction")

    def _transaction(self, pending: Pending, verified: signing.Verified, header: messages.Header, body: bytes,
                     digest: str, now: dt.datetime) -> Reply:
        signer = signing.fingerprint(verified.certificate)
        # One turn at the writer (gateway/storage/committer.py): on SQLite the request's unit of work is a
        # savepoint of a batch that commits for many requests at once; on PostgreSQL it is a transaction.
        with self.committer.turn() as turn:
            try:
                # The operation's audit records (a payment's creation, a rule's refusal) and the request's own
                # are written together at the end, with the answer: fewer statements while the locks are held.
                with turn.unit() as uow:
                    reply, executed = self._run(uow, verified, header, body, digest, signer, now)
                    uow.flush()
                    if executed:
                        crash.point(crash.REQUEST_BEFORE_COMMIT)
            except _Refused as refused:
                # A refused operation leaves nothing of itself behind: its unit rolled back whole, its locks
                # with it, and the answer goes in a unit of its own. (A savepoint around every operation
                # would cost each accepted one two round trips on PostgreSQL; refusals are the rare case.)
                code, detail = refused.error.code, refused.error.detail
                with turn.unit() as uow:
                    reply = self._conclude(uow, header, refused.operation, code, detail, digest, signer, body,
                                           now)
                    uow.flush()
                    crash.point(crash.REQUEST_BEFORE_COMMIT)
                executed = True
        # Nothing is answered before it is durable, a stored answer read back included (its batch may
        # still have been open): the caller settles `pending` before the answer leaves.
        pending.add(turn, executed)
        return reply

    def _run(self, uow: UnitOfWork, verified: signing.Verified, header: messages.Header, body: bytes,
             digest: str, signer: str, now: dt.datetime) -> tuple[Reply, bool]:
        """The request inside its unit of work: the replay guard, then the operation and the stored answer;
        whether the operation ran (not so for a MessageId seen before)."""
        conn = uow.conn
        found = _SEEN_READ.one(conn, {"claim_client": header.client, "claim_message": header.message_id,
                                      "signer": signer, "claim_operator": header.operator, "now": now})
        if not found.signer_ok:
            raise _SignerLapsed()
        if found.message_id is not None:
            if found.request_digest == digest:
                return Reply(found.http_status, found.response, ResultCode.OK), False  # the original answer again
            detail = f"MessageId {header.message_id} was already used by client {header.client}"
            reply = self._answer(ResultCode.REPLAY, detail, header.message_id, digest, now)
            self._audit_verified(uow, now, header, ResultCode.REPLAY, detail, digest, signer, body, reply.body)
            return reply, False
        op = messages.operation(verified.signed)
        name = messages.local(op)
        if found.operator_disabled is not None:
            # Refused like a write without the grant: answered, stored under the MessageId, audited.
            raise _Refused(PermissionDenied(f"operator {header.client}/{header.operator} is disabled"), name)
        ctx = Context(uow, self.settings, header.client, header.operator, now,
                      Config(self.config, found.config_version, conn), self.signer)
        try:
            answer = OPERATIONS[name](ctx, op)
            code, detail = ResultCode.OK, "processed"
        except DirectLinkError as err:
            if name not in READ_ONLY:
                raise _Refused(err, name) from None
            answer, code, detail = None, err.code, err.detail   # nothing to undo
        return self._conclude(uow, header, name, code, detail, digest, signer, body, now, answer), True

    def _conclude(self, uow: UnitOfWork, header: messages.Header, name: str, code: ResultCode, detail: str,
                  digest: str, signer: str, body: bytes, now: dt.datetime,
                  answer: etree._Element | None = None) -> Reply:
        """Sign the answer and store it under the request's MessageId, with the request's audit record.

        The MessageId is claimed only here, at the end, by every request: a concurrent twin (the same
        MessageId, sent again or to another replica) finds the key taken when it gets here, its transaction
        rolls back whole, and it runs again to answer from the winner (_execute). So exactly one of them
        commits, whatever each did meanwhile; a twin paying the same ClientRef fails on that key earlier."""
        reply = self._answer(code, detail, header.message_id, digest, now, answer)
        # In the audit records' statement on PostgreSQL (UnitOfWork.along): a round trip less.
        uow.along(_CLAIM, {"claim_client": header.client, "claim_message": header.message_id,
                           "claim_digest": digest, "claim_received": now,
                           "answer_status": reply.status, "answer_body": reply.body})
        self._audit_verified(uow, now, header, code, f"{name}: {detail}", digest, signer, body, reply.body)
        return reply

    # ---- answers and audit --------------------------------------------------------------------------------

    def _answer(self, code: ResultCode, detail: str, in_reply_to: str | None, digest: str | None,
                now: dt.datetime, answer: etree._Element | None = None, retry_after: int | None = None) -> Reply:
        root = messages.render_response(
            message_id=f"GW-{now:%Y%m%d%H%M%S}-{secrets.token_hex(6)}",
            created=messages.stamp(now, self.settings.zone), in_reply_to=in_reply_to,
            request_digest=digest, code=code, detail=detail, answer=answer)
        wait = retry_after or RETRY_AFTER.get(code)
        headers = {"Retry-After": str(wait)} if wait else {}
        return Reply(http_status(code), self.signer.sign(root), code, headers)

    def too_large(self) -> Reply:
        """The answer for a body refused while it was still arriving (over max_body_bytes)."""
        detail = f"the body is over the limit of {self.settings.max_body_bytes} bytes"
        reply, pending = self._answer(ResultCode.XML_TOO_LARGE, detail, None, None, self.clock()), Pending()
        self._audit_unverified(pending, self.clock(), _Claim(None, None, None), ResultCode.XML_TOO_LARGE, detail,
                               None, b"", reply.body)
        pending.settle()
        return reply

    def overloaded(self) -> Reply:
        """The answer when this process is at its in-flight cap: nothing was read or accepted."""
        return self._answer(ResultCode.OVERLOADED, "the gateway is busy; nothing was accepted, retry later",
                            None, None, self.clock())

    def internal_error(self, body: bytes) -> Reply:
        """The answer for a defect: nothing was accepted; the same MessageId may be sent again."""
        return self._answer(ResultCode.INTERNAL, "internal error; nothing was accepted, retry later",
                            None, signing.digest_b64(body), self.clock())

    def _audit_unverified(self, pending: Pending, now, claim: _Claim, code: ResultCode, detail: str,
                          digest: str | None, body: bytes, answer: bytes) -> None:
        """Audit a request refused before its signer was known (its own chain: nobody vouches for it). In a
        turn at the writer like every request's writes: on SQLite a transaction of its own would wait for
        the open batch, and on the request thread that batch is its own."""
        try:
            with self.committer.turn() as turn, turn.unit() as uow:
                audit.append(uow, chain=audit.UNVERIFIED, at=now, kind="request", code=code.value,
                             client_id=_clip(claim.client), operator_id=_clip(claim.operator),
                             message_id=_clip(claim.message_id), detail="unverified claim; " + detail[:2000],
                             request_digest=digest,
                             # keep small bodies whole; a flood of huge junk must not fill the disk
                             request=body if len(body) <= UNVERIFIED_BODY_KEPT else None, response=answer)
        except Exception:  # an audit hiccup must not turn a rejection into a 500
            log.exception("could not audit a rejected request")
        else:
            pending.add(turn, executed=False, required=False)

    def _audit_verified(self, uow: UnitOfWork, now, header: messages.Header, code: ResultCode, detail: str,
                        digest: str, signer: str, body: bytes, answer: bytes) -> None:
        audit.append(uow, chain=header.client, at=now, kind="request", code=code.value, client_id=header.client,
                     operator_id=header.operator, message_id=header.message_id, detail=detail[:2000],
                     request_digest=digest, cert_fingerprint=signer, request=body, response=answer)


class Pending:
    """What an answer waits for before it may leave: the batches its turns wrote into, committed."""

    def __init__(self) -> None:
        self._turns: list[tuple[Turn, bool, bool]] = []

    def add(self, turn: Turn, executed: bool, required: bool = True) -> None:
        """`executed`: the request's operation ran in this turn (its crash point follows the commit);
        `required`: the answer may not leave if the turn's writes were lost (not so for the audit record of
        a refusal, which is answered whatever becomes of its record)."""
        self._turns.append((turn, executed, required))

    @property
    def settled(self) -> bool:
        """Whether settle() would return at once."""
        return all(turn.settled for turn, _, _ in self._turns)

    def settle(self) -> None:
        """Wait until every turn's writes are durable; CommitFailed if a required one never will be."""
        for turn, executed, required in self._turns:
            try:
                turn.durable()
            except CommitFailed:
                if required:
                    raise
                log.exception("could not audit a rejected request")
                continue
            if executed:
                crash.point(crash.REQUEST_AFTER_COMMIT)


def _claims(root: etree._Element) -> _Claim:
    """What the unverified header claims, each value only if it has the protocol's Id35 form (so that an
    echo in InReplyTo keeps our own answer valid against the schema)."""
    head = root.find(xmlsafe.q("Header"))
    if head is None:
        return _Claim(None, None, None)
    values = (xmlsafe.text(head.find(xmlsafe.q(n))) for n in ("MessageId", "Client", "Operator"))
    return _Claim(*(v if v is not None and _ID35.fullmatch(v) else None for v in values))


def _clip(value: str | None) -> str | None:
    return None if value is None else value[:35]


def _check_validity(reg: directory.RegisteredCert, now: dt.datetime) -> None:
    if reg.revoked_at is not None and reg.revoked_at <= now:
        raise CertificateRejected(f"certificate {reg.fingerprint[:16]} was revoked", code=ResultCode.CERT_REVOKED)
    if now < reg.not_before:
        raise CertificateRejected(f"certificate {reg.fingerprint[:16]} is not valid before {reg.not_before}",
                                  code=ResultCode.CERT_NOT_YET_VALID)
    if now > reg.not_after:
        raise CertificateRejected(f"certificate {reg.fingerprint[:16]} expired at {reg.not_after}",
                                  code=ResultCode.CERT_EXPIRED)


def _transient(err: DBAPIError) -> bool:
    """Deadlock, serialization failure, a locked SQLite database or a lost connection: safe to run the
    transaction again. (A connection lost at the commit leaves its outcome unknown: if it committed, the
    next run finds the MessageId claimed with the answer, and answers that.)"""
    sqlstate = getattr(err.orig, "sqlstate", None)
    return (sqlstate in ("40001", "40P01") or err.connection_invalidated
            or "database is locked" in str(err.orig))
