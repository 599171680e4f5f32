"""Accepting payments: idempotency by ClientRef, grants and limits, holds, and immediate settlement
of payments between accounts of this bank. Runs inside the request's transaction (accept means commit).
"""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, Row, bindparam, insert, select

from domain.codes import Grant, PaymentState, ReasonCode
from domain.errors import NotFound, PaymentRejected
from domain.models import PaymentInstruction, PaymentStatus, SubmittedPayment, is_own_bank
from domain.money import Money
from domain.names import key as name_key
from domain.rules import RuleRejected
from gateway import (
    audit,
    businessday,
    config_cache,
    directory,
    flows,
    ledger,
    maker_totals,
    rule_facts,
    transitions,
)
from gateway.acceptance import Facts, decide, retried
from gateway.notify import outbox
from gateway.payment_record import PaymentRecord
from gateway.storage.tables import accounts, payments
from gateway.storage.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class PayContext:
    uow: UnitOfWork   # the request's: its transaction, and what goes out at its end
    client: str
    operator: str
    grants: dict[str, directory.AccountGrant]
    now: dt.datetime
    zone: dt.tzinfo
    own_cnaps_prefix: str
    config: config_cache.Config

    @property
    def conn(self) -> Connection:
        return self.uow.conn

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


def status_of(row: PaymentRecord | Row) -> PaymentStatus:
    """A stored payment as the PaymentStatus the ERP sees: its record, or a row of `select(payments)` where
    only its status is wanted (statuses() answers up to 5,000 at once, not worth a record each)."""
    return PaymentStatus(
        client_ref=row.client_ref, payment_id=row.id, state=PaymentState(row.state),
        reason=ReasonCode(row.reason_code) if row.reason_code else None, reason_text=row.reason_text,
        approvals_required=row.approvals_required, approvals_given=row.approvals_given,
        order_digest=row.order_digest, updated=row.updated_at, amount=Money.from_minor(row.amount, row.currency),
        end_to_end_id=row.end_to_end_id, debtor_account=row.debtor_account, rules=rule_facts.hits_from_json(row.rule_hits),
        payment_info_id=row.payment_info_id)


def rejected(client_ref: str, problem: PaymentRejected) -> PaymentStatus:
    return PaymentStatus(client_ref=client_ref, state=PaymentState.REJECTED, reason=problem.reason,
                         reason_text=problem.detail, rules=getattr(problem, "hits", ()))


def is_internal(ctx: PayContext, instruction: PaymentInstruction) -> bool:
    """A payment to an account of this bank: INTERNAL scheme or our own CNAPS prefix."""
    bank = instruction.creditor.bank
    return is_own_bank(bank.scheme, bank.code, ctx.own_cnaps_prefix)


def submit(ctx: PayContext, batch_id: str | None, parsed: list[SubmittedPayment]) -> list[PaymentStatus]:
    """Accept each payment on its own; return one status per payment, in order.

    Set-wise: every check that can refuse a payment runs before anything of it is written, on facts read
    once for the batch under the accounts' locks and kept up to date as its payments are accepted (funds,
    the daily totals). A refused payment so leaves no trace without a savepoint of its own, and the accepted
    ones are written together, one statement a kind (_Batch.flush).

    The ClientRefs are looked up before the accounts' locks are taken, so that the locks are held for a
    statement less. A concurrent request that committed one of them after the lookup (a twin paying from
    the same account commits while this one waits for the lock) makes the insert fail on the unique key
    (IntegrityError): the request's transaction is then run again (gateway/pipeline.py), and the payment
    is answered as the retry it has become."""
    batch = _Batch(ctx, batch_id, parsed)
    for p in parsed:
        batch.add(p)
    batch.flush(last=True)
    maker_totals.record(ctx.uow, ctx.client, ctx.operator, ctx.now, batch.pending.by_debtor())
    flows.record(ctx.uow, ctx.client, ctx.now, batch.pending)   # last: its row locks are taken in one sorted sweep
    return [status_of(r) if not isinstance(r, PaymentStatus) else r for r in batch.results]


# Built once: these run for every batch (building a statement costs about as much as running it on SQLite).
_p = payments.c
_BY_REFS = select(payments).where(_p.client_id == bindparam("client"),
                                  _p.client_ref.in_(bindparam("refs", expanding=True)))
