"""Accepting payments: idempotency by ClientRef, grants and limits, holds, and immediate settlement
of payments between accounts of this bank. Runs inside the request's transaction (accept means commit).
"""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from domain.codes import Grant, PaymentState, ReasonCode
from domain.errors import NotFound, PaymentRejected
from domain.models import PaymentInstruction, PaymentStatus, is_own_bank
from domain.money import Money
from domain.names import key as name_key
from domain.rules import Outcome, RuleRejected, outcome_of
from domain.states import RELEASED
from gateway import audit, businessday, directory, ledger, rules, transitions
from gateway.messages import ParsedPayment
from gateway.storage.tables import accounts, payments



@dataclass(frozen=True)
class PayContext:
    conn: Connection
    client: str
    operator: str
    grants: dict[str, directory.AccountGrant]
    now: dt.datetime
    zone: dt.tzinfo
    own_cnaps_prefix: str

    @property
    def actor(self) -> str:
        return f"{self.client}/{self.operator}"

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(self.zone).date()

    def day_start(self) -> dt.datetime:
        return businessday.start_of(self.today, self.zone)


def new_payment_id(today: dt.date) -> str:
    return f"P{today:%Y%m%d}{secrets.token_hex(6).upper()}"


def status_of(row) -> PaymentStatus:
    """A payments row as the PaymentStatus the ERP sees."""
    return PaymentStatus(
        client_ref=row.client_ref, payment_id=row.id, state=PaymentState(row.state),
        reason=ReasonCode(row.reason_code) if row.reason_code else None, reason_text=row.reason_text,
        approvals_required=row.approvals_required, approvals_given=row.approvals_given,
        order_digest=row.order_digest, updated=row.updated_at, amount=Money.from_minor(row.amount, row.currency),
        end_to_end_id=row.end_to_end_id, debtor_account=row.debtor_account, rules=rules.hits_from_json(row.rule_hits))


def rejected(client_ref: str, problem: PaymentRejected) -> PaymentStatus:
    return PaymentStatus(client_ref=client_ref, state=PaymentState.REJECTED, reason=problem.reason,
                         reason_text=problem.detail, rules=getattr(problem, "hits", ()))


def is_internal(ctx: PayContext, instruction: PaymentInstruction) -> bool:
    """A payment to an account of this bank: INTERNAL scheme or our own CNAPS prefix."""
    bank = instruction.creditor.bank
    return is_own_bank(bank.scheme, bank.code, ctx.own_cnaps_prefix)


def submit(ctx: PayContext, batch_id: str | None, parsed: list[ParsedPayment]) -> list[PaymentStatus]:
    """Accept each payment on its own; return one status per payment, in order."""
    # Lock every account the batch may touch, in one sorted sweep, before touching any (no deadlocks).
    touched = {p.instruction.debtor_account for p in parsed if p.instruction}
    touched |= {p.instruction.creditor.account for p in parsed if p.instruction and is_internal(ctx, p.instruction)}
    ledger.lock_accounts(ctx.conn, touched)
    results = []
    for p in parsed:
        if p.problem is not None:
            results.append(rejected(p.client_ref, p.problem))
            continue
        try:
            with ctx.conn.begin_nested():   # a rejected payment leaves no trace; its siblings go on
                results.append(_accept(ctx, batch_id, p))
        except PaymentRejected as problem:
            if isinstance(problem, RuleRejected):   # the decision is audited though nothing was stored
                audit.append(ctx.conn, chain=ctx.client, at=ctx.now, kind="rule", code=problem.reason.value,
                             client_id=ctx.client, operator_id=ctx.operator, to_state=PaymentState.REJECTED,
                             detail=f"ClientRef {p.client_ref}: {problem.detail}")
            results.append(rejected(p.client_ref, problem))
    return results


def _existing(ctx: PayContext, client_ref: str):
    return ctx.conn.execute(select(payments).where(
        payments.c.client_id == ctx.client, payments.c.client_ref == client_ref)).first()


def _same_or_duplicate(ctx: PayContext, row, p: ParsedPayment) -> PaymentStatus:
    if row.content_hash != p.instruction.content_hash():
        raise PaymentRejected(ReasonCode.DUPLICATE_REFERENCE,
                              f"ClientRef {p.client_ref} was used before for a different payment")
    if row.debtor_account not in ctx.grants:
        # Retries are answered before the grant checks (a maker who lost 'pay' still learns its payment
        # exists), but only to operators who may see the account at all.
        raise PaymentRejected(ReasonCode.ACCOUNT_INVALID, f"unknown debtor account {row.debtor_account}")
    return status_of(row)


