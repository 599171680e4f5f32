"""The HTTP binding of spec section 1: the message route, and FastAPI's routes for the rest, around the pipeline."""
from __future__ import annotations

import contextlib
import gc
import json
import logging
import sys
import time
from pathlib import Path

import anyio
from anyio.lowlevel import RunVar
from cryptography import x509
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from sqlalchemy import text
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import jobs
from gateway.console.reconciling import Reconciler
from gateway.console.routes import mount as mount_console
from gateway.limits import InFlight
from gateway.metrics import Operations
from gateway.pipeline import Gateway, Reply
from gateway.protocol import signing, sm2
from gateway.request_thread import RequestThread
from gateway.rotation import published
from gateway.settings import Settings
from gateway.storage.committer import GroupCommit
from gateway.storage.engine import make_engine, migrate
from schemas import SCHEMA_DIR

log = logging.getLogger("directlink.http")
XML = "application/xml"
SWITCH_INTERVAL = 0.001   # seconds (sys.setswitchinterval): see create_app
SCHEMA_NAMES = sorted(p.name.removesuffix(".xsd") for p in SCHEMA_DIR.iterdir() if p.name.endswith(".xsd"))


def build_gateway(settings: Settings, *, run_migrations: bool = True) -> Gateway:
    """Open the database (migrated to head) and load the gateway key once."""
    # The key first: a gateway that cannot sign must not have created or migrated a database.
    sm2.set_distinguishing_id(settings.sm2_distinguishing_id.encode("utf-8"))
    try:
        signer = signing.Signer(gateway_key(settings))
    except ValueError as err:   # a key outside the profile, or not the certificate's
        raise SystemExit(f"cannot sign with the gateway key and {settings.gateway_cert}: {err}") from None
    engine = make_engine(settings.db_url)
    if run_migrations:
        migrate(engine)
    return Gateway(settings, engine, signer)


def gateway_key(settings: Settings) -> signing.SigningKey:
    """The gateway's signing key as configured: in a PKCS#11 token, or the PEM file (the default). A key that
    cannot be had stops the start with what to set; the message never holds a PIN or passphrase."""
    if settings.gateway_key_pkcs11 is not None:
        from gateway import hsm
        try:
            return hsm.open_key(settings)
        except hsm.TokenError as err:
            raise SystemExit(f"cannot use the gateway key in the PKCS#11 token: {err}") from None
    passphrase = settings.gateway_key_passphrase
    try:
        return signing.PemKey(settings.path(settings.gateway_key).read_bytes(),
                              settings.path(settings.gateway_cert).read_bytes(),
                              passphrase.get_secret_value().encode() if passphrase else None)
    except (TypeError, ValueError) as err:   # wrong or missing passphrase; the message never holds it
        raise SystemExit(f"cannot load the gateway key {settings.gateway_key}: {err} "
                         f"(set DIRECTLINK_GATEWAY_KEY_PASSPHRASE for an encrypted key)") from None


