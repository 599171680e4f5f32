"""What happens to a payment after acceptance, by its owners' hand: cancellation and approval.

Clearing (ACCEPTED -> PROCESSING -> SETTLED | FAILED | UNKNOWN) comes with the clearing job.
"""
from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from domain.codes import Grant, PaymentState, ReasonCode
from domain.errors import NotFound, PermissionDenied
from domain.models import PaymentStatus
from gateway import ledger
from gateway.payments import PayContext, record, status_of
from gateway.storage.tables import payments

CANCELLABLE = (PaymentState.PENDING_APPROVAL, PaymentState.ACCEPTED)  # not yet sent for clearing


def _locked_payment(ctx: PayContext, payment_id: str):
    """The payment row, locked against concurrent changes; NOT_FOUND unless the operator may see it."""
    row = ctx.conn.execute(select(payments).where(payments.c.id == payment_id, payments.c.client_id == ctx.client)
                           .with_for_update()).first()
    grant = ctx.grants.get(row.debtor_account) if row is not None else None
    if grant is None:
        raise NotFound(f"unknown payment {payment_id}")
    return row, grant


def cancel(ctx: PayContext, payment_id: str, comment: str | None) -> PaymentStatus:
    """Cancel a payment not yet sent for clearing (its maker or an approver); release its funds."""
    row, grant = _locked_payment(ctx, payment_id)
    if row.maker != ctx.operator and Grant.APPROVE not in grant.grants:
        raise PermissionDenied(f"only the maker or an approver of {row.debtor_account} may cancel {payment_id}")
    state = PaymentState(row.state)
    if state == PaymentState.CANCELLED:
        return status_of(row)   # a retried cancel: already done
    if state not in CANCELLABLE:
        return replace(status_of(row), reason=ReasonCode.NOT_CANCELLABLE,
                       reason_text=f"payment is {state.value}; it can no longer be cancelled")
    ledger.release(ctx.conn, payment_id, ctx.now)
    record(ctx, payment_id, state, PaymentState.CANCELLED, f"cancelled: {comment or 'no comment'}"[:255])
    return status_of(ctx.conn.execute(select(payments).where(payments.c.id == payment_id)).one())


def approve(ctx: PayContext, payment_id: str) -> PaymentStatus:
    """Approval: no approval policy is configured yet, so no payment ever waits for one."""
    row, grant = _locked_payment(ctx, payment_id)
    if Grant.APPROVE not in grant.grants:
        raise PermissionDenied(f"operator {ctx.operator} holds no 'approve' grant on {row.debtor_account}")
    raise NotFound(f"payment {payment_id} is not waiting for approval (it is {row.state})")
