"""The fund-flow rules stage: the facts each payment is judged on, read from the database.

The decisions themselves are pure (domain/rules.py); the configuration is gateway/rulebook.py. This module
reads what the rules need in the payment's transaction, after its accounts are locked, so two payments
racing each other see one another (a burst under a cap or a velocity limit cannot slip through in parallel).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Connection, String, bindparam, cast, exists, func, literal_column, select, union_all

from domain import rules as dr
from domain.models import PaymentInstruction
from domain.names import MIN_CONTAINED, account_key, name_matches
from domain.names import key as name_key
from gateway import flows
from gateway.storage.hot import HotRead
from gateway.storage.tables import block_lists, blocked_parties, counterparties, fund_rules, payments
from gateway.storage.totals import written_in

ALL_CLIENTS = ""            # block lists and rules with this client/account apply to all


@lru_cache(maxsize=4096)
def _parsed(rule: str, params: str) -> dr.RuleParams:
    """Stored parameters were validated when set; parsing the same text again gives the same (frozen) model."""
    return dr.parse_params(rule, json.loads(params))


# Block lists are read often and change rarely: each process keeps them indexed, checked against a cheap stamp
# (each load gives its list a new version), so every replica sees a new list on its next payment.
@dataclass(frozen=True)
class _BlockIndex:
    by_account: dict[str, list]
    by_key: dict[str, list]
    by_prefix: dict[str, list]  # names long enough to match inside a payee's name, by their first letters

    def names_in(self, payee: str) -> list:
        """Entries whose name designates the payee (domain.names.name_matches), found without trying every
        entry: the whole name by dict, longer names by a probe of their first letters at each position."""
        found = list(self.by_key.get(payee, ()))
        for i in range(len(payee) - MIN_CONTAINED + 1):
            for k, e in self.by_prefix.get(payee[i:i + MIN_CONTAINED], ()):
                if k != payee and name_matches(k, payee) and e not in found:
                    found.append(e)
        return found


_LISTS: dict[str, tuple[tuple, _BlockIndex]] = {}


# Statements are built once: building SQLAlchemy expressions per payment costs more than running them.
_IN_SCOPE = blocked_parties.c.client_id.in_((ALL_CLIENTS, bindparam("client")))
_BLOCK_STAMP = select(block_lists.c.client_id, block_lists.c.list_name, block_lists.c.version).where(
    block_lists.c.client_id.in_((ALL_CLIENTS, bindparam("client"))))
_BLOCK_ROWS = select(blocked_parties.c.list_name, blocked_parties.c.name, blocked_parties.c.name_key,
                     blocked_parties.c.account).where(_IN_SCOPE).order_by(blocked_parties.c.id)


def _block_index(conn: Connection, client: str, stamp: tuple | None = None) -> _BlockIndex:
    if stamp is None:
        stamp = tuple(sorted(tuple(r) for r in conn.execute(_BLOCK_STAMP, {"client": client})))
    cached = _LISTS.get(client)
    if cached is None or cached[0] != stamp:
        rows = conn.execute(_BLOCK_ROWS, {"client": client}).all() if stamp else []
        index = _BlockIndex({}, {}, {})
        for e in rows:
            if e.account:
                index.by_account.setdefault(e.account, []).append(e)
            if e.name_key:
                index.by_key.setdefault(e.name_key, []).append(e)
                if len(e.name_key) >= MIN_CONTAINED:
                    index.by_prefix.setdefault(e.name_key[:MIN_CONTAINED], []).append((e.name_key, e))
        cached = _LISTS[client] = (stamp, index)
    return cached[1]


def listed(conn: Connection, client: str, ins: PaymentInstruction, stamp: tuple | None = None) -> tuple[dr.Listed, ...]:
    """The block-list entries that designate this payment's payee, by account or by name."""
    index = _block_index(conn, client, stamp)
    account, payee = account_key(ins.creditor.account), name_key(ins.creditor.name)
    found = [dr.Listed(e.list_name, e.name, e.account, "account") for e in index.by_account.get(account, ())]
    found += [dr.Listed(e.list_name, e.name, e.account, "name") for e in index.names_in(payee)]
    return tuple(found)


_LIVE, _PAID = written_in(dr.LIVE), written_in(dr.PAID)
ANOMALY_HISTORY = 100       # the newest paid amounts the anomaly rule takes the median of

