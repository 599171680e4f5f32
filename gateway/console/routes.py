"""The console's HTTP routes under /console: pages drawn on the server (Jinja2, autoescaped), a few JSON
endpoints for the WebAuthn ceremonies, and the vendored static files.

Every page goes out with a Content-Security-Policy that allows scripts and styles from this origin only
(no inline script, no eval), and never cached. State-changing requests carry the session's CSRF token (the
X-CSRF-Token header, or a form field) and, when the browser says where they come from, this origin.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Body, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from domain.codes import Grant
from gateway import audit, directory
from gateway.console import approvals, evidence, keys, labels, position, sessions
from gateway.console.keys import KeyRefused, Party
from gateway.console.sessions import COOKIE, Session
from gateway.pipeline import Gateway
from gateway.storage.engine import read_only
from gateway.storage.unit_of_work import transaction

log = logging.getLogger("directlink.console")
PREFIX = "/console"
LANG_COOKIE = "dl_lang"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# Referrer-Policy same-origin, not no-referrer: under no-referrer Chromium sends "Origin: null" with a form's
# POST, and the origin check below could not tell it from a foreign one; nothing leaves for another site.
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY", "Cache-Control": "no-store"}
STATIC = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}
MAX_BATCH = 200   # payments in one signed decision
JsonBody = Annotated[dict, Body()]


def mount(app: FastAPI, gateway: Gateway) -> None:
    """Add the console to the gateway's app."""
    app.include_router(router(gateway), prefix=PREFIX)

    @app.middleware("http")
    async def secure(request: Request, call_next):
        response = await call_next(request)
        if request.url.path.startswith(PREFIX):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response


