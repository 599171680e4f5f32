"""The sandbox credit (issue 5): money from another bank booked into a client's account shows in BalanceQuery,
in the statement with the payer as counterparty and the reference as narrative, and as an incoming-credit
notification; bad input is refused with a stable reason code and changes nothing."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from conftest import OPERATING, SUPPLIER, booked_total, snapshot
from lxml import etree
from sqlalchemy import func, select

from domain.errors import PaymentRejected
from gateway import audit, sandbox
from gateway.notify import subscriptions
from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q, text
from gateway.storage.tables import audit_log, entries, outbox_events
from schemas import SCHEMA_DIR

PAYER = dict(payer_name="深圳市小部件有限公司", payer_account="4000123456789", payer_bank_code="102584000004")


def book(gateway, account: str = OPERATING, amount: str = "1234.56", **kw) -> sandbox.Credit:
    fields = {**PAYER, "reference": "INV-2026-0042 货款", **kw}
    with gateway.engine.begin() as conn:
        return sandbox.credit(conn, account=account, amount=amount, now=gateway.clock(),
                              zone=gateway.settings.zone, own_cnaps_prefix=gateway.settings.own_cnaps_prefix,
                              **fields)


def balance(viewer, account: str) -> tuple[Decimal, Decimal]:
    report = viewer.call(dl.balance_query(account)).body.find(q("Balance"))
    return Decimal(text(report.find(q("Booked")))), Decimal(text(report.find(q("Available"))))


def test_a_credit_shows_in_the_balance_the_statement_and_a_notification(gateway, viewer):
    with gateway.engine.begin() as conn:
        subscriptions.subscribe(conn, "DEMO", "https://erp.example/notify", "credit", None, gateway.clock())
    booked, available = balance(viewer, OPERATING)
    done = book(gateway, end_to_end_id="E2E-0042", value_date=dt.date(2026, 1, 5))
    assert balance(viewer, OPERATING) == (booked + Decimal("1234.56"), available + Decimal("1234.56"))
    assert booked_total(gateway.engine) == 0                     # a balanced posting: money is conserved

    statement = viewer.call(dl.statement_query(OPERATING)).body
    [entry] = [e for e in statement.iterfind(q("Entry")) if text(e.find(q("BankRef"))) == done.bank_ref]
    assert text(entry.find(q("EntryId"))) == f"{done.entry_id:012d}"
    assert text(entry.find(q("Direction"))) == "CRDT" and text(entry.find(q("Amount"))) == "1234.56"
    assert text(entry.find(q("ValueDate"))) == "2026-01-05" and text(entry.find(q("Reversal"))) == "false"
    party = entry.find(q("Counterparty"))
    assert text(party.find(q("Name"))) == PAYER["payer_name"]
    assert text(party.find(q("Account"))) == PAYER["payer_account"]
    assert party.find(q("BankCode")).get("scheme") == "CNAPS" and text(party.find(q("BankCode"))) == "102584000004"
    assert text(entry.find(q("Narrative"))) == "INV-2026-0042 货款"
    assert text(entry.find(q("EndToEndId"))) == "E2E-0042"

    with gateway.engine.connect() as conn:
        [event] = conn.execute(select(outbox_events)).all()
        trail = conn.execute(select(audit_log).where(audit_log.c.code == "SANDBOX_CREDIT")).one()
        assert audit.verify(conn)[1] == []
    assert event.kind == "credit" and event.event_id == f"CRDT:{OPERATING}:{done.entry_id:012d}"
    root = etree.fromstring(event.payload)
    xsd = etree.XMLSchema(etree.parse(str(SCHEMA_DIR.joinpath("notification.xsd"))))
    assert xsd.validate(root), xsd.error_log
    credit_el = root.find(q("IncomingCredit"))
    assert text(credit_el.find(q("Reference"))) == "INV-2026-0042 货款"
    assert text(credit_el.find(f"{q('Payer')}/{q('Name')}")) == PAYER["payer_name"]
    assert text(credit_el.find(q("ValueDate"))) == "2026-01-05"
    assert trail.client_id == "DEMO" and done.bank_ref in trail.detail and "1234.56" in trail.detail


def test_a_payer_bank_by_bic_and_a_default_narrative_without_reference(gateway):
    done = book(gateway, SUPPLIER, "7", payer_bank_code="deutdeff", reference=None)
    with gateway.engine.connect() as conn:
        row = conn.execute(select(entries).where(entries.c.account == SUPPLIER,
                                                 entries.c.seq == done.entry_id)).one()
    assert (row.counterparty_scheme, row.counterparty_code) == ("BIC", "DEUTDEFF")
    assert row.narrative == f"Incoming transfer from {PAYER['payer_name']}" and row.amount == 700
    assert done.amount.text() == "7.00" and done.client_id == "ACME" and row.journal == done.bank_ref


BAD = [
    (dict(account="6222999999999999"), "ACCOUNT_INVALID"),          # no such account
    (dict(account="GLCNYCLEARING"), "ACCOUNT_INVALID"),             # the bank's own books
    (dict(currency="USD"), "CURRENCY_NOT_ALLOWED"),                 # the account is in CNY
    (dict(currency="XXX"), "CURRENCY_NOT_ALLOWED"),
    (dict(amount="0"), "AMOUNT_INVALID"),
    (dict(amount="0.00"), "AMOUNT_INVALID"),
    (dict(amount="-5"), "AMOUNT_INVALID"),
    (dict(amount="1.001"), "AMOUNT_INVALID"),
    (dict(amount="1e3"), "AMOUNT_INVALID"),
    (dict(amount="１２"), "AMOUNT_INVALID"),
    (dict(amount="9" * 16), "AMOUNT_INVALID"),
    (dict(payer_name=""), "ACCOUNT_INVALID"),
    (dict(payer_name="x" * 71), "ACCOUNT_INVALID"),
    (dict(payer_name="Evil\u202eCo"), "ACCOUNT_INVALID"),
    (dict(payer_account="12 34"), "ACCOUNT_INVALID"),
    (dict(payer_bank_code="12345"), "BANK_CODE_INVALID"),
    (dict(payer_bank_code="999000000001"), "BANK_CODE_INVALID"),   # this bank: not from another bank
    (dict(reference="r" * 141), "ACCOUNT_INVALID"),
    (dict(reference="line\nbreak"), "ACCOUNT_INVALID"),
    (dict(end_to_end_id=" E2E"), "ACCOUNT_INVALID"),
    (dict(end_to_end_id="E" * 36), "ACCOUNT_INVALID"),
]


def test_bad_input_is_refused_with_its_code_and_changes_nothing(gateway):
    with gateway.engine.begin() as conn:
        subscriptions.subscribe(conn, "DEMO", "https://erp.example/notify", "credit", None, gateway.clock())
        audited = conn.execute(select(func.count()).select_from(audit_log)).scalar()
    before = snapshot(gateway.engine)
    for change, reason in BAD:
        with pytest.raises(PaymentRejected) as refused:
            book(gateway, **{"account": OPERATING, "amount": "10.00", **change})
        assert refused.value.reason.value == reason, change
        assert snapshot(gateway.engine) == before, change
    with gateway.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox_events)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar() == audited
    book(gateway, amount="10.00")            # the same call with good input does book (the test can fail)
    assert snapshot(gateway.engine) != before