_p = payments.c
_TO_PAYEE = (_p.client_id == bindparam("client")) & (_p.creditor_account == bindparam("account"))
_IS_PAID = _p.state.in_(_PAID)
_SAME = (_p.state.in_(_LIVE) & (_p.amount == bindparam("amount")) & (_p.currency == bindparam("currency"))
         & (_p.client_ref != bindparam("ref")))
# Everything the rules may need, in one round trip, each part through its own index and none reading a whole
# window of payments:
# - the payee account's live payments today and the debtor account's in the velocity window, from the
#   running totals (gateway/flows.py);
# - the newest live payment of the same amount to the payee account within the duplicate window
#   (ix_payments_payee_amount);
# - was the payee account ever paid, is it registered (EXISTS: they stop at the first row);
# - the payee account's newest paid amounts (the anomaly rule).
# (The debtor account's available balance is the caller's: its account is locked, it keeps it exact.)
_EVER = payments.alias("ever")
_HISTORY = payments.alias("history")
_newest_same = select(func.max(_p.created_at)).where(_TO_PAYEE, _SAME, _p.created_at >= bindparam("since"))
_velocity = flows.debtor_totals()
# The newest paid amounts to the payee account, as one text ("1200,900,..."): the median is taken in Python,
# which neither database does the same way; folded in here to spare a round trip.
_amounts = (select(_HISTORY.c.amount).where(
    _HISTORY.c.client_id == bindparam("client"), _HISTORY.c.creditor_account == bindparam("account"),
    _HISTORY.c.state.in_(_PAID), _HISTORY.c.currency == bindparam("currency"))
    .order_by(_HISTORY.c.created_at.desc()).limit(ANOMALY_HISTORY).subquery())
_FACTS = select(
    flows.payee_total().label("today"),
    _newest_same.scalar_subquery().label("newest_same"),
    _velocity.c.n,
    _velocity.c.a.label("total"),
    select(func.aggregate_strings(cast(_amounts.c.amount, String), literal_column("','")))
    .scalar_subquery().label("amounts"),
    exists().where(_EVER.c.client_id == bindparam("client"), _EVER.c.creditor_account == bindparam("account"),
                   _EVER.c.state.in_(_PAID)).label("paid"),
    exists().where(counterparties.c.client_id == bindparam("client"),
                   counterparties.c.account == bindparam("account")).label("registered"),
).select_from(_velocity)
_FACTS_READ = HotRead(_FACTS)   # once per payment: run without SQLAlchemy's per-run work (storage/hot.py)
_DUPLICATE = (select(_p.id, _p.client_ref, _p.created_at).where(_TO_PAYEE, _SAME, _p.created_at == bindparam("at"))
              .order_by(_p.id).limit(1))
_NAME_PAID = (select(_p.creditor_account).where(_p.client_id == bindparam("client"), _p.creditor_key == bindparam("key"),
                                                 _IS_PAID).order_by(_p.created_at.desc()).limit(1))
_NAME_REGISTERED = select(counterparties.c.account).where(counterparties.c.client_id == bindparam("client"),
                                                           counterparties.c.name_key == bindparam("key")).limit(1)


def applicable(conn: Connection, client: str, ins: PaymentInstruction,
               config: tuple[dict[str, dr.RuleParams], tuple]) -> tuple[dict[str, dr.RuleParams], tuple[dr.Listed, ...]]:
    """The enabled rules that judge this payment (none: it passes without a read) and the block-list
    entries that name its payee, from the configuration of its debtor account."""
    rules, stamp = config
    found = listed(conn, client, ins, stamp) if stamp else ()   # no block list loaded: nothing to look up
    active = dict(rules)
    if found:
        active.setdefault("block_list", dr.BlockList())   # a loaded list applies without being declared
    return {name: p for name, p in active.items() if p.enabled}, found