class _Problem(Exception):
    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def router(gateway: Gateway) -> APIRouter:
    engine, settings = gateway.engine, gateway.settings
    idle = dt.timedelta(minutes=settings.console_idle_minutes)
    window = dt.timedelta(minutes=settings.console_signin_window_minutes)
    pages = Environment(loader=PackageLoader("gateway.console", "templates"),
                        autoescape=select_autoescape(default=True, default_for_string=True))
    pages.filters["money"] = labels.grouped
    static = {name: resources.files("gateway.console").joinpath("static", name).read_bytes() for name in STATIC}
    api = APIRouter()

    # ---- what every route uses ------------------------------------------------------------------------

    def party(request: Request) -> Party:
        origin = settings.console_origin or f"{request.url.scheme}://{request.headers.get('host', 'localhost')}"
        return Party.of(origin, settings.bank_name)

    def lang_of(request: Request) -> str:
        return labels.chosen(request.cookies.get(LANG_COOKIE))

    def page(request: Request, name: str, session: Session | None = None, status: int = 200,
             **values: Any) -> HTMLResponse:
        lang = lang_of(request)
        html = pages.get_template(name).render(t=labels.translator(lang), lang=lang, session=session,
                                               path=request.url.path, prefix=PREFIX, **values)
        return HTMLResponse(html, status_code=status)

    def session_of(request: Request) -> Session | None:
        with engine.begin() as conn:
            return sessions.current(conn, request.cookies.get(COOKIE), gateway.clock(), idle)

    def signin_again(request: Request) -> Response:
        ended = "?ended=1" if request.cookies.get(COOKIE) else ""
        response = RedirectResponse(f"{PREFIX}/signin{ended}", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    def same_origin(request: Request) -> None:
        sent = request.headers.get("origin")
        if sent is not None and sent != party(request).origin:
            raise _Problem(403, "PERMISSION_DENIED", "the request comes from another site")

    def writing(request: Request, form_token: str | None = None) -> Session:
        """The session of a state-changing request, which must carry its CSRF token."""
        same_origin(request)
        session = session_of(request)
        if session is None:
            raise _Problem(401, "SESSION_ENDED", "the session has ended: sign in again")
        if not session.csrf_ok(request.headers.get("x-csrf-token") or form_token):
            _audit(session.client, session.operator, "CSRF_REFUSED", f"{request.method} {request.url.path} "
                                                                      "without the session's CSRF token")
            raise _Problem(403, "PERMISSION_DENIED", "the request lacks the session's CSRF token")
        return session

    def _audit(client: str | None, operator: str | None, code: str, detail: str, request: bytes | None = None):
        known = client is not None and operator is not None and _known(client, operator)
        with transaction(engine) as uow:
            audit.append(uow, chain=client if known else audit.UNVERIFIED, at=gateway.clock(), kind="console",
                         code=code, client_id=(client or "")[:35] or None, operator_id=(operator or "")[:35] or None,
                         detail=detail[:2000], request=request)

    def _known(client: str, operator: str) -> bool:
        with read_only(engine) as conn:
            try:
                directory.require_operator(conn, client, operator)
            except ValueError:
                return False
        return True

    def problem(err: _Problem) -> JSONResponse:
        return JSONResponse({"code": err.code, "detail": err.detail}, status_code=err.status)

    def grants_of(session: Session) -> dict:
        with read_only(engine) as conn:
            return approvals.config(gateway.config, conn).grants(session.client, session.operator)

    # ---- pages ----------------------------------------------------------------------------------------

    @api.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return signin_again(request)
        approver = any(Grant.APPROVE in g.grants for g in grants_of(session).values())
        return RedirectResponse(f"{PREFIX}/inbox" if approver else f"{PREFIX}/balances", status_code=303)

    @api.get("/signin", response_class=HTMLResponse)
    def signin_page(request: Request, ended: int = 0, out: int = 0) -> Response:
        note = "session_ended" if ended else "signed_out" if out else None
        return page(request, "signin.html", note=note)

    @api.get("/inbox", response_class=HTMLResponse)
    def inbox_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return signin_again(request)
        with read_only(engine) as conn:
            grants = approvals.config(gateway.config, conn).grants(session.client, session.operator)
            waiting = approvals.inbox(conn, grants, session.client, session.operator)
        return page(request, "inbox.html", session, waiting=waiting, zone=settings.zone)

    @api.get("/balances", response_class=HTMLResponse)
    def balances_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return signin_again(request)
        today = gateway.clock().astimezone(settings.zone).date()
        with read_only(engine) as conn:
            grants = approvals.config(gateway.config, conn).grants(session.client, session.operator)
            lines, currencies = position.overview(conn, grants, today)
        return page(request, "balances.html", session, lines=lines, currencies=currencies)

    @api.get("/lang/{lang}")
    def switch_language(request: Request, lang: str, next: str = f"{PREFIX}/") -> Response:
        # Only a path of the console: never a redirect elsewhere.
        target = next if next.startswith(f"{PREFIX}/") and "//" not in next and "\\" not in next else f"{PREFIX}/"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(LANG_COOKIE, labels.chosen(lang), max_age=365 * 86400, path=PREFIX, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    @api.get("/static/{name}")
    def static_file(name: str) -> Response:
        if name not in STATIC:   # an allow-list: no path from the URL reaches the file system
            return Response(status_code=404)
        return Response(static[name], media_type=STATIC[name], headers={"Cache-Control": "max-age=3600"})

    # ---- enrolment --------------------------------------------------------------------------------------

    @api.get("/enrol/{token}", response_class=HTMLResponse)
    def enrol_page(request: Request, token: str) -> Response:
        with read_only(engine) as conn:
            found = keys.enrolment(conn, token, gateway.clock())
        if found is None:
            return page(request, "message.html", status=404, message="link_invalid")
        return page(request, "enrol.html", enrolment=found, zone=settings.zone)

    def open_enrolment(request: Request, conn, token: str, now: dt.datetime) -> keys.Enrolment:
        same_origin(request)
        found = keys.enrolment(conn, token, now)
        if found is None:
            raise _Problem(404, "NOT_FOUND", "this enrolment link is unknown, used or expired")
        return found

    @api.post("/enrol/{token}/options")
    def enrol_options(request: Request, token: str) -> Response:
        try:
            now = gateway.clock()
            with engine.begin() as conn:
                found = open_enrolment(request, conn, token, now)
                handle, challenge = keys.new_challenge(conn, "enrol", found.client, found.operator, now)
                options = keys.registration_options(party(request), found, challenge,
                                                    keys.credentials(conn, found.client, found.operator))
        except _Problem as err:
            return problem(err)
        return JSONResponse({"handle": handle, "options": json.loads(options)})

    @api.post("/enrol/{token}/finish")
    def enrol_finish(request: Request, token: str, body: JsonBody) -> Response:
        try:
            now = gateway.clock()
            with engine.begin() as conn:
                found = open_enrolment(request, conn, token, now)
                spent = keys.take_challenge(conn, str(body.get("handle")), "enrol", now)
                if spent is None or (spent.client_id, spent.operator_id) != (found.client, found.operator):
                    raise _Problem(400, "PERMISSION_DENIED", "the registration's challenge is unknown or spent")
            try:
                with engine.begin() as conn:
                    keys.register(conn, party(request), found, spent.challenge, body.get("credential"), now)
            except KeyRefused as err:
                _audit(found.client, found.operator, "KEY_REFUSED", str(err))
                raise _Problem(400, "PERMISSION_DENIED", "the key's registration did not verify") from None
        except _Problem as err:
            return problem(err)
        return JSONResponse({"ok": True, "next": f"{PREFIX}/signin"})

    # ---- sign-in and sign-out ---------------------------------------------------------------------------

    @api.post("/signin/options")
    def signin_options(request: Request, body: JsonBody) -> Response:
        client, operator = str(body.get("client", ""))[:35], str(body.get("operator", ""))[:35]
        address = request.client.host if request.client else None
        now = gateway.clock()
        try:
            same_origin(request)
            known = _known(client, operator)   # before the transaction: SQLite has one writer
            with engine.begin() as conn:
                mine, there = keys.recent_signins(conn, client, operator, address, now - window)
                if max(mine, there) >= settings.console_signin_attempts:
                    raise _Problem(429, "RATE_LIMITED", "too many sign-ins: wait a few minutes")
                registered = keys.credentials(conn, client, operator) if known else []
                if not registered:
                    raise _Problem(400, "PERMISSION_DENIED", "no security key is registered for this operator")
                handle, challenge = keys.new_challenge(conn, "signin", client, operator, now, address=address)
                options = keys.authentication_options(party(request), challenge, registered)
        except _Problem as err:
            _audit(client, operator, "SIGNIN_LIMITED" if err.status == 429 else "SIGNIN_REFUSED",
                   f"{client}/{operator} from {address}: {err.detail}")
            return problem(err)
        return JSONResponse({"handle": handle, "options": json.loads(options)})

    @api.post("/signin/finish")
    def signin_finish(request: Request, body: JsonBody) -> Response:
        address = request.client.host if request.client else None
        now = gateway.clock()
        try:
            same_origin(request)
            with engine.begin() as conn:   # spent whatever follows: an assertion is good once
                spent = keys.take_challenge(conn, str(body.get("handle")), "signin", now)
            if spent is None:
                _audit(None, None, "SIGNIN_REFUSED", f"from {address}: challenge unknown, spent or expired")
                raise _Problem(400, "PERMISSION_DENIED", "sign-in refused: start again")
            client, operator = spent.client_id, spent.operator_id
            try:
                with engine.begin() as conn:
                    key = keys.check_assertion(conn, party(request), client, operator, spent.challenge,
                                               body.get("credential"))
                    token = sessions.start(conn, client, operator, key.id, now)
                    if sessions.current(conn, token, now, idle) is None:   # the operator is disabled
                        raise KeyRefused(f"operator {client}/{operator} may not sign in (disabled)")
            except KeyRefused as err:
                _audit(client, operator, "SIGNIN_REFUSED", f"from {address}: {err}")
                raise _Problem(400, "PERMISSION_DENIED", "sign-in refused: start again") from None
        except _Problem as err:
            return problem(err)
        _audit(client, operator, "SIGNIN", f"{client}/{operator} signed in from {address} with key {key.id}")
        response = JSONResponse({"ok": True, "next": f"{PREFIX}/"})
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path=PREFIX,
                            secure=request.url.scheme == "https")
        return response

    @api.post("/signout")
    async def signout(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        try:
            session = await run_in_threadpool(writing, request, (form.get("csrf") or [None])[0])
        except _Problem as err:
            return problem(err)

        def end() -> None:
            with engine.begin() as conn:
                sessions.end(conn, session.token_hash, gateway.clock())
            _audit(session.client, session.operator, "SIGNOUT", f"{session.client}/{session.operator} signed out")
        await run_in_threadpool(end)
        response = RedirectResponse(f"{PREFIX}/signin?out=1", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    # ---- approvals ----------------------------------------------------------------------------------------

    @api.post("/approvals/options")
    def approval_options(request: Request, body: JsonBody) -> Response:
        try:
            session = writing(request)
            decision = body.get("decision")
            raw = body.get("items")
            if decision not in evidence.DECISIONS or not isinstance(raw, list) or not 0 < len(raw) <= MAX_BATCH:
                raise _Problem(400, "XML_SCHEMA_INVALID", "a decision (APPROVE or REJECT) on 1-200 payments")
            items = []
            for item in raw:
                pid, digest = (item.get("payment_id"), item.get("order_digest")) if isinstance(item, dict) else (0, 0)
                if not (isinstance(pid, str) and isinstance(digest, str) and 0 < len(pid) <= 35 and len(digest) <= 44):
                    raise _Problem(400, "XML_SCHEMA_INVALID", "each item names a PaymentId and an OrderDigest")
                items.append((pid, digest))
            if len({pid for pid, _ in items}) != len(items):
                raise _Problem(400, "XML_SCHEMA_INVALID", "a payment is named twice")
            comment = str(body.get("comment") or "")[:140] or None
            now = gateway.clock()
            text = evidence.statement(session.client, session.operator, decision, items, comment,
                                      now.isoformat(timespec="seconds"))
            with engine.begin() as conn:
                registered = keys.credentials(conn, session.client, session.operator)
                handle, challenge = keys.new_challenge(conn, "approve", session.client, session.operator, now,
                                                       challenge=evidence.challenge_of(text), statement=text,
                                                       session_hash=session.token_hash)
            options = keys.authentication_options(party(request), challenge, registered)
        except _Problem as err:
            return problem(err)
        return JSONResponse({"handle": handle, "options": json.loads(options), "statement": text})

    @api.post("/approvals/decide")
    def approval_decide(request: Request, body: JsonBody) -> Response:
        try:
            session = writing(request)
            now = gateway.clock()
            with engine.begin() as conn:   # spent whatever follows: an assertion is good once
                spent = keys.take_challenge(conn, str(body.get("handle")), "approve", now)
            if spent is None or spent.session_hash != session.token_hash:
                _audit(session.client, session.operator, "APPROVAL_UNSIGNED",
                       "an approval whose challenge is unknown, spent, expired or another session's (a replay?)")
                raise _Problem(400, "PERMISSION_DENIED", "the approval's challenge is unknown or spent: start again")
            credential = body.get("credential")
            here = party(request)
            try:
                with engine.begin() as conn:
                    key = keys.check_assertion(conn, here, session.client, session.operator, spent.challenge,
                                               credential)
            except KeyRefused as err:
                _audit(session.client, session.operator, "APPROVAL_UNSIGNED", f"{err}",
                       request=json.dumps({"statement": spent.statement, "assertion": credential},
                                          default=str).encode("utf-8"))
                raise _Problem(400, "SIG_INVALID", "the key's signature did not verify: nothing changed") from None
            said = json.loads(spent.statement)
            items = [(i["payment_id"], i["order_digest"]) for i in said["items"]]
            proof = evidence.record(spent.statement, credential, key.public_key, key.id, here.rp_id, here.origin)
            outcomes = approvals.decide(engine, gateway.config, settings, session.client, session.operator,
                                        said["decision"], items, said["comment"] or None, proof, now)
        except _Problem as err:
            return problem(err)
        return JSONResponse({"ok": all(o.applied for o in outcomes),
                             "outcomes": [o.__dict__ for o in outcomes]})

    return api
