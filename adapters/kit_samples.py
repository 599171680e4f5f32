"""Data for the conformance kit (adapters/kit.py): domain objects <-> JSON for golden files, and the
sample batches, statements and status reports every adapter is run against.

The samples are the edge cases integrators get wrong: Chinese names at the maximum lengths, characters
outside GBK (𠮷 needs GB18030's four-byte form), separators that need escaping in CSV and XML, the
zero-decimal JPY, reversals, counterparties without a bank code, empty statements and reports.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from collections.abc import Mapping
from decimal import Decimal

from adapters.base import AccountFacts, PaymentFile, StatusReport
from domain.codes import PaymentState, ReasonCode
from domain.errors import PaymentRejected
from domain.models import (
    BankCode,
    Party,
    PaymentStatus,
    Statement,
    StatementEntry,
    SubmittedPayment,
    build_instruction,
)
from domain.money import Money

UTC = dt.UTC
DAY = dt.date(2026, 11, 25)
AT = dt.datetime(2026, 11, 25, 1, 30, tzinfo=UTC)        # 09:30 in Beijing: the same business day
OWN, SUPPLIER, ABROAD = "6222000000000001", "6222000000009001", "DE89370400440532013000"


# ---- domain <-> JSON -----------------------------------------------------------------------------------

def to_jsonable(obj: object) -> object:
    """Any domain object (dataclasses, Money, enums, dates, PaymentRejected) as plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if "set_by" not in f.metadata}   # what the gateway adds is no adapter's to pin
    if isinstance(obj, PaymentRejected):
        return {"reason": obj.reason.value, "detail": obj.detail}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, (dt.datetime, dt.date)):
        return obj.isoformat()
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return [to_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    raise TypeError(f"cannot write {type(obj).__name__} as golden JSON")


def from_jsonable(tp: object, data: object) -> object:
    """The inverse of to_jsonable for a type (Statement, AccountFacts, StatusReport, ...), by its hints."""
    if data is None:
        return None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return from_jsonable(next(a for a in args if a is not type(None)), data)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: from_jsonable(hints[f.name], data[f.name])
                     for f in dataclasses.fields(tp) if f.name in data})
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_jsonable(args[0], v) for v in data)
        return tuple(from_jsonable(a, v) for a, v in zip(args, data, strict=True))
    if origin in (Mapping, dict):
        return {k: from_jsonable(args[1], v) for k, v in data.items()}
    if tp is dt.datetime:
        return dt.datetime.fromisoformat(data)
    if tp is dt.date:
        return dt.date.fromisoformat(data)
    if isinstance(tp, type) and issubclass(tp, (Decimal, enum.Enum)):
        return tp(data)
    return data


def statement_from_json(data: Mapping) -> tuple[Statement, AccountFacts]:
    """A golden statement.json: {"statement": ..., "facts": ...}."""
    return from_jsonable(Statement, data["statement"]), from_jsonable(AccountFacts, data["facts"])


def status_report_from_json(data: Mapping) -> StatusReport:
    return from_jsonable(StatusReport, data)


# ---- payment batches (for adapters with a payment writer hook) -----------------------------------------

def _ins(ref: str, amount: str, currency: str, name: str, account: str, scheme: str, code: str = "", **kw):
    return SubmittedPayment(ref, where=f"kit/{ref}", instruction=build_instruction(
        client_ref=ref, debtor_account=OWN, amount=amount, currency=currency, creditor_name=name,
        creditor_account=account, bank_scheme=scheme, bank_code=code, bank_name=kw.pop("bank_name", None),
        purpose=kw.pop("purpose", "货款"), **kw))


def sample_batches() -> dict[str, PaymentFile]:
    """Batches every payment reader with a writer must read back exactly."""
    longest = _ins(
        "K" * 35, "99999999.99", "CNY", "上海浦东新区张江高科技园区某某信息技术股份有限公司" * 2 + "测" * 20,
        "31001234567890123456789012345678AB", "CNAPS", "102290012345", bank_name="中国工商银行" * 11 + "上海分行",
        purpose="支付二〇二六年十一月货款" * 5, remark="摘要" * 60 + "x" * 20,
        end_to_end_id="E2E-" + "9" * 31, requested_date=DAY, urgency="URGENT")
    return {
        "chinese-max-lengths": PaymentFile("KIT-EDGE-MAX", (longest,), AT),
        "mixed": PaymentFile("KIT-EDGE-MIXED", (
            _ins("JPY-1", "1000", "JPY", "株式会社 東京商事", "1234567", "BIC", "BOTKJPJTXXX", purpose="Invoice 42"),
            _ins("GB18030-1", "0.01", "CNY", "𠮷野家（上海）餐饮", SUPPLIER, "INTERNAL", remark="四字节字符 𠮷"),
            _ins("ESC-1", "12.30", "USD", 'Smith, "Jr" & Co <Ltd>; a|b', ABROAD, "BIC", "DEUTDEFF",
                 purpose="fees, \"quoted\" & <escaped>", remark="a,b;c|d\\e"),
        ), None),
    }


# ---- statements -----------------------------------------------------------------------------------------