def _accept(ctx: PayContext, batch_id: str | None, p: ParsedPayment) -> PaymentStatus:
    ins = p.instruction
    row = _existing(ctx, ins.client_ref)
    if row is not None:
        return _same_or_duplicate(ctx, row, p)
    grant = _check_grant(ctx, ins)
    internal = is_internal(ctx, ins)
    if internal:
        _check_internal_creditor(ctx, ins)
    hits = rules.decide(ctx.conn, ctx.client, ins, ctx.now, ctx.zone, ctx.day_start())
    held = outcome_of(hits) == Outcome.HOLD
    if outcome_of(hits) == Outcome.REJECT:
        raise RuleRejected(hits)
    required = directory.required_approvals(ctx.conn, ctx.client, ins.debtor_account, ins.amount.currency,
                                            ins.amount.minor)
    if held:
        required = max(required, 1)   # a rule's hold is released by an approver, like a threshold
    initial = PaymentState.PENDING_APPROVAL if required else PaymentState.ACCEPTED
    payment_id = new_payment_id(ctx.today)
    try:
        with ctx.conn.begin_nested():
            ctx.conn.execute(insert(payments).values(
                id=payment_id, client_id=ctx.client, client_ref=ins.client_ref, end_to_end_id=ins.e2e,
                batch_id=batch_id, debtor_account=ins.debtor_account, amount=ins.amount.minor,
                currency=ins.amount.currency, creditor_name=ins.creditor.name,
                creditor_account=ins.creditor.account, creditor_bank_scheme=ins.creditor.bank.scheme,
                creditor_bank_code=ins.creditor.bank.code, creditor_bank_name=ins.creditor.bank_name,
                purpose=ins.purpose, remark=ins.remark, requested_date=ins.requested_date or ctx.today,
                urgency=ins.urgency, state=initial, order_digest=p.order_digest, approvals_required=required,
                content_hash=ins.content_hash(), maker=ctx.operator, created_at=ctx.now, updated_at=ctx.now,
                creditor_key=name_key(ins.creditor.name), rule_hits=rules.hits_json(hits),
                reason_code=hits[0].code.value if held else None,
                reason_text=rules.reason_text(hits)[:255] if held else None))
    except IntegrityError:
        # A concurrent request claimed this ClientRef first and has committed: answer as a retry.
        row = _existing(ctx, ins.client_ref)
        if row is None:
            raise
        return _same_or_duplicate(ctx, row, p)
    _check_daily_limit(ctx, grant, ins, payment_id)
    if not ledger.hold(ctx.conn, payment_id, ins.debtor_account, ins.amount.minor, ctx.now):
        raise PaymentRejected(ReasonCode.INSUFFICIENT_FUNDS,
                              f"available balance of {ins.debtor_account} is less than {ins.amount.text()}")
    why = f"waits for {required} approval(s), funds held" if required else "accepted, funds held"
    if held:
        why = f"held by rules ({rules.summary(hits)}); {why}"
    transitions.move(ctx.conn, payment_id=payment_id, client=ctx.client, before=None, after=initial,
                     actor=ctx.actor, why=why, now=ctx.now)
    row = load(ctx.conn, payment_id)
    if internal and initial == PaymentState.ACCEPTED and row.requested_date <= ctx.today:
        settle_internal(ctx.conn, row, ctx.now, ctx.zone, ctx.actor)
        row = load(ctx.conn, payment_id)
    return status_of(row)


def _check_grant(ctx: PayContext, ins: PaymentInstruction) -> directory.AccountGrant:
    grant = ctx.grants.get(ins.debtor_account)
    if grant is None:
        # Unknown and not-granted accounts look the same: an operator never learns of others' accounts.
        raise PaymentRejected(ReasonCode.ACCOUNT_INVALID, f"unknown debtor account {ins.debtor_account}")
    if Grant.PAY not in grant.grants:
        raise PaymentRejected(ReasonCode.PERMISSION_DENIED,
                              f"operator {ctx.operator} may not pay from {ins.debtor_account}")
    if ins.amount.currency != grant.currency:
        raise PaymentRejected(ReasonCode.CURRENCY_NOT_ALLOWED,
                              f"account {ins.debtor_account} is in {grant.currency}, not {ins.amount.currency}")
    if grant.single_limit is not None and ins.amount.minor > grant.single_limit:
        raise PaymentRejected(ReasonCode.LIMIT_SINGLE,
                              f"{ins.amount.text()} is over the single-payment limit "
                              f"{grant.money(grant.single_limit).text()}")
    return grant


def _check_internal_creditor(ctx: PayContext, ins: PaymentInstruction) -> None:
    row = ctx.conn.execute(select(accounts.c.currency, accounts.c.client_id)
                           .where(accounts.c.number == ins.creditor.account)).first()
    if row is None or row.client_id is None:
        raise PaymentRejected(ReasonCode.ACCOUNT_INVALID,
                              f"creditor account {ins.creditor.account} is not an account of this bank")
    if row.currency != ins.amount.currency:
        raise PaymentRejected(ReasonCode.CURRENCY_NOT_ALLOWED,
                              f"creditor account {ins.creditor.account} is in {row.currency}")


