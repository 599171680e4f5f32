"""The payments tracker: the client's payments searched by state, creation date, amount, payee (Chinese,
pinyin or account), reference; one payment's whole history; the current search exported.

Only payments on accounts the operator may query (their `query` grants, as PaymentStatusQuery decides).
Pages are keyset pages, newest first: a page continues strictly after the (created_at, id) of the last row
of the one before, so page 100 costs what page 1 costs (no OFFSET) and a payment made meanwhile never
shifts or repeats a row. The payee is matched on domain.names' key, the one the fund-flow rules keep with
every payment (creditor_key): 华为技术, "Hua Wei" and "huawei" find the same payments.
"""
from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from openpyxl import Workbook
from sqlalchemy import Connection, and_, false, or_, select

from adapters.spreadsheet import csv_bytes
from domain.codes import Grant, PaymentState
from domain.money import Money, digits
from domain.names import account_key, key
from gateway import businessday, rule_facts
from gateway.directory import AccountGrant
from gateway.payments import status_of
from gateway.protocol import messages
from gateway.storage.tables import audit_log, payment_approvals, payment_events, payments, sim_clearing

PAGE = 50
EXPORT_MAX = 100_000   # rows in one export: a month of a busy client; a larger one asks for a narrower search


class BadSearch(ValueError):
    """A search field that cannot be read (the page says which)."""


@dataclass(frozen=True)
class Search:
    state: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    payee: str = ""
    reference: str = ""

    @classmethod
    def of(cls, params) -> Search:
        """From the page's query string; BadSearch names a field that cannot be read."""
        def text(name: str, size: int = 140) -> str:
            return (params.get(name) or "").strip()[:size]

        def date(name: str) -> dt.date | None:
            value = text(name, 10)
            try:
                return dt.date.fromisoformat(value) if value else None
            except ValueError:
                raise BadSearch(name) from None

        def amount(name: str) -> Decimal | None:
            value = text(name, 24).replace(",", "")
            try:
                number = Decimal(value) if value else None
            except InvalidOperation:
                raise BadSearch(name) from None
            # 15 integer digits at most, as the ledger's amounts (domain/money.py): in range of its integers.
            if number is not None and (not number.is_finite() or number < 0 or number >= Decimal("1e15")):
                raise BadSearch(name)
            return number

        state = text("state", 20)
        if state and state not in PaymentState.__members__:
            raise BadSearch("state")
        return cls(state, date("date_from"), date("date_to"), amount("amount_min"), amount("amount_max"),
                   text("payee", 140), text("reference", 35))

    def params(self) -> dict[str, str]:
        """The search as the query string that repeats it (the next page, the exports)."""
        values = {"state": self.state, "date_from": self.date_from, "date_to": self.date_to,
                  "amount_min": self.amount_min, "amount_max": self.amount_max, "payee": self.payee,
                  "reference": self.reference}
        return {k: str(v) for k, v in values.items() if v not in (None, "")}


@dataclass(frozen=True)
class Row:
    id: str
    client_ref: str
    created_at: dt.datetime
    debtor_account: str
    payee: str
    payee_account: str
    amount: Money
    state: str
    reason: str


def visible(grants: dict[str, AccountGrant]) -> dict[str, str]:
    """The accounts whose payments the operator may see, with their currency."""
    return {g.account: g.currency for g in grants.values() if Grant.QUERY in g.grants}


def _where(client: str, accounts: dict[str, str], search: Search, zone: dt.tzinfo) -> list:
    p = payments.c
    where = [p.client_id == client, p.debtor_account.in_(sorted(accounts))]
    if search.state:
        where.append(p.state == search.state)
    if search.date_from or search.date_to:
        start, end = businessday.bounds(search.date_from or dt.date(1970, 1, 1), search.date_to or dt.date.max, zone)
        where += [p.created_at >= start, p.created_at < end]
    # Amounts are stored in minor units of each payment's currency: the bound is scaled per currency.
    for bound, compare in ((search.amount_min, "ge"), (search.amount_max, "le")):
        if bound is not None:
            each = [and_(p.currency == ccy, getattr(p.amount, f"__{compare}__")(int(bound.scaleb(digits(ccy)))))
                    for ccy in sorted(set(accounts.values()))]
            where.append(or_(*each) if each else false())
    if search.payee:
        name, number = key(search.payee), account_key(search.payee)
        either = []
        if name:
            either.append(p.creditor_key.contains(name, autoescape=True))
        if number:
            either.append(p.creditor_account.contains(number, autoescape=True))
        where.append(or_(*either) if either else false())
    if search.reference:
        ref = search.reference
        where.append(or_(p.client_ref.startswith(ref, autoescape=True), p.id == ref, p.end_to_end_id == ref))
    return where


_COLUMNS = (payments.c.id, payments.c.client_ref, payments.c.created_at, payments.c.debtor_account,
            payments.c.creditor_name, payments.c.creditor_account, payments.c.amount, payments.c.currency,
            payments.c.state, payments.c.reason_code)


def _row(r) -> Row:
    return Row(r.id, r.client_ref, r.created_at, r.debtor_account, r.creditor_name, r.creditor_account,
               Money.from_minor(r.amount, r.currency), r.state, r.reason_code or "")


def cursor_of(row: Row) -> str:
    return f"{row.created_at.astimezone(dt.UTC).isoformat()}~{row.id}"


