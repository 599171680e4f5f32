"""The payment state machine (spec section 6): the only legal transitions, and which states are final.

    (new) -> PENDING_APPROVAL | ACCEPTED
    PENDING_APPROVAL -> ACCEPTED (enough approvals) | REJECTED (one REJECT) | CANCELLED
    ACCEPTED -> PROCESSING (sent for clearing) | SETTLED (inside this bank) | CANCELLED
    PROCESSING -> SETTLED | FAILED | UNKNOWN (no answer from clearing)
    UNKNOWN -> SETTLED | FAILED (only from a status query to clearing or a matching statement entry)
            -> PROCESSING (only after clearing said it never received it: sent again, same reference)
    SETTLED -> RETURNED (refunded by the creditor's bank)
"""
from __future__ import annotations

from domain.codes import PaymentState as S

TRANSITIONS: dict[S | None, frozenset[S]] = {
    None: frozenset({S.PENDING_APPROVAL, S.ACCEPTED}),
    S.PENDING_APPROVAL: frozenset({S.ACCEPTED, S.REJECTED, S.CANCELLED}),
    S.ACCEPTED: frozenset({S.PROCESSING, S.SETTLED, S.CANCELLED}),
    S.PROCESSING: frozenset({S.SETTLED, S.FAILED, S.UNKNOWN}),
    S.UNKNOWN: frozenset({S.SETTLED, S.FAILED, S.PROCESSING}),
    S.SETTLED: frozenset({S.RETURNED}),
    S.RETURNED: frozenset(),
    S.REJECTED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}

# States in which the payment's funds are held on the debtor account.
HOLDING = frozenset({S.PENDING_APPROVAL, S.ACCEPTED, S.PROCESSING, S.UNKNOWN})
# States that no longer count against a daily limit: the money did not and will not move.
RELEASED = frozenset({S.REJECTED, S.FAILED, S.CANCELLED})
FINAL = frozenset(s for s, nxt in TRANSITIONS.items() if s is not None and not nxt)


def allowed(before: S | None, after: S) -> bool:
    """True if a payment may move from `before` to `after`."""
    return after in TRANSITIONS[before]