def _check_daily_limit(ctx: PayContext, grant: directory.AccountGrant, ins: PaymentInstruction, payment_id: str) -> None:
    # Runs after the debtor account row is locked, so parallel payments see each other's amounts.
    if grant.daily_limit is None:
        return
    used = ctx.conn.execute(select(func.coalesce(func.sum(payments.c.amount), 0)).where(
        payments.c.client_id == ctx.client, payments.c.maker == ctx.operator,
        payments.c.debtor_account == ins.debtor_account, payments.c.created_at >= ctx.day_start(),
        payments.c.state.not_in(RELEASED), payments.c.id != payment_id)).scalar()
    if used + ins.amount.minor > grant.daily_limit:
        raise PaymentRejected(ReasonCode.LIMIT_DAILY,
                              f"today's payments would reach {grant.money(used + ins.amount.minor).text()}, "
                              f"over the daily limit {grant.money(grant.daily_limit).text()}")


def existing_ids(conn: Connection, ids: list[str]) -> set[str]:
    return set(conn.execute(select(payments.c.id).where(payments.c.id.in_(ids))).scalars()) if ids else set()


def load(conn: Connection, payment_id: str):
    return conn.execute(select(payments).where(payments.c.id == payment_id)).one()


def settle_internal(conn: Connection, row, now: dt.datetime, zone: dt.tzinfo, actor: str) -> None:
    """Book an accepted transfer between two accounts of this bank: release the hold, post both legs.

    The caller holds the two accounts' locks already (taken before any other lock: no deadlocks)."""
    debtor_name = conn.execute(select(accounts.c.name).where(accounts.c.number == row.debtor_account)).scalar()
    ledger.release(conn, row.id, now)
    ledger.post(conn, row.id, [
        ledger.Leg(row.debtor_account, ledger.DBIT, row.amount, row.purpose,
                   counterparty_name=row.creditor_name, counterparty_account=row.creditor_account,
                   counterparty_scheme=row.creditor_bank_scheme, counterparty_code=row.creditor_bank_code,
                   client_ref=row.client_ref, end_to_end_id=row.end_to_end_id, payment_id=row.id),
        # The payee sees the EndToEndId (it is meant to travel) but not the payer's own ClientRef.
        ledger.Leg(row.creditor_account, ledger.CRDT, row.amount, row.purpose,
                   counterparty_name=(debtor_name or "")[:70], counterparty_account=row.debtor_account,
                   counterparty_scheme="INTERNAL", counterparty_code="", end_to_end_id=row.end_to_end_id,
                   payment_id=row.id),
    ], now, now.astimezone(zone).date())
    transitions.move(conn, payment_id=row.id, client=row.client_id, before=PaymentState.ACCEPTED,
                     after=PaymentState.SETTLED, actor=actor, why="settled within the bank", now=now)


def is_internal_row(row, own_cnaps_prefix: str) -> bool:
    """The same test as is_internal, on a stored payment."""
    return is_own_bank(row.creditor_bank_scheme, row.creditor_bank_code, own_cnaps_prefix)


def statuses(ctx: PayContext, refs: tuple[str, ...], ids: tuple[str, ...],
             date_from: dt.date | None, date_to: dt.date | None) -> list[PaymentStatus]:
    """Statuses by ClientRef, PaymentId or creation date; only payments on accounts the operator may query."""
    visible = [a for a, g in ctx.grants.items() if Grant.QUERY in g.grants]
    base = select(payments).where(payments.c.client_id == ctx.client, payments.c.debtor_account.in_(visible))
    if date_from is not None:
        start, end = businessday.bounds(date_from, date_to, ctx.zone)
        rows = ctx.conn.execute(base.where(payments.c.created_at >= start, payments.c.created_at < end)
                                .order_by(payments.c.created_at, payments.c.id).limit(5000)).all()
        return [status_of(r) for r in rows]
    by_ref = {r.client_ref: r for r in ctx.conn.execute(base.where(payments.c.client_ref.in_(refs)))} if refs else {}
    by_id = {r.id: r for r in ctx.conn.execute(base.where(payments.c.id.in_(ids)))} if ids else {}
    missing = [r for r in refs if r not in by_ref] + [i for i in ids if i not in by_id]
    if missing:
        raise NotFound("unknown payment(s): " + ", ".join(missing[:20]))
    return [status_of(by_ref[r]) for r in refs] + [status_of(by_id[i]) for i in ids]
