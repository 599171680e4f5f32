"""The console's routes under /console: the frame's own (the start page, the language, the static files),
and each group of pages (access.py: enrolment, sign-in, sign-out; treasury.py: approvals and balances;
tracking.py: the payments tracker; statement_view.py: statements;
reconciling.py: reconciliation; audit_view.py: the audit chain; delivery_view.py: notification delivery
health).
The pages are drawn on the server (Jinja2, autoescaped); the JSON endpoints serve the WebAuthn ceremonies."""
from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from domain.codes import Grant
from gateway.console import (
    access,
    audit_view,
    delivery_view,
    labels,
    reconciling,
    statement_view,
    tracking,
    treasury,
)
from gateway.console.frame import LANG_COOKIE, PREFIX, SECURITY_HEADERS, STATIC, Frame
from gateway.pipeline import Gateway

PAGES = (access, treasury, tracking, statement_view, reconciling, audit_view, delivery_view)   # each adds its routes: add(api, frame)
MAX_BODY = 256 * 1024


def mount(app: FastAPI, gateway: Gateway, reconciler: reconciling.Reconciler | None = None) -> None:
    """Add the console to the gateway's app. `reconciler` is the reconciliation the composition root wires
    in (gateway/cli/reconciler.py); without it the reconciliation page says it is not available."""
    frame = Frame(gateway)
    frame.reconciler = reconciler
    app.include_router(router(frame), prefix=PREFIX)

    @app.middleware("http")
    async def secure(request: Request, call_next):
        limit = reconciling.MAX_UPLOAD if request.url.path == reconciling.UPLOAD_PATH else MAX_BODY
        if request.url.path.startswith(PREFIX) and _over(request.headers.get("content-length"), limit):
            return Response("too large", status_code=413, headers=SECURITY_HEADERS)
        response = await call_next(request)
        if request.url.path.startswith(PREFIX):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response


def _over(declared: str | None, limit: int) -> bool:
    """A body the console never needs (an assertion and 200 payments are a few KiB; a reconciliation upload
    its own few MB): refused unread. A body of no declared length is refused on the upload route."""
    if declared is None:
        return limit == reconciling.MAX_UPLOAD
    return not declared.isdigit() or int(declared) > limit


def router(frame: Frame) -> APIRouter:
    api = APIRouter()

    @api.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        session = frame.session(request)
        if session is None:
            return frame.signin_again(request)
        approver = any(Grant.APPROVE in g.grants for g in frame.grants(session).values())
        return RedirectResponse(f"{PREFIX}/inbox" if approver else f"{PREFIX}/balances", status_code=303)

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
        return Response(frame.static[name], media_type=STATIC[name], headers={"Cache-Control": "max-age=3600"})

    for pages in PAGES:
        pages.add(api, frame)
    return api