def _after(cursor: str):
    at, _, pid = cursor.partition("~")
    try:
        when = dt.datetime.fromisoformat(at)
    except ValueError:
        raise BadSearch("after") from None
    if when.tzinfo is None or not pid:
        raise BadSearch("after")
    p = payments.c
    return or_(p.created_at < when, and_(p.created_at == when, p.id < pid))


def page(conn: Connection, client: str, grants: dict[str, AccountGrant], search: Search, zone: dt.tzinfo,
         after: str = "", size: int = PAGE) -> tuple[list[Row], str]:
    """One page of the search, newest first, and the cursor of the next page ('' after the last)."""
    accounts = visible(grants)
    if not accounts:
        return [], ""
    where = _where(client, accounts, search, zone)
    if after:
        where.append(_after(after))
    found = conn.execute(select(*_COLUMNS).where(*where)
                         .order_by(payments.c.created_at.desc(), payments.c.id.desc()).limit(size + 1)).all()
    rows = [_row(r) for r in found[:size]]
    return rows, (cursor_of(rows[-1]) if len(found) > size else "")


def every(conn: Connection, client: str, grants: dict[str, AccountGrant], search: Search,
          zone: dt.tzinfo) -> list[Row]:
    """The whole search (up to EXPORT_MAX rows), for the exports."""
    accounts = visible(grants)
    if not accounts:
        return []
    found = conn.execute(select(*_COLUMNS).where(*_where(client, accounts, search, zone))
                         .order_by(payments.c.created_at.desc(), payments.c.id.desc()).limit(EXPORT_MAX)).all()
    return [_row(r) for r in found]


# ---- exports ----------------------------------------------------------------------------------------------

HEADER = ("PaymentId", "ClientRef", "Created", "DebtorAccount", "Payee", "PayeeAccount", "Amount", "Currency",
          "State", "Reason")


def _cells(row: Row, zone: dt.tzinfo) -> list[str]:
    return [row.id, row.client_ref, row.created_at.astimezone(zone).isoformat(timespec="seconds"),
            row.debtor_account, row.payee, row.payee_account, str(row.amount.amount), row.amount.currency,
            row.state, row.reason]


def export_csv(rows: list[Row], zone: dt.tzinfo) -> bytes:
    """Through the project's one CSV writer: no cell runs as a formula (a byte-order mark for Excel)."""
    return csv_bytes([HEADER, *(_cells(r, zone) for r in rows)], excel_bom=True)


def export_xlsx(rows: list[Row], zone: dt.tzinfo) -> bytes:
    """An XLSX workbook: amounts as numbers, every other cell as text. openpyxl stores a string starting with
    '=' as a formula, so every text cell is typed as a string explicitly, and one a spreadsheet would read as
    a formula once edited (= + - @) carries the quote prefix, as Excel marks text typed after an apostrophe:
    the value reads back exactly and never runs."""
    book = Workbook(write_only=False)
    sheet = book.active
    sheet.title = "Payments"
    sheet.append(list(HEADER))
    for n, row in enumerate(rows, start=2):
        for col, value in enumerate(_cells(row, zone), start=1):
            cell = sheet.cell(row=n, column=col)
            if col == 7:
                cell.value = Decimal(value)
                cell.number_format = "#,##0." + "0" * digits(row.amount.currency) if digits(row.amount.currency) else "#,##0"
                continue
            cell.value = value
            cell.data_type = "s"
            if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
                cell.quotePrefix = True
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# ---- one payment ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class History:
    payment: object                     # the payments row
    amount: Money
    events: list                        # payment_events rows: states with times, who, why
    approvals: list                     # payment_approvals rows: who, when, decision, comment
    rules: tuple                        # the rule hits (domain.rules.Hit)
    clearing: object | None             # the clearing answer and any return (sim_clearing row)
    audit: list                         # this payment's audit records (time, code, operator)
    report: str                         # its status report, as PaymentStatusQuery answers it


def history(conn: Connection, client: str, grants: dict[str, AccountGrant], payment_id: str,
            zone: dt.tzinfo) -> History | None:
    """A payment's whole history, or None if it is not one the operator may see."""
    from lxml import etree
    accounts = visible(grants)
    row = conn.execute(select(payments).where(payments.c.id == payment_id, payments.c.client_id == client)).first()
    if row is None or row.debtor_account not in accounts:
        return None
    events = conn.execute(select(payment_events).where(payment_events.c.payment_id == payment_id)
                          .order_by(payment_events.c.at, payment_events.c.id)).all()
    approved = conn.execute(select(payment_approvals).where(payment_approvals.c.payment_id == payment_id)
                            .order_by(payment_approvals.c.at)).all()
    clearing = conn.execute(select(sim_clearing).where(sim_clearing.c.payment_id == payment_id)).first()
    records = conn.execute(select(audit_log.c.at, audit_log.c.kind, audit_log.c.code, audit_log.c.operator_id,
                                  audit_log.c.from_state, audit_log.c.to_state, audit_log.c.detail)
                           .where(audit_log.c.payment_id == payment_id, audit_log.c.client_id == client)
                           .order_by(audit_log.c.id)).all()
    report = etree.tostring(messages.render_payment_report(None, [status_of(row)], zone), pretty_print=True,
                            encoding="unicode")
    return History(row, Money.from_minor(row.amount, row.currency), events, approved,
                   rule_facts.hits_from_json(row.rule_hits), clearing, records, report)

