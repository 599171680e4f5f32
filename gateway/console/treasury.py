"""The approvals inbox with its signed decisions, and the balances with the cash position."""
from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from gateway.console import approvals, evidence, keys, position
from gateway.console.frame import Frame, JsonBody, Problem
from gateway.console.keys import KeyRefused
from gateway.storage.engine import read_only

MAX_BATCH = 200   # payments in one signed decision


def add(api: APIRouter, frame: Frame) -> None:
    @api.get("/inbox", response_class=HTMLResponse)
    def inbox_page(request: Request) -> Response:
        session = frame.session(request)
        if session is None:
            return frame.signin_again(request)
        with read_only(frame.engine) as conn:
            grants = frame.grants(session, conn)
            waiting = approvals.inbox(conn, grants, session.client, session.operator)
        return frame.page(request, "inbox.html", session, waiting=waiting, zone=frame.settings.zone)

    @api.get("/balances", response_class=HTMLResponse)
    def balances_page(request: Request) -> Response:
        session = frame.session(request)
        if session is None:
            return frame.signin_again(request)
        today = frame.now().astimezone(frame.settings.zone).date()
        with read_only(frame.engine) as conn:
            grants = frame.grants(session, conn)
            lines, currencies = position.overview(conn, grants, today)
        return frame.page(request, "balances.html", session, lines=lines, currencies=currencies)

    # ---- approvals ----------------------------------------------------------------------------------------

    @api.post("/approvals/options")
    def approval_options(request: Request, body: JsonBody) -> Response:
        try:
            session = frame.writing(request)
            decision = body.get("decision")
            raw = body.get("items")
            if decision not in evidence.DECISIONS or not isinstance(raw, list) or not 0 < len(raw) <= MAX_BATCH:
                raise Problem(400, "XML_SCHEMA_INVALID", "a decision (APPROVE or REJECT) on 1-200 payments")
            items = []
            for item in raw:
                pid, digest = (item.get("payment_id"), item.get("order_digest")) if isinstance(item, dict) else (0, 0)
                if not (isinstance(pid, str) and isinstance(digest, str) and 0 < len(pid) <= 35 and len(digest) <= 44):
                    raise Problem(400, "XML_SCHEMA_INVALID", "each item names a PaymentId and an OrderDigest")
                items.append((pid, digest))
            if len({pid for pid, _ in items}) != len(items):
                raise Problem(400, "XML_SCHEMA_INVALID", "a payment is named twice")
            comment = str(body.get("comment") or "")[:140] or None
            now = frame.now()
            text = evidence.statement(session.client, session.operator, decision, items, comment,
                                      now.isoformat(timespec="seconds"))
            with frame.engine.begin() as conn:
                registered = keys.credentials(conn, session.client, session.operator)
                handle, challenge = keys.new_challenge(conn, "approve", session.client, session.operator, now,
                                                       challenge=evidence.challenge_of(text), statement=text,
                                                       session_hash=session.token_hash)
            options = keys.authentication_options(frame.party(request), challenge, registered)
        except Problem as err:
            return err.response()
        return JSONResponse({"handle": handle, "options": json.loads(options), "statement": text})

    @api.post("/approvals/decide")
    def approval_decide(request: Request, body: JsonBody) -> Response:
        try:
            session = frame.writing(request)
            now = frame.now()
            with frame.engine.begin() as conn:   # spent whatever follows: an assertion is good once
                spent = keys.take_challenge(conn, str(body.get("handle")), "approve", now)
            if spent is None or spent.session_hash != session.token_hash:
                frame.audit(session.client, session.operator, "APPROVAL_UNSIGNED",
                       "an approval whose challenge is unknown, spent, expired or another session's (a replay?)")
                raise Problem(400, "PERMISSION_DENIED", "the approval's challenge is unknown or spent: start again")
            credential = body.get("credential")
            here = frame.party(request)
            try:
                with frame.engine.begin() as conn:
                    key = keys.check_assertion(conn, here, session.client, session.operator, spent.challenge,
                                               credential)
            except KeyRefused as err:
                frame.audit(session.client, session.operator, "APPROVAL_UNSIGNED", f"{err}",
                       request=json.dumps({"statement": spent.statement, "assertion": credential},
                                          default=str).encode("utf-8"))
                raise Problem(400, "SIG_INVALID", "the key's signature did not verify: nothing changed") from None
            said = json.loads(spent.statement)
            items = [(i["payment_id"], i["order_digest"]) for i in said["items"]]
            proof = evidence.record(spent.statement, credential, key.public_key, key.id, here.rp_id, here.origin)
            outcomes = approvals.decide(frame.engine, frame.gateway.config, frame.settings, session.client, session.operator,
                                        said["decision"], items, said["comment"] or None, proof, now)
        except Problem as err:
            return err.response()
        return JSONResponse({"ok": all(o.applied for o in outcomes),
                             "outcomes": [o.__dict__ for o in outcomes]})
