"""What Kingdee reads back: payment statuses (kingdee.status.json, the bill's `fbankpaystate`) and
statements (kingdee.statement.json, `bei_transdetail` 交易明细 lines).

Both are UTF-8 JSON with amounts as decimal text (never JSON numbers, which ERPs read as floats) and
times as Beijing wall time, the way Kingdee stores them. Output is deterministic: the same input
gives the same bytes, so ERP-side de-duplication by content works.
"""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from adapters.base import AccountFacts, StatusReport
from adapters.kingdee.bills import BEIJING, THIS_BANK
from domain.codes import PaymentState as S
from domain.models import BankCode, Party, PaymentStatus, Statement, StatementEntry
from domain.money import Money

STATUS_FORM, STATEMENT_FORM = "bei_bankpaybill", "bei_transdetail"

# PaymentState -> Kingdee fbankpaystate (code, label). Kingdee has fewer states than the gateway, so
# fstate carries the gateway's own state too; RETURNED is a failure with fisrefund (退票) set.
BANK_PAY_STATE: dict[S, tuple[str, str]] = {
    S.PENDING_APPROVAL: ("OS", "银企处理中"),    # waiting for approvers at the direct-link layer
    S.ACCEPTED: ("BP", "银行处理中"),
    S.PROCESSING: ("BP", "银行处理中"),
    S.UNKNOWN: ("NC", "交易未确认"),            # query again, never pay again under a new reference
    S.SETTLED: ("TS", "交易成功"),
    S.RETURNED: ("TF", "交易失败"),
    S.REJECTED: ("TF", "交易失败"),
    S.FAILED: ("TF", "交易失败"),
    S.CANCELLED: ("OZ", "银企处理中止"),
}


def beijing(moment: dt.datetime) -> str:
    """Kingdee's time text: Beijing wall time, no offset (an aware UTC time from the gateway)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _dump(doc: dict) -> bytes:
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


# ---- statuses ------------------------------------------------------------------------------------------

def _status(s: PaymentStatus, report: StatusReport) -> dict:
    code, label = BANK_PAY_STATE[s.state]
    amount, currency = "", ""              # a payment refused before it existed has no stored amount
    if s.amount is not None:
        amount, currency = s.amount.text(), s.amount.currency
    elif s.client_ref in report.amounts:
        value, currency = report.amounts[s.client_ref]
        amount = format(value, "f")
    return {
        "fpayunique": s.client_ref,
        "fbizrefno": s.end_to_end_id or "",
        "fstatementrefno": s.payment_id or "",       # the gateway's PaymentId: quote it in queries
        "fbankpaystate": code,
        "fbankpaystatename": label,
        "fstate": s.state.value,
        "fisrefund": s.state is S.RETURNED,
        "fbankreturncode": s.reason.value if s.reason else "",
        "fbankreturnmsg": s.reason_text or "",
        "fpayeracct": s.debtor_account or "",
        "famount": amount,
        "fcurrency": currency,
        "fapprovalsrequired": s.approvals_required,
        "fapprovalsgiven": s.approvals_given,
        "forderdigest": s.order_digest or "",
        "freturntime": beijing(s.updated) if s.updated else "",
    }


def write_status(report: StatusReport) -> bytes:
    """kingdee.status.json: one entry per PaymentStatus, in the report's order."""
    return _dump({
        "formid": STATUS_FORM,
        "fbatchseqid": report.original_message_id or "",
        "fcreatetime": beijing(report.created),
        "ftotalcount": len(report.statuses),
        "data": [_status(s, report) for s in report.statuses],
    })


# ---- statements ----------------------------------------------------------------------------------------

def _bank_fields(party: Party | None) -> tuple[str, str]:
    """(foppbanknumber, foppswiftcode): the same convention as the payment bill's bank fields."""
    bank = party.bank if party else None
    if bank is None:
        return "", ""
    if bank.scheme == "INTERNAL":
        return THIS_BANK, ""
    return (bank.code, "") if bank.scheme == "CNAPS" else ("", bank.code)


