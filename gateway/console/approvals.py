"""The approvals inbox and the decisions taken from it, through the code the protocol's PaymentApproval runs.

Who may see and approve what is decided where it is for the XML protocol: the operator's grants as the
configuration cache holds them (gateway/config_cache.py), and `lifecycle.approve` for each decision (the
maker never approves their own payment, the OrderDigest must match, the approval limit holds). The console
adds only that one signed decision on several payments is taken whole or not at all.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy import Engine, and_, exists, select
from sqlalchemy.exc import DBAPIError

from domain.codes import Grant, PaymentState, ReasonCode
from domain.errors import DirectLinkError
from domain.money import Money
from gateway import audit, ledger, lifecycle, rule_facts
from gateway.config_cache import VERSION, Config, ConfigCache
from gateway.console import evidence
from gateway.directory import AccountGrant
from gateway.payments import PayContext, is_internal_row
from gateway.settings import Settings
from gateway.storage.tables import operators, payment_approvals, payments
from gateway.storage.unit_of_work import UnitOfWork, transaction


@dataclass(frozen=True)
class Waiting:
    """A payment in the inbox, as the page draws it."""

    payment_id: str
    created_at: dt.datetime
    payee: str
    payee_account: str
    payee_bank: str
    amount: Money
    debtor_account: str
    maker: str
    maker_name: str
    purpose: str
    rules: tuple
    still_needed: int
    order_digest: str


def config(cache: ConfigCache, conn) -> Config:
    """The configuration as a request of the protocol would read it, in this transaction."""
    return Config(cache, conn.execute(select(VERSION)).scalar(), conn)


def inbox(conn, grants: dict[str, AccountGrant], client: str, operator: str, limit: int = 500) -> list[Waiting]:
    """Payments waiting for approval that this operator may approve: on an account where they hold the
    approve grant, within their approval limit, not their own, not decided by them already."""
    approvable = {a: g for a, g in grants.items() if Grant.APPROVE in g.grants}
    if not approvable:
        return []
    p = payments.c
    mine = exists().where(payment_approvals.c.payment_id == p.id, payment_approvals.c.approver == operator)
    rows = conn.execute(
        select(payments, operators.c.name.label("maker_name"))
        .outerjoin(operators, and_(operators.c.client_id == p.client_id, operators.c.id == p.maker))
        .where(p.client_id == client, p.state == PaymentState.PENDING_APPROVAL,
               p.debtor_account.in_(sorted(approvable)), p.maker != operator, ~mine)
        .order_by(p.created_at, p.id).limit(limit)).all()
    result = []
    for r in rows:
        cap = approvable[r.debtor_account].approve_limit
        if cap is not None and r.amount > cap:
            continue
        result.append(Waiting(r.id, r.created_at, r.creditor_name, r.creditor_account,
                              r.creditor_bank_name or f"{r.creditor_bank_scheme} {r.creditor_bank_code}".strip(),
                              Money.from_minor(r.amount, r.currency), r.debtor_account, r.maker, r.maker_name or r.maker,
                              r.purpose, rule_facts.hits_from_json(r.rule_hits),
                              max(0, r.approvals_required - r.approvals_given), r.order_digest))
    return result


@dataclass(frozen=True)
class Outcome:
    payment_id: str
    applied: bool
    state: str
    code: str | None      # the protocol's reason or result code of a refusal
    detail: str | None


# The reasons lifecycle.approve answers a refused decision with (the payment unchanged).
_REFUSALS = (ReasonCode.APPROVAL_BY_MAKER, ReasonCode.APPROVAL_DIGEST_MISMATCH, ReasonCode.LIMIT_SINGLE)


class _Refused(Exception):
    def __init__(self, outcomes: list[Outcome]):
        super().__init__("refused")
        self.outcomes = outcomes


def decide(engine: Engine, cache: ConfigCache, settings: Settings, client: str, operator: str, decision: str,
           items: list[tuple[str, str]], comment: str | None, proof: bytes, now: dt.datetime) -> list[Outcome]:
    """decide_once, run again (up to 5 times) when PostgreSQL chose it as a deadlock's or serialization
    failure's victim: its transaction rolled back whole, so running it again takes the decision once."""
    for attempt in range(5):
        try:
            return decide_once(engine, cache, settings, client, operator, decision, items, comment, proof, now)
        except DBAPIError as err:
            if getattr(err.orig, "sqlstate", None) not in ("40001", "40P01") or attempt == 4:
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