def judge(conn: Connection, client: str, ins: PaymentInstruction, active: dict[str, dr.RuleParams],
          found: tuple[dr.Listed, ...], now: dt.datetime, zone: dt.tzinfo, day_start: dt.datetime,
          pending: flows.Pending, available: int) -> list[dr.Hit]:
    """The findings of the applicable rules, on the facts as the database has them now, with this request's
    payments accepted before this one (`pending`: written, not yet in the running totals) and the debtor
    account's available balance as the caller keeps it."""
    same = {"client": client, "account": ins.creditor.account, "currency": ins.amount.currency,
            "amount": ins.amount.minor, "ref": ins.client_ref}
    since = now - dt.timedelta(days=active["duplicate"].window_days if "duplicate" in active else 0)
    minutes = active["velocity"].window_minutes if "velocity" in active else 0
    payee_window, payee_pending = flows.window("c", day_start, now)
    debtor_window, debtor_pending = flows.window("d", now - dt.timedelta(minutes=minutes), now)
    row = _FACTS_READ.one(conn, {**same, "debtor": ins.debtor_account, "since": since, **payee_window,
                                 **debtor_window})
    today, count, total = int(row.today), int(row.n), int(row.total)
    if payee_pending:
        today += pending.to_payee(ins.creditor.account, ins.amount.currency)
    if debtor_pending:
        n, amount = pending.of_debtor(ins.debtor_account)
        count, total = count + n, total + amount
    facts = dict(known_account=bool(row.paid), registered=bool(row.registered), payee_today=today,
                 recent_count=count, recent_amount=total, available=available)
    if "duplicate" in active and row.newest_same is not None:
        earlier = conn.execute(_DUPLICATE, {**same, "at": row.newest_same}).first()
        if earlier is not None:
            facts["duplicate_of"] = dr.Earlier(earlier.id, earlier.client_ref, earlier.created_at)
    if "amount_anomaly" in active and row.amounts:
        facts["payee_amounts"] = tuple(int(a) for a in row.amounts.split(","))
    if "new_payee" in active and not (row.paid or row.registered):
        # A new account: was the payee's name paid or registered under another one? (the switched account)
        named = {"client": client, "key": name_key(ins.creditor.name)}
        facts["name_accounts"] = tuple(conn.execute(_NAME_PAID, named).scalars().all()
                                       + conn.execute(_NAME_REGISTERED, named).scalars().all())
    return dr.evaluate(active, dr.Facts(instruction=ins, now=now.astimezone(zone), listed=found, **facts))


# The rules of the account and the versions of the block lists, in one round trip.
_CONFIGURATION = union_all(
    select(literal_column("'rule'"), fund_rules.c.account, fund_rules.c.rule, fund_rules.c.params).where(
        fund_rules.c.client_id == bindparam("client"), fund_rules.c.account.in_((ALL_CLIENTS, bindparam("account")))),
    select(literal_column("'list'"), block_lists.c.client_id, block_lists.c.list_name, block_lists.c.version).where(
        block_lists.c.client_id.in_((ALL_CLIENTS, bindparam("client")))))


def configuration(conn: Connection, client: str, account: str) -> tuple[dict[str, dr.RuleParams], tuple]:
    """The rules that apply to an account (its own over the client's) and the stamp of the block lists:
    read once per account and batch (a batch's payments are judged under one configuration)."""
    rows = conn.execute(_CONFIGURATION, {"client": client, "account": account}).all()
    chosen: dict[str, dr.RuleParams] = {}
    # Sorted, the client-wide ("") rows come first and the account's own rows override them.
    for _, _account, rule, params in sorted(r for r in rows if r[0] == "rule"):
        chosen[rule] = _parsed(rule, params)
    return chosen, tuple(sorted(tuple(r[1:]) for r in rows if r[0] == "list"))


def hits_json(hits: list[dr.Hit]) -> str | None:
    return json.dumps([h.as_dict() for h in hits], ensure_ascii=False) if hits else None


def hits_from_json(text: str | None) -> tuple[dr.Hit, ...]:
    return tuple(dr.Hit.from_dict(d) for d in json.loads(text)) if text else ()


def summary(hits: list[dr.Hit] | tuple[dr.Hit, ...]) -> str:
    """One line naming every rule that fired and why (audit records)."""
    return "; ".join(f"{h.code.value}: {h.detail}" for h in hits)


def reason_text(hits: list[dr.Hit] | tuple[dr.Hit, ...]) -> str:
    """The Reason text beside the first hit's code: why, for one rule; every rule named, for several."""
    return hits[0].detail if len(hits) == 1 else summary(hits)