def _line(e: StatementEntry, zero: str) -> dict:
    number, swift = _bank_fields(e.counterparty)
    debit = e.direction == "DBIT"
    return {
        "fdetailid": f"{e.entry_id:012d}",             # 明细流水号: stable and increasing, Kingdee's de-dup key
        "fbizdate": e.value_date.isoformat(),
        "ftradetime": beijing(e.booked),
        "fdebitamount": e.amount.text() if debit else zero,    # 借方 (支出), paid out
        "fcreditamount": zero if debit else e.amount.text(),   # 贷方 (收入), received
        "fbalance": e.balance_after.text(),
        "foppname": (e.counterparty.name or "") if e.counterparty else "",
        "foppacct": (e.counterparty.account or "") if e.counterparty else "",
        "foppbanknumber": number,
        "foppswiftcode": swift,
        "fpayunique": e.client_ref or "",
        "fbizrefno": e.end_to_end_id or "",
        "fiskdretflag": e.client_ref is not None,      # 是否银企付款: the line comes from a direct-link payment
        "funiqueseq": e.bank_ref,
        "fdescription": e.narrative,
        "fisrefund": e.reversal,                       # 冲正/退票: money coming back, not a new receipt
    }


def write_statement(st: Statement, facts: AccountFacts) -> bytes:
    """kingdee.statement.json: a bei_transdetail page with its opening and closing balances."""
    zero = Money.from_minor(0, st.currency).text()
    debits = sum((e.amount.amount for e in st.entries if e.direction == "DBIT"), Decimal(0))
    credits = sum((e.amount.amount for e in st.entries if e.direction != "DBIT"), Decimal(0))
    exponent = Money.from_minor(0, st.currency).amount      # 0.00 for CNY, 0 for JPY
    return _dump({
        "formid": STATEMENT_FORM,
        "faccountbank": st.account,
        "faccountname": facts.owner_name,
        "fbankname": facts.bank_name,
        "fswiftcode": facts.bank_bic,
        "fcurrency": st.currency,
        "fopeningdate": st.opening_date.isoformat(),
        "fopeningbalance": st.opening.text(),
        "fclosingdate": st.closing_date.isoformat(),
        "fclosingbalance": st.closing.text(),
        "fdebittotal": format(debits.quantize(exponent), "f"),    # 借方合计: ERPs check totals before lines
        "fcredittotal": format(credits.quantize(exponent), "f"),  # 贷方合计
        "fcount": len(st.entries),
        "fnextcursor": st.next_cursor,
        "fcomplete": st.complete,
        "data": [_line(e, zero) for e in st.entries],
    })


def read_statement(data: bytes) -> Statement:
    """Read kingdee.statement.json back (for the conformance kit and ERP-side tests, not the gateway)."""
    doc = json.loads(data.decode("utf-8"))
    ccy = doc["fcurrency"]

    def money(text: str) -> Money:
        return Money(Decimal(text), ccy)

    def party(line: dict) -> Party | None:
        if not (line["foppname"] or line["foppacct"]):
            return None
        number, swift = line["foppbanknumber"], line["foppswiftcode"]
        bank = (BankCode("INTERNAL") if number == THIS_BANK else BankCode("CNAPS", number) if number
                else BankCode("BIC", swift) if swift else None)
        return Party(line["foppname"], line["foppacct"], bank)

    entries = tuple(StatementEntry(
        entry_id=int(line["fdetailid"]), booked=dt.datetime.fromisoformat(line["ftradetime"]).replace(tzinfo=BEIJING),
        value_date=dt.date.fromisoformat(line["fbizdate"]),
        direction="DBIT" if Decimal(line["fdebitamount"]) else "CRDT",
        amount=money(line["fdebitamount"]) if Decimal(line["fdebitamount"]) else money(line["fcreditamount"]),
        balance_after=money(line["fbalance"]), counterparty=party(line), bank_ref=line["funiqueseq"],
        narrative=line["fdescription"], client_ref=line["fpayunique"] or None,
        end_to_end_id=line["fbizrefno"] or None, reversal=line["fisrefund"]) for line in doc["data"])
    return Statement(doc["faccountbank"], ccy, money(doc["fopeningbalance"]),
                     dt.date.fromisoformat(doc["fopeningdate"]), money(doc["fclosingbalance"]),
                     dt.date.fromisoformat(doc["fclosingdate"]), entries, doc["fnextcursor"], doc["fcomplete"])