def decide_once(engine: Engine, cache: ConfigCache, settings: Settings, client: str, operator: str, decision: str,
                items: list[tuple[str, str]], comment: str | None, proof: bytes, now: dt.datetime) -> list[Outcome]:
    """Take one signed decision on every payment named, each through lifecycle.approve, all in one
    transaction: if any is refused (changed, cancelled, decided since the page was drawn; the maker's own;
    over the limit) none is taken, and the refusal is audited with the evidence instead."""
    try:
        with transaction(engine) as uow:
            ctx = _pay_context(uow, cache, settings, client, operator, now)
            _lock(ctx, [pid for pid, _ in items])
            outcomes = [_one(ctx, pid, digest, decision, comment) for pid, digest in items]
            audit.append(uow, chain=client, at=now, kind="console", code=evidence.SIGNED, client_id=client,
                         operator_id=operator, detail=_summary(decision, items), request=proof)
            if not all(o.applied for o in outcomes):
                raise _Refused(outcomes)
            return outcomes
    except _Refused as refused:
        with transaction(engine) as uow:
            why = "; ".join(f"{o.payment_id}: {o.code}" for o in refused.outcomes if not o.applied)
            audit.append(uow, chain=client, at=now, kind="console", code=evidence.REFUSED, client_id=client,
                         operator_id=operator, detail=f"{_summary(decision, items)} refused, nothing changed: {why}",
                         request=proof)
        return [o if not o.applied else Outcome(o.payment_id, False, PaymentState.PENDING_APPROVAL.value, None,
                                                "not taken: the decision is taken whole or not at all")
                for o in refused.outcomes]


def _pay_context(uow: UnitOfWork, cache: ConfigCache, settings: Settings, client: str, operator: str,
                 now: dt.datetime) -> PayContext:
    cfg = config(cache, uow.conn)
    return PayContext(uow, client, operator, cfg.grants(client, operator), now, settings.zone,
                      settings.own_cnaps_prefix, cfg)


def _lock(ctx: PayContext, ids: list[str]) -> None:
    """Lock the payments, then every account their settlement may touch, before the client lock: the order
    lifecycle.approve takes them in for one payment, kept for several (no deadlock with the protocol's)."""
    p = payments.c
    rows = ctx.conn.execute(select(p.id, p.debtor_account, p.creditor_account, p.creditor_bank_scheme,
                                   p.creditor_bank_code).where(p.client_id == ctx.client, p.id.in_(sorted(set(ids))))
                            .order_by(p.id).with_for_update()).all()
    ledger.lock_accounts(ctx.conn, {r.debtor_account for r in rows}
                         | {r.creditor_account for r in rows if is_internal_row(r, ctx.own_cnaps_prefix)})


def _summary(decision: str, items: list[tuple[str, str]]) -> str:
    return f"{decision} " + " ".join(pid for pid, _ in items)


def _one(ctx: PayContext, payment_id: str, digest: str, decision: str, comment: str | None) -> Outcome:
    try:
        status = lifecycle.approve(ctx, payment_id, digest, decision, comment)
    except DirectLinkError as err:   # NOT_FOUND, PERMISSION_DENIED: raised before anything was written
        return Outcome(payment_id, False, "", err.code.value, err.detail)
    # Taken exactly when this operator's decision was recorded now; otherwise the answer says why not (a
    # reason of the protocol), or the payment is no longer waiting (its state is the code).
    taken = ctx.conn.execute(select(payment_approvals.c.decision).where(
        payment_approvals.c.payment_id == payment_id, payment_approvals.c.approver == ctx.operator,
        payment_approvals.c.at == ctx.now)).first() is not None
    if taken:
        return Outcome(payment_id, True, status.state.value, None, None)
    if status.state == PaymentState.PENDING_APPROVAL and status.reason in _REFUSALS:
        return Outcome(payment_id, False, status.state.value, status.reason.value, status.reason_text)
    return Outcome(payment_id, False, status.state.value, status.state.value,
                   f"the payment is {status.state.value}, no longer waiting for this approval")