_INSERT = insert(payments)
_LOAD = select(payments).where(_p.id == bindparam("payment_id"))
_REFS_A_READ = 500   # ClientRefs looked up per statement (SQLite allows a few thousand parameters at most)
PAYEE_RULES = {"duplicate", "payee_daily_cap"}   # the rules that count a payee's payments from every account


class _Batch:
    """One request's payments: decided one by one in order, on facts kept in memory, written together."""

    def __init__(self, ctx: PayContext, batch_id: str | None, parsed: list[SubmittedPayment]):
        self.ctx, self.batch_id = ctx, batch_id
        self.results: list[PaymentStatus | PaymentRecord] = []   # a payment's record: its status once written
        instructions = [p.instruction for p in parsed if p.instruction]
        debtors = sorted({i.debtor_account for i in instructions})
        # The configuration first, before any lock: the locks are then held for less time.
        self.tiers = ctx.config.approval_tiers(ctx.client) if instructions else None
        self.subscribed = ctx.config.subscriptions(ctx.client) if instructions else ()
        self.rules = {a: ctx.config.rules(ctx.client, a) for a in debtors if a in ctx.grants}
        creditors = {i.creditor.account for i in instructions if is_internal(ctx, i)}
        # Whom a transfer within the bank credits, and who subscribed to hear of it (notify.outbox.posted).
        self.owned = ctx.config.owners(set(debtors) | creditors) if creditors else None
        # Payments stored under these ClientRefs. Read before the locks: a twin that commits one of them after
        # this read makes our insert fail on the unique key, and the request runs again (see submit).
        refs = sorted({i.client_ref for i in instructions})
        self.known = {r.client_ref: PaymentRecord.from_row(r) for k in range(0, len(refs), _REFS_A_READ)
                      for r in ctx.conn.execute(_BY_REFS, {"client": ctx.client,
                                                           "refs": refs[k:k + _REFS_A_READ]})}
        # Every account the batch may touch, locked in one sorted sweep before any fact is read (no deadlocks).
        self.accounts = ledger.lock_accounts(ctx.conn, set(debtors) | creditors)
        self.available = {n: a.booked - a.held for n, a in self.accounts.items()}
        self.used_today: dict[str, int] = {}     # debtor account -> the maker's payments today, this batch's too
        # The maker's use of a daily limit is read under the debtor account's lock (_used_today). Where
        # the batch pays from one account with a daily limit, the common case, it is read in the statement
        # that takes the client lock, which every request takes anyway: a round trip less under the locks.
        limited = {i.debtor_account for i in instructions if i.debtor_account in self.accounts
                   and (grant := ctx.grants.get(i.debtor_account)) is not None and grant.daily_limit is not None}
        if len(limited) == 1:
            account, = limited
            read = maker_totals.used_today_read(ctx.client, ctx.operator, account, ctx.day_start())
            self.used_today[account] = ctx.uow.lock_client_reading(ctx.client, *read)
        # Rules that count a payee's payments over all of the client's accounts (a duplicate, the payee's
        # daily cap) must see a concurrent payment from another account: they read under the client lock,
        # which every writer of the client's payments holds from before its first write to its commit
        # (flush). It is taken here instead of at the first append (above, with the daily limit's use).
        if any(p.enabled and name in PAYEE_RULES for active, _ in self.rules.values() for name, p in active.items()):
            ctx.uow.lock_client(ctx.client)
        # The payments go in with the request's last statement (UnitOfWork.along_rows) unless something in the
        # request reads them back before: the fund-flow rules, which count the payments before each from the
        # database (after the batch's last flush none does), or a subscribed client's numbered events, whose
        # rows refer to them.
        self.later = not self.subscribed and not any(stamp or any(p.enabled for p in configured.values())
                                                     for configured, stamp in self.rules.values())
        # Accepted, not yet written:
        self.rows: list[dict] = []
        self.created: list[tuple[PaymentRecord, str]] = []
        self.holds: list[tuple[str, str, int]] = []
        self.to_settle: list[PaymentRecord] = []
        self.pending = flows.Pending()           # every payment accepted, for the running totals

    def add(self, p: SubmittedPayment) -> None:
        if p.problem is not None:
            self.results.append(rejected(p.client_ref, p.problem))
            return
        try:
            self.results.append(self._accept(p))
        except PaymentRejected as problem:
            if isinstance(problem, RuleRejected):   # the decision is audited though nothing was stored
                audit.append(self.ctx.uow, chain=self.ctx.client, at=self.ctx.now, kind="rule",
                             code=problem.reason.value, client_id=self.ctx.client, operator_id=self.ctx.operator,
                             to_state=PaymentState.REJECTED, detail=f"ClientRef {p.client_ref}: {problem.detail}")
            self.results.append(rejected(p.client_ref, problem))

    def _accept(self, p: SubmittedPayment) -> PaymentRecord:
        ctx, ins = self.ctx, p.instruction
        stored = self.known.get(ins.client_ref)
        if stored is not None:
            # Its status once the batch is written (a twin in the same batch may settle meanwhile).
            return retried(stored, p, visible=stored.debtor_account in ctx.grants)
        internal = is_internal(ctx, ins)
        # A debtor account without a grant may not exist, and so have no balance: decide refuses the payment
        # before it asks (0 stands in).
        decision = decide(ins, Facts(
            operator=ctx.operator, grant=ctx.grants.get(ins.debtor_account), internal=internal,
            creditor=self.accounts.get(ins.creditor.account) if internal else None, tiers=self.tiers,
            available=self.available.get(ins.debtor_account, 0), judge=lambda: self._judge(ins),
            used_today=lambda: self._used_today(ins.debtor_account)))
        # Accepted: nothing below can refuse it.
        hits, held = decision.hits, decision.held
        row = PaymentRecord(
            id=new_payment_id(ctx.today), client_id=ctx.client, client_ref=ins.client_ref, end_to_end_id=ins.e2e,
            batch_id=self.batch_id, debtor_account=ins.debtor_account, amount=ins.amount.minor,
            currency=ins.amount.currency, creditor_name=ins.creditor.name,
            creditor_account=ins.creditor.account, creditor_bank_scheme=ins.creditor.bank.scheme,
            creditor_bank_code=ins.creditor.bank.code, creditor_bank_name=ins.creditor.bank_name,
            purpose=ins.purpose, remark=ins.remark, requested_date=ins.requested_date or ctx.today,
            urgency=ins.urgency, state=decision.state.value, order_digest=p.order_digest,
            approvals_required=decision.approvals_required, approvals_given=0, content_hash=ins.content_hash(),
            maker=ctx.operator, created_at=ctx.now, updated_at=ctx.now, sent_at=None, attempts=0,
            creditor_key=name_key(ins.creditor.name), rule_hits=rule_facts.hits_json(hits),
            reason_code=hits[0].code.value if held else None,
            reason_text=rule_facts.reason_text(hits)[:255] if held else None, payment_info_id=p.payment_info_id)
        self.rows.append(row.values())   # the record stays the payment as stored: nothing reads it back
        self.created.append((row, decision.why))
        self.holds.append((row.id, ins.debtor_account, ins.amount.minor))
        self.known[ins.client_ref] = row
        self.pending.add(ins.debtor_account, ins.creditor.account, ins.amount.currency, ins.amount.minor)
        self.available[ins.debtor_account] -= ins.amount.minor
        if ins.debtor_account in self.used_today:
            self.used_today[ins.debtor_account] += ins.amount.minor
        if internal and decision.state == PaymentState.ACCEPTED and row.requested_date <= ctx.today:
            # Settled now, before the next payment is decided: that one may spend what this one credits,
            # and the holds written with it must fit the balances as booked (ledger.place_holds checks).
            # The settlement releases the hold and books both legs: the debtor's available stays as the
            # hold left it, the creditor's grows.
            self.to_settle.append(row)
            self.available[ins.creditor.account] += ins.amount.minor
            self.flush()
        return row

    def _judge(self, ins: PaymentInstruction) -> list:
        ctx = self.ctx
        active, found = rule_facts.applicable(ctx.conn, ctx.client, ins, self.rules[ins.debtor_account])
        if not active:
            return []
        # The rules read the payments before this one from the database (a burst, a duplicate, the payee's
        # total today): they must be written first.
        self.flush()
        return rule_facts.judge(ctx.conn, ctx.client, ins, active, found, ctx.now, ctx.zone, ctx.day_start(), self.pending,
                           self.available[ins.debtor_account])

    def _used_today(self, account: str) -> int:
        # Read under the debtor account's lock, so parallel payments see each other's amounts; read once
        # per account, before any payment of the batch from it is accepted, and kept up to date after.
        if account not in self.used_today:
            ctx = self.ctx
            self.used_today[account] = maker_totals.used_today(ctx.conn, ctx.client, ctx.operator, account,
                                                               ctx.day_start())
        return self.used_today[account]

    def flush(self, last: bool = False) -> None:
        """Write the payments accepted since the last flush: the rows, their holds, the postings of those paid
        within the bank (stored SETTLED straight away), then their creation and settlement (events, audit
        records, notifications). `last`: no payment of the batch is judged after this one."""
        if not self.rows:
            return
        ctx = self.ctx
        ctx.uow.lock_client(ctx.client)   # before the first write of a payment (see __init__)
        settled = {r.id for r in self.to_settle}
        # Stored SETTLED; the row in memory stays ACCEPTED until its creation (as ACCEPTED) is recorded below.
        for values in self.rows:
            if values["id"] in settled:
                values["state"] = PaymentState.SETTLED.value
        if self.later or (last and not self.subscribed):
            ctx.uow.along_rows(payments, self.rows)
        else:
            ctx.conn.execute(_INSERT, self.rows)
        # A payment settled here has its hold released by the settlement in this very transaction.
        ledger.place_holds(ctx.uow, self.holds, ctx.now, released=frozenset(settled))
        for row in self.to_settle:
            _post_internal(ctx.uow, row, ctx.now, ctx.zone, self.accounts[row.debtor_account].name, self.owned)
        transitions.created(ctx.uow, client=ctx.client, actor=ctx.actor, now=ctx.now, new=self.created,
                            subscribed=self.subscribed, settled=self.to_settle)
        for row in self.to_settle:
            row.state = PaymentState.SETTLED.value   # as stored
        self.rows, self.created, self.holds, self.to_settle = [], [], [], []


