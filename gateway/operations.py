"""The operations of spec section 5: each takes the verified request's context and its operation element,
checks the operator's grants, calls the domain services and returns the answer element."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

from lxml import etree
from sqlalchemy import Connection

from adapters import registry
from domain.codes import Grant
from domain.errors import NotFound, PermissionDenied
from domain.models import AccountInfo, Balance
from domain.money import Money
from gateway import businessday, cash, documents, ledger, lifecycle, payments, receipts, statements
from gateway.config_cache import Config
from gateway.directory import AccountGrant
from gateway.protocol import messages
from gateway.protocol.signing import Signer
from gateway.protocol.xmlsafe import q, text
from gateway.settings import Settings
from gateway.storage.unit_of_work import UnitOfWork


@dataclass
class Context:
    """What every operation knows: who asks (from the verified signature), when, and the open transaction
    with its unit of work (what the operation writes through it goes out at the request's end)."""

    uow: UnitOfWork
    settings: Settings
    client: str
    operator: str
    now: dt.datetime
    config: Config   # grants, tiers, subscriptions, rules: as of the request's configuration version
    signer: Signer | None = None   # the gateway's key, for what an answer carries signed on its own (receipts)

    @property
    def conn(self) -> Connection:
        return self.uow.conn

    @cached_property
    def grants(self) -> dict[str, AccountGrant]:
        return self.config.grants(self.client, self.operator)

    def grant(self, account: str, right: Grant) -> AccountGrant:
        """The operator's grant on an account holding `right`; NOT_FOUND if it holds none at all on it."""
        grant = self.grants.get(account)
        if grant is None:
            raise NotFound(f"unknown account {account}")
        if right not in grant.grants:
            raise PermissionDenied(f"operator {self.operator} holds no '{right}' grant on {account}")
        return grant

    def pay_context(self) -> payments.PayContext:
        return payments.PayContext(self.uow, self.client, self.operator, self.grants, self.now,
                                   self.settings.zone, self.settings.own_cnaps_prefix, self.config)


def account_query(ctx: Context, el: etree._Element) -> etree._Element:
    infos = [AccountInfo(g.account, g.name, g.currency, tuple(x for x in Grant if x in g.grants),
                         g.money(g.single_limit), g.money(g.daily_limit)) for g in ctx.grants.values()]
    return messages.render_account_list(infos)


def balance_query(ctx: Context, el: etree._Element) -> etree._Element:
    wanted, as_of = messages.parse_balance_query(el)
    if wanted:
        chosen = [ctx.grant(a, Grant.QUERY) for a in dict.fromkeys(wanted)]
    else:
        chosen = [g for g in ctx.grants.values() if Grant.QUERY in g.grants]
    zone = ctx.settings.zone
    at = None
    if as_of is not None and as_of < ctx.now.astimezone(zone).date():
        at = businessday.bounds(as_of, as_of, zone)[1]
    if at is None:   # every account in one read
        now = ledger.balances(ctx.conn, [g.account for g in chosen])
        figures = [now[g.account] for g in chosen]
    else:
        figures = [ledger.balance(ctx.conn, g.account, at) for g in chosen]
    stamp = ctx.now if at is None else at - dt.timedelta(seconds=1)  # end of that day
    return messages.render_balance_report(
        [Balance(g.account, g.currency, Money.from_minor(booked, g.currency), Money.from_minor(available, g.currency),
                 stamp) for g, (booked, available) in zip(chosen, figures)], zone)


def _submit(ctx: Context, el: etree._Element, batch_id: str | None, parsed) -> etree._Element:
    """Accept the payments, or with dryRun decide each exactly as acceptance would and keep nothing."""
    if not messages.is_dry_run(el):
        results = payments.submit(ctx.pay_context(), batch_id, parsed)
        return messages.render_payment_report(batch_id, results, ctx.settings.zone)
    trial = ctx.uow.savepoint()
    try:
        results = payments.submit(ctx.pay_context(), batch_id, parsed)
    finally:
        trial.rollback()   # payments, holds, bookings, events, audit records of the trial: all gone
    # PaymentIds made up by the trial mean nothing; a retried ClientRef keeps the id it really has.
    real = payments.existing_ids(ctx.conn, [s.payment_id for s in results if s.payment_id])
    results = [s if s.payment_id in real else replace(s, payment_id=None) for s in results]
    return messages.render_payment_report(batch_id, results, ctx.settings.zone, dry_run=True)


def payment_order(ctx: Context, el: etree._Element) -> etree._Element:
    batch_id, parsed = messages.parse_payment_order(el)
    return _submit(ctx, el, batch_id, parsed)


def cash_position_query(ctx: Context, el: etree._Element) -> etree._Element:
    wanted, days, expected = messages.parse_cash_query(el)
    if wanted:
        chosen = [ctx.grant(a, Grant.QUERY) for a in dict.fromkeys(wanted)]
    else:
        chosen = [g for g in ctx.grants.values() if Grant.QUERY in g.grants]
    for item in expected:   # an item must name an account the answer covers, in its currency
        grant = next((g for g in chosen if g.account == item.account), None)
        if grant is None:
            raise NotFound(f"Expected item {item.ref or ''} names account {item.account}, not in the query")
    today = ctx.now.astimezone(ctx.settings.zone).date()
    positions = [cash.position(ctx.conn, g.account, g.currency, today, days, expected) for g in chosen]
    return messages.render_cash_position(positions, ctx.now, ctx.settings.zone)


def payment_status_query(ctx: Context, el: etree._Element) -> etree._Element:
    query = messages.parse_status_query(el)
    found = payments.statuses(ctx.pay_context(), query.client_refs, query.payment_ids,
                              query.date_from, query.date_to)
    if query.format != "directlink":
        return documents.render_statuses(query.format, found, ctx.settings.formats)
    return messages.render_payment_report(None, found, ctx.settings.zone)


def statement_query(ctx: Context, el: etree._Element) -> etree._Element:
    req = messages.parse_statement_query(el)
    ctx.grant(req.account, Grant.QUERY)
    if req.format != "directlink":
        registry.statement_writer(req.format, ctx.settings.formats)   # unknown: refused before any work
    st = statements.read(ctx.conn, req.account, after=req.after, date_from=req.date_from, date_to=req.date_to,
                         limit=req.limit, zone=ctx.settings.zone, now=ctx.now)
    if req.format != "directlink":
        return documents.render_statement(ctx.conn, req.format, st, ctx.settings, ctx.now)
    return messages.render_statement(st, ctx.settings.zone)


def receipt_query(ctx: Context, el: etree._Element) -> etree._Element:
    req = messages.parse_receipt_query(el)
    if ctx.signer is None:
        raise RuntimeError("receipts are signed with the gateway's key: the pipeline hands it over")
    if req.account is not None:
        ctx.grant(req.account, Grant.QUERY)
        page = receipts.by_account(ctx.conn, ctx.settings, ctx.client, req.account, after=req.after,
                                   date_from=req.date_from, date_to=req.date_to, limit=req.limit)
        found, cursor, complete = page.receipts, page.next_cursor, page.complete
    else:
        allowed = [g.account for g in ctx.grants.values() if Grant.QUERY in g.grants]
        found = (receipts.by_payment(ctx.conn, ctx.settings, ctx.client, allowed, list(req.payment_ids))
                 if req.payment_ids else
                 receipts.by_number(ctx.conn, ctx.settings, ctx.client, allowed, list(req.numbers)))
        cursor, complete = "", True
    items = []
    for receipt in found:
        issued = receipts.issue(receipt, ctx.signer, ctx.settings, req.form)
        items.append(messages.ReceiptItem(receipt.number, receipt.account, receipt.entry_id, receipt.direction,
                                          receipt.amount, issued.code, issued.xml, issued.pdf))
    return messages.render_receipt_list(items, cursor, complete)


def document_submit(ctx: Context, el: etree._Element) -> etree._Element:
    """An ERP payment file: its transactions follow exactly the PaymentOrder rules (spec section 5)."""
    payment_file, parsed = documents.read_payment_file(el.find(q("Document")), ctx.settings.formats)
    return _submit(ctx, el, payment_file.message_id[:35], parsed)


def payment_cancel(ctx: Context, el: etree._Element) -> etree._Element:
    status = lifecycle.cancel(ctx.pay_context(), text(el.find(q("PaymentId"))), text(el.find(q("Comment"))))
    return messages.render_payment_report(None, [status], ctx.settings.zone)


def payment_approval(ctx: Context, el: etree._Element) -> etree._Element:
    status = lifecycle.approve(ctx.pay_context(), text(el.find(q("PaymentId"))), text(el.find(q("OrderDigest"))),
                               text(el.find(q("Decision"))), text(el.find(q("Comment"))))
    return messages.render_payment_report(None, [status], ctx.settings.zone)


OPERATIONS: dict[str, Callable[[Context, etree._Element], etree._Element]] = {
    "AccountQuery": account_query,
    "BalanceQuery": balance_query,
    "PaymentOrder": payment_order,
    "PaymentStatusQuery": payment_status_query,
    "StatementQuery": statement_query,
    "DocumentSubmit": document_submit,
    "PaymentApproval": payment_approval,
    "PaymentCancel": payment_cancel,
    "CashPositionQuery": cash_position_query,
    "ReceiptQuery": receipt_query,
}

