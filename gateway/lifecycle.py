"""What happens to a payment after acceptance, by its owners' hand: approval and cancellation.

Clearing (ACCEPTED -> PROCESSING -> SETTLED | FAILED | UNKNOWN, later RETURNED) is gateway/clearing.py.
"""
from __future__ import annotations

from dataclasses import replace

from sqlalchemy import insert, select, update

from domain.codes import Grant, PaymentState, ReasonCode
from domain.errors import NotFound, PermissionDenied
from domain.models import PaymentStatus
from gateway import ledger, transitions
from gateway.directory import AccountGrant
from gateway.payment_record import PaymentRecord
from gateway.payments import PayContext, is_internal_row, load, settle_internal, status_of
from gateway.storage.tables import payment_approvals, payments

CANCELLABLE = (PaymentState.PENDING_APPROVAL, PaymentState.ACCEPTED)  # not yet sent for clearing


def _locked_payment(ctx: PayContext, payment_id: str) -> tuple[PaymentRecord, AccountGrant]:
    """The payment, locked against concurrent changes; NOT_FOUND unless the operator may see it."""
    row = ctx.conn.execute(select(payments).where(payments.c.id == payment_id, payments.c.client_id == ctx.client)
                           .with_for_update()).first()
    grant = ctx.grants.get(row.debtor_account) if row is not None else None
    if grant is None:
        raise NotFound(f"unknown payment {payment_id}")
    return PaymentRecord.from_row(row), grant


def _refused(row: PaymentRecord, reason: ReasonCode, why: str) -> PaymentStatus:
    """The payment as it stands, with the reason the request about it was refused (nothing changed)."""
    return replace(status_of(row), reason=reason, reason_text=why)


def cancel(ctx: PayContext, payment_id: str, comment: str | None) -> PaymentStatus:
    """Cancel a payment not yet sent for clearing (its maker or an approver); release its funds."""
    row, grant = _locked_payment(ctx, payment_id)
    if row.maker != ctx.operator and Grant.APPROVE not in grant.grants:
        raise PermissionDenied(f"only the maker or an approver of {row.debtor_account} may cancel {payment_id}")
    state = PaymentState(row.state)
    if state == PaymentState.CANCELLED:
        return status_of(row)   # a retried cancel: already done
    if state not in CANCELLABLE:
        return _refused(row, ReasonCode.NOT_CANCELLABLE, f"payment is {state.value}; it can no longer be cancelled")
    ledger.release(ctx.conn, payment_id, ctx.now)
    why = f"cancelled by {ctx.operator}: {comment or 'no comment'}"
    # The reason it was held (a rule's, say) is no longer why it stands where it does: the cancellation is.
    transitions.move(ctx.uow, payment_id=payment_id, client=ctx.client, before=state,
                     after=PaymentState.CANCELLED, actor=ctx.actor, now=ctx.now, why=why,
                     reason=ReasonCode.CANCELLED_BY_CLIENT)
    return status_of(load(ctx.conn, payment_id))


def approve(ctx: PayContext, payment_id: str, digest: str, decision: str, comment: str | None) -> PaymentStatus:
    """Record one approver's decision on a payment waiting for approval (maker-checker, bound to the digest).

    Distinct approvers are enforced by the key of payment_approvals; one REJECT ends the payment."""
    row, grant = _locked_payment(ctx, payment_id)
    if Grant.APPROVE not in grant.grants:
        raise PermissionDenied(f"operator {ctx.operator} holds no 'approve' grant on {row.debtor_account}")
    internal = is_internal_row(row, ctx.own_cnaps_prefix)
    if internal:   # accounts before the client lock, the order every other path takes
        ledger.lock_accounts(ctx.conn, {row.debtor_account, row.creditor_account})
    if row.state != PaymentState.PENDING_APPROVAL:
        return status_of(row)   # decided already (or a retry of the decision that decided it)
    if row.maker == ctx.operator:
        return _refused(row, ReasonCode.APPROVAL_BY_MAKER, "the maker of a payment may not approve it")
    if digest != row.order_digest:
        return _refused(row, ReasonCode.APPROVAL_DIGEST_MISMATCH,
                        "OrderDigest does not match the payment as accepted")
    if grant.approve_limit is not None and row.amount > grant.approve_limit:
        return _refused(row, ReasonCode.LIMIT_SINGLE, f"over {ctx.operator}'s approval limit "
                                                      f"{grant.money(grant.approve_limit).text()}")
    already = ctx.conn.execute(select(payment_approvals.c.decision).where(
        payment_approvals.c.payment_id == payment_id, payment_approvals.c.approver == ctx.operator)).first()
    if already is not None:
        return status_of(row)   # the same approver again counts once
    ctx.conn.execute(insert(payment_approvals).values(payment_id=payment_id, approver=ctx.operator,
                                                      decision=decision, at=ctx.now, comment=comment))
    if decision == "REJECT":
        ledger.release(ctx.conn, payment_id, ctx.now)
        transitions.move(ctx.uow, payment_id=payment_id, client=ctx.client, before=PaymentState.PENDING_APPROVAL,
                         after=PaymentState.REJECTED, actor=ctx.actor, now=ctx.now,
                         reason=ReasonCode.APPROVAL_REJECTED,
                         why=f"rejected by {ctx.operator}: {comment or 'no comment'}")
        return status_of(load(ctx.conn, payment_id))
    given = row.approvals_given + 1
    ctx.conn.execute(update(payments).where(payments.c.id == payment_id).values(approvals_given=given))
    if given >= row.approvals_required:
        transitions.move(ctx.uow, payment_id=payment_id, client=ctx.client, before=PaymentState.PENDING_APPROVAL,
                         after=PaymentState.ACCEPTED, actor=ctx.actor, now=ctx.now,
                         why=f"approved ({given} of {row.approvals_required})",
                         reason_code=None, reason_text=None)   # a rule's hold reason is answered
        if internal and row.requested_date <= ctx.today:
            settle_internal(ctx.uow, load(ctx.conn, payment_id), ctx.now, ctx.zone, ctx.actor)
    return status_of(load(ctx.conn, payment_id))