def create_app(gateway: Gateway, reconciler: Reconciler | None = None) -> ASGIApp:
    """The ASGI application serving one gateway (its housekeeping jobs run while it is up). `reconciler`: the
    console's reconciliation, wired in by the composition root (gateway/cli/serve.py)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        scheduler = jobs.start(gateway)
        try:
            yield
        finally:
            scheduler.shutdown(wait=False)
            if requests is not None:
                requests.close()

    app = FastAPI(title="DirectLink gateway", version="1", docs_url=None, redoc_url=None, lifespan=lifespan)
    registry = CollectorRegistry()
    results = Counter("directlink_requests", "Requests by result code", ["code"], registry=registry)
    latency = Histogram("directlink_request_seconds", "Time to answer a request", registry=registry)
    registry.register(Operations(gateway.engine, lambda: published(gateway.settings, gateway.signer.cert_pem)))
    limit = gateway.settings.max_body_bytes
    in_flight = InFlight(gateway.settings.max_in_flight)
    # On PostgreSQL requests run on threads of their own, as many as worker_threads: one thread runs Python at
    # a time, a few are enough to overlap the round trips, and more only take the interpreter from each other
    # (a quarter more CPU a request with 40). On SQLite, which has one writer, one thread of its own runs the
    # messages and answers each once its batch is durable (gateway/request_thread.py); `worker_threads` set
    # there brings back a thread a request. One limiter an event loop, as the server's own.
    threads = gateway.settings.worker_threads or 4
    requests = (RequestThread(gateway) if isinstance(gateway.committer, GroupCommit)
                and not gateway.settings.worker_threads else None)
    workers = RunVar[anyio.CapacityLimiter]("directlink_workers")
    # The thread whose turn it is at the writer (SQLite) or that holds a client's rows (PostgreSQL) lets go of
    # the interpreter at every statement, and then waits for it while other threads parse, verify and sign:
    # up to the switch interval each time, 5 ms by default, for the one thread everybody else waits on. At
    # 1 ms payments went 1.5-2.4 times as fast under 16 connections (docs/performance.md).
    sys.setswitchinterval(SWITCH_INTERVAL)

    async def in_worker(call, *args):
        try:
            limiter = workers.get()
        except LookupError:
            limiter = anyio.CapacityLimiter(threads)
            workers.set(limiter)
        return await anyio.to_thread.run_sync(call, *args, limiter=limiter)

    @app.post("/v1/messages")
    async def post_message(request: Request) -> Response:
        started = time.perf_counter()
        if not in_flight.enter():
            return _respond(await run_in_threadpool(gateway.overloaded))
        try:
            reply = await _handle(request)
        finally:
            in_flight.leave()
        results.labels(reply.code.value).inc()
        latency.observe(time.perf_counter() - started)
        return _respond(reply)

    async def _handle(request: Request) -> Reply:
        body = await _read_limited(request, limit)
        if body is None:
            return await run_in_threadpool(gateway.too_large)
        try:
            if requests is not None:
                return await requests.handle(body)
            return await in_worker(gateway.handle, body)
        except Exception:  # a defect: nothing was committed, answer INTERNAL, never crash
            log.exception("request failed")
            return gateway.internal_error(body)

    @app.get("/v1/certificate")
    def certificate() -> Response:
        return Response(gateway.signer.cert_pem, media_type="application/x-pem-file")

    @app.get("/v1/certificates")
    def certificates(format: str = "pem") -> Response:
        """The response-signing certificates: current, next (once `keys rotate --prepare` made it) and
        previous (after a switch), for a rollover without a flag day. A PEM bundle whose blocks each follow
        a line naming their role and validity; `?format=json` gives the same as a list of objects."""
        rows = []
        for role, pem in published(gateway.settings, gateway.signer.cert_pem):
            cert = x509.load_pem_x509_certificate(pem)
            rows.append({"role": role, "fingerprint": signing.fingerprint(cert),
                         "not_before": cert.not_valid_before_utc.isoformat(),
                         "not_after": cert.not_valid_after_utc.isoformat(), "pem": pem.decode("ascii")})
        if format == "json":
            return Response(json.dumps(rows, indent=1), media_type="application/json")
        if format != "pem":
            raise HTTPException(400, "format is pem or json")
        return Response("".join(f"# {r['role']} {r['fingerprint']} valid {r['not_before']} to {r['not_after']}\n"
                                f"{r['pem']}" for r in rows), media_type="application/x-pem-file")

    @app.get("/v1/schemas/{name}.xsd")
    def schema(name: str) -> Response:
        if name not in SCHEMA_NAMES:  # an allow-list: no path ever reaches the file system from the URL
            raise HTTPException(404, "unknown schema")
        return Response(SCHEMA_DIR.joinpath(f"{name}.xsd").read_bytes(), media_type=XML)

    mount_console(app, gateway, reconciler)   # the treasury console under /console (docs/console.md)

    @app.get("/healthz")
    def healthz() -> dict:
        with gateway.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok"}

    @app.get("/metrics")
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def served(scope: Scope, receive: Receive, send: Send) -> None:
        # The messages straight to their handler, past the framework's routing and middleware: it catches
        # its own errors, and every request of the protocol comes this way (about 5% more BalanceQuery
        # requests a second, docs/performance.md). Anything else, other methods on this path included,
        # goes through FastAPI.
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/v1/messages":
            response = await post_message(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await app(scope, receive, send)

    return served


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to be over the limit (before buffering it all)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _respond(reply: Reply) -> Response:
    return Response(reply.body, status_code=reply.status, media_type=XML, headers=reply.headers)


# The cyclic collector's first threshold: objects allocated, less those freed, before it looks at the youngest
# generation (CPython's default is 700). A request allocates thousands (lxml's proxies, rows, the answer's tree).
GC_YOUNG_THRESHOLD = 10_000


def settle_heap() -> None:
    """For a serving process, once everything is loaded: what start-up made (modules, schemas, the gateway)
    moves out of the cyclic collector's sight for good, and the collector looks less often. A 10,000-payment
    file spent 7% of its time in the collector walking objects that live as long as the process (2.30 ->
    2.03 s in-process, docs/performance.md). Not for tests, which build many apps in one process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def app_from_home(home: Path | str = ".") -> ASGIApp:
    """Factory for `uvicorn --factory gateway.app:app_from_home` (reads DIRECTLINK_HOME or the cwd): a serving
    process's, so its heap is settled (settle_heap)."""
    app = create_app(build_gateway(Settings.load(home)))
    settle_heap()
    return app


