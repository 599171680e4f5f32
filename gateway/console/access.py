"""Enrolment of a security key, sign-in and sign-out: the console's WebAuthn ceremonies (keys.py) and its
sessions (sessions.py), each step audited."""
from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from gateway.console import keys, sessions
from gateway.console.frame import PREFIX, Frame, JsonBody, Problem
from gateway.console.keys import KeyRefused
from gateway.console.sessions import COOKIE
from gateway.storage.engine import read_only


def add(api: APIRouter, frame: Frame) -> None:
    idle, window = frame.idle, dt.timedelta(minutes=frame.settings.console_signin_window_minutes)

    @api.get("/signin", response_class=HTMLResponse)
    def signin_page(request: Request, ended: int = 0, out: int = 0) -> Response:
        note = "session_ended" if ended else "signed_out" if out else None
        return frame.page(request, "signin.html", note=note)

    # ---- enrolment --------------------------------------------------------------------------------------

    @api.get("/enrol/{token}", response_class=HTMLResponse)
    def enrol_page(request: Request, token: str) -> Response:
        with read_only(frame.engine) as conn:
            found = keys.enrolment(conn, token, frame.now())
        if found is None:
            return frame.page(request, "message.html", status=404, message="link_invalid")
        return frame.page(request, "enrol.html", enrolment=found, zone=frame.settings.zone)

    def open_enrolment(request: Request, conn, token: str, now: dt.datetime) -> keys.Enrolment:
        frame.same_origin(request)
        found = keys.enrolment(conn, token, now)
        if found is None:
            raise Problem(404, "NOT_FOUND", "this enrolment link is unknown, used or expired")
        return found

    @api.post("/enrol/{token}/options")
    def enrol_options(request: Request, token: str) -> Response:
        try:
            now = frame.now()
            with frame.engine.begin() as conn:
                found = open_enrolment(request, conn, token, now)
                handle, challenge = keys.new_challenge(conn, "enrol", found.client, found.operator, now)
                options = keys.registration_options(frame.party(request), found, challenge,
                                                    keys.credentials(conn, found.client, found.operator))
        except Problem as err:
            return err.response()
        return JSONResponse({"handle": handle, "options": json.loads(options)})

    @api.post("/enrol/{token}/finish")
    def enrol_finish(request: Request, token: str, body: JsonBody) -> Response:
        try:
            now = frame.now()
            with frame.engine.begin() as conn:
                found = open_enrolment(request, conn, token, now)
                spent = keys.take_challenge(conn, str(body.get("handle")), "enrol", now)
                if spent is None or (spent.client_id, spent.operator_id) != (found.client, found.operator):
                    raise Problem(400, "PERMISSION_DENIED", "the registration's challenge is unknown or spent")
            try:
                with frame.engine.begin() as conn:
                    keys.register(conn, frame.party(request), found, spent.challenge, body.get("credential"), now)
            except KeyRefused as err:
                frame.audit(found.client, found.operator, "KEY_REFUSED", str(err))
                raise Problem(400, "PERMISSION_DENIED", "the key's registration did not verify") from None
        except Problem as err:
            return err.response()
        return JSONResponse({"ok": True, "next": f"{PREFIX}/signin"})

    # ---- sign-in and sign-out ---------------------------------------------------------------------------

    @api.post("/signin/options")
    def signin_options(request: Request, body: JsonBody) -> Response:
        client, operator = str(body.get("client", ""))[:35], str(body.get("operator", ""))[:35]
        address = request.client.host if request.client else None
        now = frame.now()
        try:
            frame.same_origin(request)
            known = frame.known(client, operator)   # before the transaction: SQLite has one writer
            with frame.engine.begin() as conn:
                mine, there = keys.recent_signins(conn, client, operator, address, now - window)
                if max(mine, there) >= frame.settings.console_signin_attempts:
                    raise Problem(429, "RATE_LIMITED", "too many sign-ins: wait a few minutes")
                registered = keys.credentials(conn, client, operator) if known else []
                if not registered:
                    raise Problem(400, "PERMISSION_DENIED", "no security key is registered for this operator")
                keys.purge(conn, now)   # each sign-in clears what is a day old: the tables stay small
                handle, challenge = keys.new_challenge(conn, "signin", client, operator, now, address=address)
                options = keys.authentication_options(frame.party(request), challenge, registered)
        except Problem as err:
            frame.audit(client, operator, "SIGNIN_LIMITED" if err.status == 429 else "SIGNIN_REFUSED",
                   f"{client}/{operator} from {address}: {err.detail}")
            return err.response()
        return JSONResponse({"handle": handle, "options": json.loads(options)})

    @api.post("/signin/finish")
    def signin_finish(request: Request, body: JsonBody) -> Response:
        address = request.client.host if request.client else None
        now = frame.now()
        try:
            frame.same_origin(request)
            with frame.engine.begin() as conn:   # spent whatever follows: an assertion is good once
                spent = keys.take_challenge(conn, str(body.get("handle")), "signin", now)
            if spent is None:
                frame.audit(None, None, "SIGNIN_REFUSED", f"from {address}: challenge unknown, spent or expired")
                raise Problem(400, "PERMISSION_DENIED", "sign-in refused: start again")
            client, operator = spent.client_id, spent.operator_id
            try:
                with frame.engine.begin() as conn:
                    key = keys.check_assertion(conn, frame.party(request), client, operator, spent.challenge,
                                               body.get("credential"))
                    token = sessions.start(conn, client, operator, key.id, now)
                    if sessions.current(conn, token, now, idle) is None:   # the operator is disabled
                        raise KeyRefused(f"operator {client}/{operator} may not sign in (disabled)")
            except KeyRefused as err:
                frame.audit(client, operator, "SIGNIN_REFUSED", f"from {address}: {err}")
                raise Problem(400, "PERMISSION_DENIED", "sign-in refused: start again") from None
        except Problem as err:
            return err.response()
        frame.audit(client, operator, "SIGNIN", f"{client}/{operator} signed in from {address} with key {key.id}")
        response = JSONResponse({"ok": True, "next": f"{PREFIX}/"})
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path=PREFIX,
                            secure=request.url.scheme == "https")
        return response

    @api.post("/signout")
    async def signout(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        try:
            session = await run_in_threadpool(frame.writing, request, (form.get("csrf") or [None])[0])
        except Problem as err:
            return err.response()

        def end() -> None:
            with frame.engine.begin() as conn:
                sessions.end(conn, session.token_hash, frame.now())
            frame.audit(session.client, session.operator, "SIGNOUT", f"{session.client}/{session.operator} signed out")
        await run_in_threadpool(end)
        response = RedirectResponse(f"{PREFIX}/signin?out=1", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response
