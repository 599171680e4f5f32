"""Running totals of payments per account and minute: what the fund-flow rules count over a window.

The rules count live payments over windows: a payee account's payments today (its daily cap), a debtor
account's payments in the last N minutes (velocity). Summing every payment of the window costs in
proportion to a busy account or payee; these totals make it a read of a few rows, exactly:

- every payment created is counted once, in the minute it was created, by debtor account (side "D") and
  by payee account (side "C"), at the end of its request's transaction (record()), in one sweep sorted
  by key: transactions take these rows' locks in the same order, so they cannot deadlock on them;
- never decremented: a payment that leaves the live states (rejected, cancelled, failed, returned) is
  taken out when read, found through a partial index of such payments, which are few. No state change
  touches these rows, so the clearing and approval paths take no lock on them;
- a window rarely starts on a whole minute: the live payments of the part-minute before its first whole
  minute are read from the payments table itself;
- the payments of the request being decided are not counted until record(): the caller adds its own
  (Pending). They were all created at the request's time, so they fall inside every window ending then,
  unless the window starts in that very minute, where the part-minute read finds them already.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Connection, bindparam, delete, func, select, text, true

from domain import rules as dr
from gateway.storage.tables import GONE_STATES, payment_flows, payments
from gateway.storage.totals import first_whole, unit_of, window_total, written_in
from gateway.storage.unit_of_work import UnitOfWork

_MINUTE = dt.timedelta(minutes=1)


def minute_of(at: dt.datetime) -> int:
    return unit_of(at, _MINUTE)


@dataclass
class Pending:
    """The payments of this request, accepted and not yet recorded: (side, account, currency) -> totals."""
    count: Counter = field(default_factory=Counter)
    amount: Counter = field(default_factory=Counter)

    def add(self, debtor: str, payee: str, currency: str, minor: int) -> None:
        for key in (("D", debtor, currency), ("C", payee, currency)):
            self.count[key] += 1
            self.amount[key] += minor

    def of_debtor(self, account: str) -> tuple[int, int]:
        keys = [k for k in self.count if k[0] == "D" and k[1] == account]
        return sum(self.count[k] for k in keys), sum(self.amount[k] for k in keys)

    def by_debtor(self) -> Counter:
        """Debtor account -> the amount of these payments from it."""
        totals: Counter = Counter()
        for (side, account, _), amount in self.amount.items():
            if side == "D":
                totals[account] += amount
        return totals

    def to_payee(self, account: str, currency: str) -> int:
        return self.amount[("C", account, currency)]


# The rules' longest window (a velocity window of 7 days) and a day more: older totals are never read again.
HORIZON = dt.timedelta(days=8)


def record(uow: UnitOfWork, client: str, at: dt.datetime, pending: Pending) -> None:
    """Count this request's payments (all created at `at`), in the request's transaction."""
    if not pending.count:
        return
    minute = minute_of(at)
    uow.along_rows(payment_flows, [   # with the request's last statement
        dict(side=side, client_id=client, account=account, minute=minute, currency=currency,
             payments=pending.count[key], amount=pending.amount[key])
        for key in sorted(pending.count) for side, account, currency in [key]], adding=("payments", "amount"))


def prune(conn: Connection, now: dt.datetime) -> int:
    """Drop the totals beyond every window (a daily job); returns how many rows went."""
    return conn.execute(delete(payment_flows).where(payment_flows.c.minute < minute_of(now - HORIZON))).rowcount


# ---- reading a window (scalar subqueries, folded into the rules' facts query in gateway/rule_facts.py) ----------

_f, _p = payment_flows.c, payments.c


_LIVE = written_in(dr.LIVE)
_GONE = text(GONE_STATES)   # spelt as the partial indexes' predicate, so that they apply


def _sum(column, label: str):
    return func.coalesce(func.sum(column), 0).label(label)


def _debtor_parts():
    counted = select(_sum(_f.payments, "n"), _sum(_f.amount, "a")).where(
        _f.side == "D", _f.client_id == bindparam("client"), _f.account == bindparam("debtor"),
        _f.minute >= bindparam("d_minute"))
    gone = select(func.count().label("n"), _sum(_p.amount, "a")).where(
        _p.debtor_account == bindparam("debtor"), _p.created_at >= bindparam("d_whole"), _GONE)
    part = select(func.count().label("n"), _sum(_p.amount, "a")).where(
        _p.debtor_account == bindparam("debtor"), _p.created_at >= bindparam("d_since"),
        _p.created_at < bindparam("d_whole"), _p.state.in_(_LIVE))
    return counted, gone, part


def debtor_totals():
    """Live payments from :debtor (of :client) created since :d_since, as a one-row FROM clause with columns
    `n` (how many) and `a` (their amount): counted whole minutes, minus the gone among them, plus the
    part-minute before the first whole one (totals.window_total's arithmetic, for two columns read in one
    pass)."""
    counted, gone, part = (q.subquery() for q in _debtor_parts())
    return select((counted.c.n - gone.c.n + part.c.n).label("n"), (counted.c.a - gone.c.a + part.c.a).label("a")
                  ).select_from(counted.join(gone, true()).join(part, true())).subquery("debtor_totals")


def payee_total():
    """The amount of live payments of :client to :account in :currency created since :c_since, as one scalar
    expression: the same three parts as debtor_totals()."""
    mine = (_p.client_id == bindparam("client")) & (_p.creditor_account == bindparam("account")) & (
        _p.currency == bindparam("currency"))
    counted = select(_sum(_f.amount, "a")).where(
        _f.side == "C", _f.client_id == bindparam("client"), _f.account == bindparam("account"),
        _f.minute >= bindparam("c_minute"), _f.currency == bindparam("currency"))
    gone = select(_sum(_p.amount, "a")).where(mine, _p.created_at >= bindparam("c_whole"), _GONE)
    part = select(_sum(_p.amount, "a")).where(mine, _p.created_at >= bindparam("c_since"),
                                          _p.created_at < bindparam("c_whole"), _p.state.in_(_LIVE))
    return window_total(counted, gone, part)


def window(prefix: str, since: dt.datetime, at: dt.datetime) -> tuple[dict, bool]:
    """The parameters that read a window from `since` (named with `prefix`), and whether this request's own
    payments (created `at`) must be added to what it reads: yes, unless they were created before the
    window's first whole minute, where the part-minute read finds them already."""
    whole = first_whole(since, _MINUTE)
    return {f"{prefix}_since": since, f"{prefix}_whole": whole, f"{prefix}_minute": minute_of(whole)}, at >= whole