def _statement(currency: str, opening: str, moves: list[tuple[str, str, Party | None, bool]], *,
               complete: bool = True, cursor_base: int = 0, narrative: str = "付款") -> Statement:
    """A consistent statement: each entry's balance follows from the opening and the entries before it."""
    balance = Money(Decimal(opening), currency)
    start, entries = balance, []
    for n, (direction, amount, party, reversal) in enumerate(moves, start=cursor_base + 1):
        money = Money(Decimal(amount), currency)
        balance = Money(balance.amount + (money.amount if direction == "CRDT" else -money.amount), currency)
        ref = f"REF-{n}" if party is not None else None
        entries.append(StatementEntry(
            entry_id=n, booked=AT + dt.timedelta(minutes=n), value_date=DAY, direction=direction, amount=money,
            balance_after=balance, counterparty=party, bank_ref=f"J{n:08d}", narrative=narrative,
            client_ref=ref, end_to_end_id=ref, reversal=reversal))
    return Statement(OWN, currency, start, DAY, balance, DAY, tuple(entries),
                     next_cursor=str(cursor_base + len(moves)), complete=complete)


def sample_statements() -> dict[str, tuple[Statement, AccountFacts]]:
    """Statements every statement writer must render (and, with a reader hook, read back balanced)."""
    cny = AccountFacts(OWN, "CNY", "上海某某科技有限公司", "DirectLink Demo Bank")
    internal, cnaps = BankCode("INTERNAL"), BankCode("CNAPS", "102290012345")
    long_name = "北京" * 35
    return {
        "basic": (_statement("CNY", "1000000.00", [
            ("DBIT", "12500.00", Party("供应商甲", SUPPLIER, internal), False),
            ("DBIT", "3800.50", Party("上海某某科技有限公司", "31001234567890", cnaps), False),
            ("CRDT", "3800.50", Party("上海某某科技有限公司", "31001234567890", cnaps), True),   # returned
            ("CRDT", "100.00", Party("ACME GmbH", ABROAD, BankCode("BIC", "DEUTDEFF")), False),
            ("DBIT", "1.00", None, False),                                                       # a bank fee
            ("CRDT", "5.00", Party("𠮷野家", "12345", None), False),                              # no bank code
        ]), cny),
        "empty": (_statement("CNY", "250.00", [], cursor_base=7), cny),
        "jpy": (_statement("JPY", "500000", [
            ("DBIT", "1000", Party("株式会社 東京商事", "1234567", BankCode("BIC", "BOTKJPJTXXX")), False),
            ("CRDT", "250", Party("株式会社 東京商事", "1234567", BankCode("BIC", "BOTKJPJTXXX")), True),
        ]), AccountFacts(OWN, "JPY", "東京支店", "DirectLink Demo Bank")),
        "max-lengths-incomplete-page": (_statement("CNY", "0.01", [
            ("CRDT", "999999999999.99", Party(long_name, "A" * 34, cnaps), False),
            ("DBIT", "999999999999.99", Party(long_name, "B" * 34, internal), False),
        ], complete=False, cursor_base=41, narrative="摘要" * 70), AccountFacts(OWN, "CNY", long_name, "银行" * 35)),
    }


# ---- status reports -------------------------------------------------------------------------------------

def _rich_status(state: PaymentState, n: int) -> PaymentStatus:
    """A status with every field a stored payment of this state has."""
    reasons = {PaymentState.REJECTED: ReasonCode.LIMIT_DAILY, PaymentState.FAILED: ReasonCode.CLEARING_FAILED,
               PaymentState.RETURNED: ReasonCode.CLEARING_RETURNED}
    reason = reasons.get(state)
    return PaymentStatus(
        client_ref=f"KIT-{n}", state=state, payment_id=f"P20261125{n:08d}", reason=reason,
        reason_text="超过日限额 (daily limit)" if reason else None,
        approvals_required=1 if state is PaymentState.PENDING_APPROVAL else 0, approvals_given=0,
        order_digest="A" * 43 + "=", updated=AT + dt.timedelta(seconds=n), amount=Money(Decimal("1250.00"), "CNY"),
        end_to_end_id=f"E2E-{n}", debtor_account=OWN)


def sample_status_reports() -> dict[str, StatusReport]:
    """Reports every status writer must render: every state (rich and bare), none at all."""
    rich = tuple(_rich_status(s, n) for n, s in enumerate(PaymentState, start=1))
    refused = PaymentStatus("KIT-REFUSED", PaymentState.REJECTED, reason=ReasonCode.AMOUNT_INVALID,
                            reason_text="/data/3: amount 'NaN' is not a plain decimal number")
    reports = {"every-state": StatusReport((*rich, refused), "KIT-BATCH-1", AT,
                                           {"KIT-REFUSED": (Decimal("12.00"), "CNY")}),
               "empty": StatusReport((), None, AT)}
    for state in PaymentState:       # the bare minimum: a ClientRef and a state, nothing else
        reports[f"bare-{state.value}"] = StatusReport((PaymentStatus(f"KIT-{state.value}", state),), None, AT)
    return reports
