"""The console's frame: what every page and endpoint shares. The session and its CSRF check, drawing a page
in the operator's language, the relying party WebAuthn binds keys to, the operator's grants as the
protocol reads them, and the console's audit records.

A group of pages is a module with `add(api, frame)` (access.py, treasury.py), listed in routes.py, and its
entries in NAV below: the next pages (payments, statements, reconciliation, audit, delivery health) go the
same way, on the same session, permissions and policy.

Every page goes out with a Content-Security-Policy that allows scripts and styles from this origin only
(no inline script, no eval), and never cached. State-changing requests carry the session's CSRF token (the
X-CSRF-Token header, or a form field) and, when the browser says where they come from, this origin.
"""
from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Annotated, Any

from fastapi import Body, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from domain.codes import Grant
from gateway import audit, directory
from gateway.console import approvals, labels, sessions
from gateway.console.keys import Party
from gateway.console.sessions import COOKIE, Session
from gateway.directory import AccountGrant
from gateway.pipeline import Gateway
from gateway.storage.engine import read_only
from gateway.storage.unit_of_work import transaction

PREFIX = "/console"
LANG_COOKIE = "dl_lang"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# Referrer-Policy same-origin, not no-referrer: under no-referrer Chromium sends "Origin: null" with a form's
# POST, and the origin check below could not tell it from a foreign one; nothing leaves for another site.
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY", "Cache-Control": "no-store"}
STATIC = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}
# The pages of the navigation: (label key, path, the grant that shows it or None for everyone signed in).
NAV: list[tuple[str, str, Grant | None]] = [("inbox", "/inbox", Grant.APPROVE), ("balances", "/balances", Grant.QUERY),
                                             ("payments", "/payments", Grant.QUERY),
                                             ("statements", "/statements", Grant.QUERY),
                                             ("reconcile", "/reconcile", Grant.QUERY),
                                             ("audit", "/audit", Grant.QUERY),
                                             ("delivery", "/delivery", Grant.QUERY)]
JsonBody = Annotated[dict, Body()]


class Problem(Exception):
    """A refused request of the console's JSON endpoints: its HTTP status, a protocol-style code, and why."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail

    def response(self) -> JSONResponse:
        return JSONResponse({"code": self.code, "detail": self.detail}, status_code=self.status)


class Frame:
    """Built once per app, shared by every route (thread-safe: it keeps nothing per request)."""

    def __init__(self, gateway: Gateway):
        self.gateway, self.engine, self.settings = gateway, gateway.engine, gateway.settings
        self.reconciler: Any = None        # set by routes.mount (reconciling.Reconciler), else not available
        self.idle = dt.timedelta(minutes=self.settings.console_idle_minutes)
        self.pages = Environment(loader=PackageLoader("gateway.console", "templates"),
                                 autoescape=select_autoescape(default=True, default_for_string=True))
        self.pages.filters["money"] = labels.grouped
        self.static = {name: resources.files("gateway.console").joinpath("static", name).read_bytes()
                       for name in STATIC}

    def now(self) -> dt.datetime:
        return self.gateway.clock()

    def party(self, request: Request) -> Party:
        origin = (self.settings.console_origin
                  or f"{request.url.scheme}://{request.headers.get('host', 'localhost')}")
        return Party.of(origin, self.settings.bank_name)

    # ---- pages --------------------------------------------------------------------------------------------

    def page(self, request: Request, name: str, session: Session | None = None, status: int = 200,
             **values: Any) -> HTMLResponse:
        """A template drawn in the operator's language, with the navigation their grants open."""
        lang = labels.chosen(request.cookies.get(LANG_COOKIE))
        nav = []
        if session is not None:
            held = {g for grant in self.grants(session).values() for g in grant.grants}
            nav = [(key, PREFIX + path) for key, path, needs in NAV if needs is None or needs in held]
        html = self.pages.get_template(name).render(t=labels.translator(lang), lang=lang, session=session, nav=nav,
                                                    path=request.url.path, prefix=PREFIX, **values)
        return HTMLResponse(html, status_code=status)

    def signin_again(self, request: Request) -> Response:
        ended = "?ended=1" if request.cookies.get(COOKIE) else ""
        response = RedirectResponse(f"{PREFIX}/signin{ended}", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    # ---- sessions and permissions -------------------------------------------------------------------------

    def session(self, request: Request) -> Session | None:
        """The request's live session (its idle clock reset), or None."""
        with self.engine.begin() as conn:
            return sessions.current(conn, request.cookies.get(COOKIE), self.now(), self.idle)

    def same_origin(self, request: Request) -> None:
        sent = request.headers.get("origin")
        if sent is not None and sent != self.party(request).origin:
            raise Problem(403, "PERMISSION_DENIED", "the request comes from another site")

    def writing(self, request: Request, form_token: str | None = None) -> Session:
        """The session of a state-changing request, which must carry its CSRF token."""
        self.same_origin(request)
        session = self.session(request)
        if session is None:
            raise Problem(401, "SESSION_ENDED", "the session has ended: sign in again")
        if not session.csrf_ok(request.headers.get("x-csrf-token") or form_token):
            self.audit(session.client, session.operator, "CSRF_REFUSED",
                       f"{request.method} {request.url.path} without the session's CSRF token")
            raise Problem(403, "PERMISSION_DENIED", "the request lacks the session's CSRF token")
        return session

    def grants(self, session: Session, conn=None) -> dict[str, AccountGrant]:
        """The operator's grants, from the cache the protocol's requests use: the one permission model."""
        if conn is not None:
            return approvals.config(self.gateway.config, conn).grants(session.client, session.operator)
        with read_only(self.engine) as own:
            return approvals.config(self.gateway.config, own).grants(session.client, session.operator)

    def queryable(self, session: Session, conn=None) -> list[AccountGrant]:
        """The operator's accounts under the QUERY grant (their payments, statements, receipts and audit
        records are the operator's to see), in the grants' order."""
        return [g for g in self.grants(session, conn).values() if Grant.QUERY in g.grants]

    # ---- audit --------------------------------------------------------------------------------------------

    def audit(self, client: str | None, operator: str | None, code: str, detail: str,
              request: bytes | None = None) -> None:
        """A console record (kind "console") in the client's chain; in the unverified chain when the claimed
        operator does not exist, so that nobody makes chains at will. Its own transaction."""
        known = client is not None and operator is not None and self.known(client, operator)
        with transaction(self.engine) as uow:
            audit.append(uow, chain=client if known else audit.UNVERIFIED, at=self.now(), kind="console",
                         code=code, client_id=(client or "")[:35] or None, operator_id=(operator or "")[:35] or None,
                         detail=detail[:2000], request=request)

    def known(self, client: str, operator: str) -> bool:
        with read_only(self.engine) as conn:
            try:
                directory.require_operator(conn, client, operator)
            except ValueError:
                return False
        return True