def existing_ids(conn: Connection, ids: list[str]) -> set[str]:
    return set(conn.execute(select(payments.c.id).where(payments.c.id.in_(ids))).scalars()) if ids else set()


def load(conn: Connection, payment_id: str) -> PaymentRecord:
    return PaymentRecord.from_row(conn.execute(_LOAD, {"payment_id": payment_id}).one())


def settle_internal(uow: UnitOfWork, row: PaymentRecord, now: dt.datetime, zone: dt.tzinfo, actor: str) -> None:
    """Book an accepted transfer between two accounts of this bank: release the hold, post both legs.

    The caller holds the two accounts' locks already (taken before any other lock: no deadlocks)."""
    debtor_name = uow.conn.execute(select(accounts.c.name).where(accounts.c.number == row.debtor_account)).scalar()
    ledger.release(uow.conn, row.id, now)
    _post_internal(uow, row, now, zone, debtor_name)
    transitions.move(uow, payment_id=row.id, client=row.client_id, before=PaymentState.ACCEPTED,
                     after=PaymentState.SETTLED, actor=actor, why=transitions.SETTLED_WITHIN_BANK, now=now)


def _post_internal(uow: UnitOfWork, row: PaymentRecord, now: dt.datetime, zone: dt.tzinfo, debtor_name: str | None,
                   owned: list | None = None) -> None:
    """The two legs of a transfer within the bank, and the payee's notification; the caller holds both
    accounts' locks (`owned`: see notify.outbox.posted)."""
    booked = ledger.post(uow, row.id, [
        ledger.Leg(row.debtor_account, ledger.DBIT, row.amount, row.purpose,
                   counterparty_name=row.creditor_name, counterparty_account=row.creditor_account,
                   counterparty_scheme=row.creditor_bank_scheme, counterparty_code=row.creditor_bank_code,
                   client_ref=row.client_ref, end_to_end_id=row.end_to_end_id, payment_id=row.id),
        # The payee sees the EndToEndId (it is meant to travel) but not the payer's own ClientRef.
        ledger.Leg(row.creditor_account, ledger.CRDT, row.amount, row.purpose,
                   counterparty_name=(debtor_name or "")[:70], counterparty_account=row.debtor_account,
                   counterparty_scheme="INTERNAL", counterparty_code="", end_to_end_id=row.end_to_end_id,
                   payment_id=row.id),
    ], now, now.astimezone(zone).date(), locked=True)
    outbox.posted(uow.conn, booked, now, owned)


def is_internal_row(row: PaymentRecord | Row, own_cnaps_prefix: str) -> bool:
    """The same test as is_internal, on a stored payment (or a row of `select(payments)`: clearing's scan)."""
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
