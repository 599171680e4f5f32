"""How each subscription's deliveries are going, for `directlink notify list` and the metrics: what waits,
what is being retried, what was given up on, the last error and the next attempt. Read from the outbox
only; nothing here changes it."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, case, func, select

from gateway.notify.outbox import DEAD, PENDING
from gateway.storage.tables import outbox_events as outbox

HEALTHY, FAILING, DEAD_LETTERS, INACTIVE = "healthy", "failing", "dead letters", "inactive"


@dataclass(frozen=True)
class Health:
    pending: int = 0          # waiting for delivery, retries among them
    retrying: int = 0         # pending after at least one failed attempt
    dead: int = 0             # given up on: `notify dead`, `notify replay`
    next_attempt: dt.datetime | None = None
    last_error: str | None = None

    def state(self, active: bool) -> str:
        """Dead letters outweigh failing, failing outweighs healthy; a switched-off subscription says so."""
        if self.dead:
            return DEAD_LETTERS
        if self.retrying:
            return FAILING
        return HEALTHY if active else INACTIVE


def by_subscription(conn: Connection) -> dict[int, Health]:
    """Each subscription's health (subscriptions with nothing pending or dead are absent: healthy)."""
    open_ = outbox.c.state.in_((PENDING, DEAD))
    counts = conn.execute(
        select(outbox.c.subscription_id,
               func.sum(case((outbox.c.state == PENDING, 1), else_=0)).label("pending"),
               func.sum(case(((outbox.c.state == PENDING) & (outbox.c.attempts > 0), 1), else_=0)).label("retrying"),
               func.sum(case((outbox.c.state == DEAD, 1), else_=0)).label("dead"),
               func.min(case((outbox.c.state == PENDING, outbox.c.due_at))).label("next_attempt"))
        .where(open_).group_by(outbox.c.subscription_id)).all()
    # The newest error of each: the failed row due last is the one tried last.
    errors: dict[int, str] = {}
    for r in conn.execute(select(outbox.c.subscription_id, outbox.c.last_error)
                          .where(open_, outbox.c.last_error.is_not(None)).order_by(outbox.c.due_at)):
        errors[r.subscription_id] = r.last_error
    return {r.subscription_id: Health(int(r.pending or 0), int(r.retrying or 0), int(r.dead or 0), r.next_attempt,
                                      errors.get(r.subscription_id)) for r in counts}
