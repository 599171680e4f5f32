"""The ISO 20022 adapters (sap, oracle, iso20022): pain.001 in, pain.002 and camt.052/053 out.

Judges (tests/iso20022_helpers.py): sepaxml writes the pain.001 files an ERP sends; the official XSDs judge
what we write; pyiso20022's typed models judge pain.002.001.10 (no XSD offline) and cross-check the rest;
pycamt reads our camt.053/.052 as an ERP's importer would.
"""
from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest
from conftest import OPERATING, SUPPLIER
from iso20022_helpers import (
    CREDITOR_IBAN,
    DEBTOR_IBAN,
    FOREIGN_BIC,
    FOREIGN_IBAN,
    NS,
    OWN_BIC,
    assert_xsd_valid,
    cgi_file,
    code,
    money_of,
    open_sepa_accounts,
    outcomes,
    sepa_file,
    submit,
    tx_statuses,
    typed,
    without_messages,
)
from lxml import etree
from pycamt.parser import Camt053Parser

from adapters import registry
from adapters.base import AccountFacts, DocumentInvalid, StatusReport
from adapters.iso20022 import camt, pain002
from adapters.oracle import ADAPTER as ORACLE
from adapters.sap import ADAPTER as SAP
from domain.codes import PaymentState, ReasonCode
from domain.errors import XmlRejected
from domain.models import BankCode, Party, PaymentStatus, Statement, StatementEntry
from domain.money import Money
from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q, text

READ_03 = SAP.payment_readers["sap.pain.001.001.03"]
READ_09 = SAP.payment_readers["sap.pain.001.001.09"]


# ---- pain.001 readers, pure ----------------------------------------------------------------------------

def test_registry_routes_each_format_to_one_adapter():
    assert registry.payment_reader("sap.pain.001.001.09")[1].max_transactions == 10_000
    assert registry.adapters()["oracle"].formats == ("oracle.pain.001.001.03",)
    for fmt in ("pain.002.001.03", "pain.002.001.10"):
        assert registry.status_writer(fmt)[1] is False          # XML, inline
    for fmt in ("camt.053.001.02", "camt.053.001.08", "camt.052.001.08"):
        assert registry.statement_writer(fmt)[1] is False


@pytest.mark.parametrize("version", ["pain.001.001.03", "pain.001.001.09"])
def test_cgi_file_maps_to_instructions(version):
    data = cgi_file(version, [
        {"e2e": "T-1", "amount": "1250.00", "cnaps": "102100099996", "bank_name": "ICBC Beijing",
         "ustrd": ["Invoice 4711", "and 4712"]},
        {"e2e": "T-2", "amount": "3.5", "bic": FOREIGN_BIC, "account": FOREIGN_IBAN, "priority": "HIGH"},
        {"e2e": "T-3", "amount": "1.00", "bic": "DLNKCNSH001", "ustrd": ["x" * 100]},
        {"e2e": "T-4", "amount": "2.00", "cnaps": "102100099996", "system": "CNCNAPS"},
        {"e2e": "T-5", "amount": "2.00"},
    ], priority="NORM")
    pf = (READ_03 if version.endswith("03") else READ_09)(data)
    assert pf.message_id == "SAP-F110-0001" and pf.created == dt.datetime(2026, 11, 25, 9, 30)
    assert pf.transactions[1].where == "PmtInf[1]/CdtTrfTxInf[2] (EndToEndId T-2)"
    ins = [t.instruction for t in pf.transactions]
    assert [(i.client_ref, i.amount.text(), i.creditor.bank.scheme, i.creditor.bank.code) for i in ins] == [
        ("T-1", "1250.00", "CNAPS", "102100099996"), ("T-2", "3.50", "BIC", FOREIGN_BIC),
        ("T-3", "1.00", "INTERNAL", ""), ("T-4", "2.00", "CNAPS", "102100099996"),
        ("T-5", "2.00", "INTERNAL", "")]
    first = ins[0]
    assert (first.debtor_account, first.creditor.name, first.creditor.account, first.creditor.bank_name) == (
        OPERATING, "ACME Supplies", SUPPLIER, "ICBC Beijing")
    assert (first.purpose, first.remark, first.requested_date) == (
        "Invoice 4711 and 4712", None, dt.date(2026, 11, 25))
    assert [i.urgency for i in ins] == ["NORMAL", "URGENT", "NORMAL", "NORMAL", "NORMAL"]
    assert (ins[2].purpose, ins[2].remark, ins[4].purpose) == ("x" * 60, "x" * 100, "Payment")


def test_pmtinf_priority_high_makes_every_payment_urgent_and_09_takes_a_datetime():
    data = cgi_file("pain.001.001.09", priority="HIGH").replace(
        b"<Dt>2026-11-25</Dt>", b"<DtTm>2026-11-26T08:00:00+08:00</DtTm>")
    ins = READ_09(data).transactions[0].instruction
    assert (ins.urgency, ins.requested_date) == ("URGENT", dt.date(2026, 11, 26))


def test_structured_references_service_level_and_comments_are_read_as_written():
    """Invoice numbers in document order across Strd blocks, a service level URGP, and a comment inside a
    name (comment injection: the text around it is kept whole)."""
    def add(parent, *path):   # the last element of a new chain of elements below parent
        for name in path:
            parent = etree.SubElement(parent, f"{{{NS}pain.001.001.03}}{name}")
        return parent

    root = etree.fromstring(cgi_file(txs=_one("S-1", "5.00")))
    tx = root.find(".//{*}CdtTrfTxInf")
    add(tx, "PmtTpInf", "SvcLvl", "Cd").text = "URGP"
    tx.find("{*}PmtId").addnext(tx.find("{*}PmtTpInf"))   # where the XSD has it
    rmt = add(tx, "RmtInf")
    for invoice, ref in (("INV-1", "RF18 539"), ("INV-2", None)):
        strd = add(rmt, "Strd")
        add(strd, "RfrdDocInf", "Nb").text = invoice
        if ref:
            add(strd, "CdtrRefInf", "Ref").text = ref
    name = tx.find("{*}Cdtr/{*}Nm")
    name.text = "ACME"
    name.append(etree.Comment(" x "))
    name[0].tail = " Supplies"
    ins = READ_03(etree.tostring(root, xml_declaration=True, encoding="UTF-8")).transactions[0].instruction
    assert (ins.purpose, ins.urgency, ins.creditor.name) == ("INV-1 INV-2 RF18 539", "URGENT", "ACME Supplies")


def test_a_payment_block_whose_control_sum_is_wrong_refuses_the_file():
    data = cgi_file(txs=_one("C-1", "5.00") + _one("C-2", "2.50")).replace(
        b"<NbOfTxs>2</NbOfTxs><ReqdExctnDt>", b"<NbOfTxs>2</NbOfTxs><CtrlSum>7.49</CtrlSum><ReqdExctnDt>")
    assert b"<CtrlSum>7.49</CtrlSum>" in data
    with pytest.raises(DocumentInvalid) as caught:
        READ_03(data)
    assert caught.value.where == "PmtInf[1]/CtrlSum" and "add up to 7.50" in caught.value.detail


def test_per_transaction_problems_reject_only_that_transaction():
    pf = READ_03(cgi_file(txs=[
        {"e2e": "OK-1", "amount": "1.00"}, {"e2e": "ZERO", "amount": "0"}, {"e2e": "FEN", "amount": "1.001"},
        {"e2e": "CNAPS", "amount": "1.00", "cnaps": "123"},
        {"e2e": "SYS", "amount": "1.00", "cnaps": "1", "system": "USABA"},
        {"e2e": "NAME", "amount": "1.00", "name": "N" * 71},
        {"e2e": "ACCT", "amount": "1.00", "account": "12-34"}]))
    got = [(t.client_ref, t.problem and t.problem.reason) for t in pf.transactions]
    assert got == [("OK-1", None), ("ZERO", ReasonCode.AMOUNT_INVALID), ("FEN", ReasonCode.AMOUNT_INVALID),
                   ("CNAPS", ReasonCode.BANK_CODE_INVALID), ("SYS", ReasonCode.BANK_CODE_INVALID),
                   ("NAME", ReasonCode.ACCOUNT_INVALID), ("ACCT", ReasonCode.ACCOUNT_INVALID)]
    assert pf.transactions[1].problem.detail.startswith("Amt/InstdAmt: ")
    assert pf.transactions[1].where == "PmtInf[1]/CdtTrfTxInf[2] (EndToEndId ZERO)"


def _one(e2e="A", amount="1", **kw) -> list[dict]:
    return [{"e2e": e2e, "amount": amount, **kw}]


FILE_FAULTS = {   # case: (file bytes, where, words in the detail)
    "group NbOfTxs": (lambda: cgi_file(nb="2"), "GrpHdr/NbOfTxs", "says 2"),
    "group CtrlSum": (lambda: cgi_file(ctrl="10.01"), "GrpHdr/CtrlSum", "add up to 10.00"),
    "PmtInf NbOfTxs": (lambda: cgi_file(block_nb="3"), "PmtInf[1]/NbOfTxs", "says 3"),
    "XSD: amount": (lambda: cgi_file(txs=_one(amount="7.7")).replace(b'">7.7<', b'">7,7<'),
                    "PmtInf[1]/CdtTrfTxInf[1]/Amt/InstdAmt (line 2)", "fails the pain.001.001.03 XSD"),
    "XSD: currency pattern": (lambda: cgi_file(txs=_one(ccy="xyz")), "InstdAmt", "Ccy"),
    "a .09 file in the .03 format": (lambda: cgi_file("pain.001.001.09"), "Document", "pain.001.001.03"),
    "duplicate EndToEndId": (lambda: cgi_file(txs=_one("D") + _one("D", "2")),
                             "PmtInf[1]/CdtTrfTxInf[2] (EndToEndId D)", "repeats"),
    "NOTPROVIDED": (lambda: cgi_file(txs=_one("NOTPROVIDED")), "EndToEndId", "idempotency"),
    "blank at the end of an EndToEndId": (lambda: cgi_file(txs=_one("E ")),
                                          "PmtInf[1]/CdtTrfTxInf[1]/PmtId/EndToEndId", "blanks"),
    "cheques": (lambda: cgi_file(method="CHK"), "PmtInf[1]/PmtMtd", "TRF"),
    "too many": (lambda: cgi_file(txs=[{"e2e": f"M{i}", "amount": "1"} for i in range(10_001)]),
                 "Document", "at most 10000"),
    "not UTF-8": (lambda: cgi_file().replace(b"encoding='UTF-8'", b"encoding='GB18030'"),
                  "Document", "UTF-8"),
}


@pytest.mark.parametrize("case", FILE_FAULTS)
def test_file_level_faults_refuse_the_whole_file(case):
    make, where, words = FILE_FAULTS[case]
    with pytest.raises(DocumentInvalid) as caught:
        READ_03(make())
    assert where in caught.value.where and words in caught.value.detail, str(caught.value)


def test_hostile_xml_keeps_the_parser_codes():
    with pytest.raises(XmlRejected) as caught:
        READ_03(b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><Document>&x;</Document>')
    assert caught.value.code == "XML_FORBIDDEN_CONSTRUCT" and caught.value.detail.startswith("Document: ")


def test_sepaxml_files_are_read_by_all_three_readers():
    pays = [{"name": "Empfänger", "IBAN": FOREIGN_IBAN, "BIC": FOREIGN_BIC, "amount": 1234,
             "endtoend_id": "E-1"}]
    for schema, read in (("pain.001.001.03", READ_03), ("pain.001.001.09", READ_09),
                         ("pain.001.001.03", ORACLE.payment_readers["oracle.pain.001.001.03"])):
        ins = read(sepa_file(schema, pays)).transactions[0].instruction
        assert (ins.debtor_account, ins.amount, ins.creditor.name, ins.creditor.bank) == (
            DEBTOR_IBAN, Money(Decimal("12.34"), "EUR"), "Empfanger", BankCode("BIC", FOREIGN_BIC))


# ---- pain.002 writers, pure ----------------------------------------------------------------------------

STATUSES = (
    PaymentStatus("S-1", PaymentState.SETTLED, "P1", amount=Money(Decimal("12.34"), "EUR"),
                  debtor_account=DEBTOR_IBAN),
    PaymentStatus("S-2", PaymentState.PENDING_APPROVAL, "P2", approvals_required=2, approvals_given=1),
    PaymentStatus("S-3", PaymentState.ACCEPTED, "P3", debtor_account=OPERATING),
    PaymentStatus("S-4", PaymentState.PROCESSING, "P4"),
    PaymentStatus("S-5", PaymentState.UNKNOWN, "P5", end_to_end_id="E2E-5"),
    PaymentStatus("S-6", PaymentState.RETURNED, "P6", reason=ReasonCode.CLEARING_RETURNED,
                  reason_text="AC04 " * 50),
    PaymentStatus("S-7", PaymentState.REJECTED, reason=ReasonCode.INSUFFICIENT_FUNDS,
                  reason_text="too little"),
    PaymentStatus("S-8", PaymentState.FAILED, "P8", reason=ReasonCode.CLEARING_FAILED),
    PaymentStatus("S-9", PaymentState.CANCELLED, "P9", reason_text="by maker"),
)


@pytest.mark.parametrize("message, cancelled", [("pain.002.001.03", ("RJCT", "DS02")),
                                                ("pain.002.001.10", ("CANC", "CANCELLED"))])
def test_status_report_maps_every_state(message, cancelled):
    report = StatusReport(STATUSES, "SAP-F110-0001", amounts={"S-4": (Decimal("7"), "CNY")})
    data = registry.status_writer(message)[0](report)
    if message.endswith("03"):
        assert_xsd_valid(data, message)
    doc = typed(data, message)   # the only judge for .10 (no XSD offline)
    assert tx_statuses(data, message) == [
        ("S-1", "ACSC", None), ("S-2", "PDNG", "PENDING_APPROVAL"), ("S-3", "ACTC", None),
        ("S-4", "ACSP", None), ("E2E-5", "PDNG", "UNKNOWN"), ("S-6", "RJCT", "CLEARING_RETURNED"),
        ("S-7", "RJCT", "INSUFFICIENT_FUNDS"), ("S-8", "RJCT", "CLEARING_FAILED"), ("S-9", *cancelled)]
    group = doc.cstmr_pmt_sts_rpt.orgnl_grp_inf_and_sts
    assert (group.orgnl_msg_id, code(group.grp_sts)) == ("SAP-F110-0001", "PART")
    txs = doc.cstmr_pmt_sts_rpt.orgnl_pmt_inf_and_sts[0].tx_inf_and_sts
    assert (txs[0].orgnl_tx_ref.amt.instd_amt.value, txs[0].orgnl_tx_ref.dbtr_acct.id.iban) == (
        Decimal("12.34"), DEBTOR_IBAN)
    assert txs[3].orgnl_tx_ref.amt.instd_amt.value == Decimal("7") and txs[0].acct_svcr_ref == "P1"
    # Max105Text lines, split between words (not "...of 202" / "6-12-07"): they join back with one blank each
    lines = txs[5].sts_rsn_inf[0].addtl_inf
    assert len(lines) == 3 and all(len(line) <= 105 for line in lines)
    assert all(line == line.strip() for line in lines) and sum(map(len, lines)) + 2 == 105 + 105 + 39


@pytest.mark.parametrize("codes, group", [(["RJCT", "CANC"], "RJCT"), (["ACSC", "ACSC"], "ACSC"),
                                          (["PDNG"], "PDNG"), (["ACTC", "ACSC"], "ACCP"),
                                          (["ACSC", "RJCT"], "PART"), ([], None)])
def test_group_status(codes, group):
    assert pain002.group_status(codes) == group


def test_writers_are_pure_functions():
    """Same input, same bytes (golden files, ERP-side de-duplication); a later report is another message."""
    report = StatusReport(STATUSES, "SAP-F110-0001")
    later = StatusReport(STATUSES, "SAP-F110-0001", created=report.created + dt.timedelta(seconds=1))
    for v in (pain002.V03, pain002.V10):
        assert pain002.write(report, v) == pain002.write(report, v)
        ids = {etree.fromstring(pain002.write(r, v)).findtext(f".//{{{v.ns}}}MsgId") for r in (report, later)}
        assert len(ids) == 2
    at = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
    assert camt.write(SAMPLE, FACTS, camt.CAMT053_08, at) == camt.write(SAMPLE, FACTS, camt.CAMT053_08, at)


def test_empty_status_report_is_valid():
    data = pain002.write(StatusReport(()), pain002.V03)
    assert_xsd_valid(data, "pain.002.001.03")
    assert b"<OrgnlMsgId>UNKNOWN</OrgnlMsgId>" in data


# ---- camt writers, pure --------------------------------------------------------------------------------

BOOKED = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)
FACTS = AccountFacts(OPERATING, "CNY", "演示贸易有限公司", "DirectLink Demo Bank")
FOREIGN = Party("Foreign Ltd", FOREIGN_IBAN, BankCode("BIC", FOREIGN_BIC))


def cny(amount: str) -> Money:
    return Money(Decimal(amount), "CNY")


def entry(seq, direction, amount, after, party=None, ref="P1", narrative="货款", e2e=None, reversal=False):
    return StatementEntry(seq, BOOKED, BOOKED.date(), direction, cny(amount), cny(after), party, ref,
                          narrative, e2e, e2e, reversal)


SAMPLE = Statement(OPERATING, "CNY", cny("-5.00"), BOOKED.date(), cny("1082.50"), BOOKED.date(), (
    entry(1, "CRDT", "1000.00", "995.00", Party("Opening balance", None, None), "OPEN-1", "Opening balance"),
    entry(2, "DBIT", "12.50", "982.50", Party("ACME & <Co>", SUPPLIER, BankCode("INTERNAL")), "P2",
          e2e="INV-7"),
    entry(3, "DBIT", "100.00", "882.50", FOREIGN, "P3", e2e="E-3"),
    entry(4, "CRDT", "100.00", "982.50", FOREIGN, "P3", "Returned", e2e="E-3", reversal=True),
    entry(5, "CRDT", "100.00", "1082.50",
          Party("Li Lei", "6228480000000000", BankCode("CNAPS", "102100099996")), "P5", e2e="IN-5"),
), next_cursor="000000000005")


def row(t: dict) -> tuple:
    """What pycamt read of one transaction: amount, direction, AcctSvcrRef, EndToEndId."""
    return t["Amount"], t["CreditDebitIndicator"], t["TransactionID"], t.get("EndToEndId")


@pytest.mark.parametrize("message", ["camt.053.001.02", "camt.053.001.08", "camt.052.001.08"])
def test_statement_is_valid_and_read_back_by_pycamt_and_pyiso20022(message):
    data = registry.statement_writer(message)[0](SAMPLE, FACTS)
    assert_xsd_valid(data, message)
    info = Camt053Parser(data).get_statement_info()[0]
    closing = "CLBD" if message.startswith("camt.053") else "ITBD"
    assert Decimal(info["OpeningBalance"]) == Decimal("-5.00") and info["Currency"] == "CNY"
    assert info["ClosingBalance"] == ("1082.50" if closing == "CLBD" else None)   # pycamt knows no ITBD
    rows = Camt053Parser(data).get_transactions()
    assert [row(r) for r in rows] == [
        ("1000.00", "CRDT", "OPEN-1", None), ("12.50", "DBIT", "P2", "INV-7"),
        ("100.00", "DBIT", "P3", "E-3"), ("100.00", "CRDT", "P3", "E-3"), ("100.00", "CRDT", "P5", "IN-5")]
    assert (rows[1]["CreditorName"], rows[1]["DebtorName"], rows[2]["CreditorIBAN"]) == (
        "ACME & <Co>", FACTS.owner_name, FOREIGN_IBAN)
    # the reversal keeps the original payment's roles; an incoming payment names its payer as debtor
    assert (rows[3]["ReversalIndicator"], rows[3]["CreditorName"], rows[3]["TransactionSubFamilyCode"]) == (
        "true", "Foreign Ltd", "RRTN")
    assert (rows[4]["DebtorName"], rows[4]["TransactionFamilyCode"]) == ("Li Lei", "RCDT")
    doc = typed(data, message)
    report = (doc.bk_to_cstmr_stmt.stmt if closing == "CLBD" else doc.bk_to_cstmr_acct_rpt.rpt)[0]
    signed = {"CRDT": 1, "DBIT": -1}
    bal = {code(b.tp.cd_or_prtry.cd): b.amt.value * signed[code(b.cdt_dbt_ind)] for b in report.bal}
    moves = sum(n.amt.value * signed[code(n.cdt_dbt_ind)] for n in report.ntry)
    assert bal["OPBD"] + moves == bal[closing] == Decimal("1082.50")
    total, credits, debits = (report.txs_summry.ttl_ntries, report.txs_summry.ttl_cdt_ntries,
                              report.txs_summry.ttl_dbt_ntries)
    assert [(int(t.nb_of_ntries), t.sum) for t in (total, credits, debits)] == [
        (5, Decimal("1312.50")), (3, Decimal("1200.00")), (2, Decimal("112.50"))]
    assert report.id == f"{OPERATING}-5" and report.acct.id.othr.id == OPERATING


def test_statement_that_does_not_add_up_is_a_defect_not_a_document():
    broken = Statement(OPERATING, "CNY", cny("0"), BOOKED.date(), cny("1.00"), BOOKED.date(), ())
    with pytest.raises(ValueError, match="does not add up"):
        camt.write(broken, FACTS, camt.CAMT053_08)


def test_long_statements_are_written_entry_by_entry():
    n = 5000
    payer = Party("Payer", "6228480000000000", BankCode("INTERNAL"))
    entries = tuple(entry(i, "CRDT", "1.00", f"{i}.00", payer, f"P{i}", e2e=f"E{i}") for i in range(1, n + 1))
    st = Statement("1" * 34, "CNY", cny("0.00"), BOOKED.date(), cny(f"{n}.00"), BOOKED.date(), entries,
                   f"{n:012d}")
    data = camt.write(st, FACTS, camt.CAMT053_08)
    assert_xsd_valid(data, "camt.053.001.08")
    assert data.count(b"<Ntry>") == n and data.count(b"xmlns=") == 1   # the namespace is declared once
    ns = NS + "camt.053.001.08"
    assert len(etree.fromstring(data).findtext(f".//{{{ns}}}Stmt/{{{ns}}}Id")) == 35   # Max35Text


# ---- through the gateway (SQLite and PostgreSQL) -------------------------------------------------------

TWO_PAYMENTS = [
    {"name": "ACME GmbH", "IBAN": CREDITOR_IBAN, "BIC": OWN_BIC, "amount": 1234, "endtoend_id": "INV-1"},
    {"name": "Foreign Ltd", "IBAN": FOREIGN_IBAN, "BIC": FOREIGN_BIC, "amount": 500, "endtoend_id": "INV-2"}]


@pytest.mark.parametrize("fmt, schema, encoding", [("sap.pain.001.001.03", "pain.001.001.03", "xml"),
                                                   ("sap.pain.001.001.09", "pain.001.001.09", "xml"),
                                                   ("oracle.pain.001.001.03", "pain.001.001.03", "base64")])
def test_sepaxml_file_is_paid_once_however_often_it_is_sent(maker, gateway, fmt, schema, encoding):
    open_sepa_accounts(gateway)
    data = sepa_file(schema, TWO_PAYMENTS)
    first = submit(maker, data, fmt, encoding)
    got = outcomes(first)
    assert [(ref, state) for ref, state, _, _ in got] == [("INV-1", "SETTLED"), ("INV-2", "ACCEPTED")]
    assert text(first.body.find(q("BatchId"))) == etree.fromstring(data).findtext(f".//{{{NS}{schema}}}MsgId")
    money = money_of(gateway)
    assert (money[DEBTOR_IBAN], money[CREDITOR_IBAN]) == ((100000 - 1234, 500), (1234, 0))
    again = outcomes(submit(maker, data, fmt, encoding))    # the ERP re-sends after a timeout
    assert again == got and money_of(gateway) == money      # same PaymentIds, no second debit


BAD_FILES = {   # case: (format, encoding, spoil the sepaxml file, code, words the detail must hold)
    "wrong CtrlSum": ("sap.pain.001.001.03", "xml",
                      lambda d: d.replace(b"<CtrlSum>17.34<", b"<CtrlSum>17.35<", 1),
                      "DOCUMENT_INVALID", ["GrpHdr/CtrlSum", "17.35"]),
    "wrong NbOfTxs": ("sap.pain.001.001.09", "xml", lambda d: d.replace(b"<NbOfTxs>2<", b"<NbOfTxs>3<", 1),
                      "DOCUMENT_INVALID", ["GrpHdr/NbOfTxs", "says 3"]),
    "XSD failure": ("sap.pain.001.001.03", "base64", lambda d: d.replace(b">12.34<", b">12.3x<"),
                    "DOCUMENT_INVALID", ["CdtTrfTxInf[1]/Amt/InstdAmt", "line", "XSD"]),
    "duplicate EndToEndId": ("oracle.pain.001.001.03", "xml", lambda d: d.replace(b">INV-2<", b">INV-1<"),
                             "DOCUMENT_INVALID", ["CdtTrfTxInf[2] (EndToEndId INV-1)", "repeats"]),
    "unsupported currency": ("sap.pain.001.001.03", "xml",
                             lambda d: d.replace(b'Ccy="EUR">5.00', b'Ccy="XAU">5.00'),
                             "DOCUMENT_INVALID", ["CdtTrfTxInf[2] (EndToEndId INV-2)", "XAU"]),
    "SEPA's NOTPROVIDED": ("sap.pain.001.001.09", "xml", lambda d: d.replace(b">INV-2<", b">NOTPROVIDED<"),
                           "DOCUMENT_INVALID", ["CdtTrfTxInf[2]/PmtId/EndToEndId", "NOTPROVIDED"]),
    "base64 camt.053, not pain.001": ("sap.pain.001.001.03", "base64",
                                      lambda d: camt.write(SAMPLE, FACTS, camt.CAMT053_08),
                                      "DOCUMENT_INVALID", ["Document", "camt.053.001.08", "pain.001.001.03"]),
    "base64 that is no XML": ("sap.pain.001.001.03", "base64", lambda d: b"MSGID;AMOUNT\nX;12.34\n",
                              "DOCUMENT_INVALID", ["XML_MALFORMED", "Document: "]),
    "unknown format name": ("sap.pain.001.001.99", "xml", lambda d: d,
                            "UNSUPPORTED_FORMAT", ["sap.pain.001.001.99"]),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_are_refused_whole(maker, gateway, case):
    fmt, encoding, spoil, result, words = BAD_FILES[case]
    open_sepa_accounts(gateway)
    schema = "pain.001.001.09" if fmt.endswith(".09") else "pain.001.001.03"
    before = without_messages(gateway)
    answer = submit(maker, spoil(sepa_file(schema, TWO_PAYMENTS)), fmt, encoding)
    assert (answer.status, answer.code, answer.body) == (400, result, None), answer.detail
    assert all(w in answer.detail for w in words), answer.detail
    assert without_messages(gateway) == before


def _sap_batch(maker) -> dict[str, tuple]:
    """A SAP-style CNY file: internal, CNAPS, over the single limit, zero amount.
    ClientRef -> (state, PaymentId, reason)."""
    data = cgi_file("pain.001.001.09", requested=dt.date.today().isoformat(), txs=[
        {"e2e": "T-INT", "amount": "100.00", "ustrd": ["货款 2026-11"]},
        {"e2e": "T-CNAPS", "amount": "200.00", "cnaps": "102100099996", "account": "6228480000000000"},
        {"e2e": "T-BIG", "amount": "600000.00"},
        {"e2e": "T-ZERO", "amount": "0.00"}])
    answer = submit(maker, data, "sap.pain.001.001.09")
    return {ref: (state, pid, reason) for ref, state, pid, reason in outcomes(answer)}


def test_business_rejections_are_per_transaction(maker, gateway):
    got = _sap_batch(maker)
    assert {ref: (state, reason) for ref, (state, _, reason) in got.items()} == {
        "T-INT": ("SETTLED", None), "T-CNAPS": ("ACCEPTED", None), "T-BIG": ("REJECTED", "LIMIT_SINGLE"),
        "T-ZERO": ("REJECTED", "AMOUNT_INVALID")}
    assert money_of(gateway)[OPERATING] == (100000000 - 10000, 20000)


def _pain002(maker, fmt: str, *refs: str) -> bytes:
    query = dl.status_query(*refs)
    query.append(dl.E.Format(fmt))
    answer = maker.call(query)
    assert (answer.status, answer.code) == (200, "OK"), answer.detail
    assert answer.body.tag == q("Document") and answer.body.get("format") == fmt
    return etree.tostring(answer.body[0])


@pytest.mark.parametrize("fmt", ["pain.002.001.03", "pain.002.001.10"])
def test_status_report_of_a_file(maker, gateway, fmt):
    got = _sap_batch(maker)
    assert outcomes(maker.call(dl.cancel(got["T-CNAPS"][1])))[0][1] == "CANCELLED"
    data = _pain002(maker, fmt, "T-INT", "T-CNAPS")
    if fmt.endswith("03"):
        assert_xsd_valid(data, fmt)
    doc = typed(data, fmt)
    # a cancelled payment's reason is the cancellation (pain.002.001.03 has its ISO code for it)
    cancelled = ("RJCT", "DS02") if fmt.endswith("03") else ("CANC", "CANCELLED_BY_CLIENT")
    assert tx_statuses(data, fmt) == [("T-INT", "ACSC", None), ("T-CNAPS", *cancelled)]
    assert code(doc.cstmr_pmt_sts_rpt.orgnl_grp_inf_and_sts.grp_sts) == "PART"
    txs = doc.cstmr_pmt_sts_rpt.orgnl_pmt_inf_and_sts[0].tx_inf_and_sts
    amounts = [t.orgnl_tx_ref.amt.instd_amt for t in txs]
    assert [(t.acct_svcr_ref, a.value, a.ccy) for t, a in zip(txs, amounts, strict=True)] == [
        (got["T-INT"][1], Decimal("100.00"), "CNY"), (got["T-CNAPS"][1], Decimal("200.00"), "CNY")]


def _in_two_blocks(data: bytes, version: str, moved: str) -> bytes:
    """The file with the payment `moved` in a second PmtInf block, PI-2, after the first (PI-1)."""
    ns = {"p": NS + version}
    root = etree.fromstring(data)
    [block] = root.findall(".//p:PmtInf", ns)
    second = copy.deepcopy(block)
    second.find("p:PmtInfId", ns).text = "PI-2"
    for keep in (block, second):
        for tx in keep.findall("p:CdtTrfTxInf", ns):
            if (tx.findtext("p:PmtId/p:EndToEndId", namespaces=ns) == moved) == (keep is block):
                keep.remove(tx)
        keep.find("p:NbOfTxs", ns).text = str(len(keep.findall("p:CdtTrfTxInf", ns)))
    block.addnext(second)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@pytest.mark.parametrize("fmt, version, report_fmt", [("oracle.pain.001.001.03", "pain.001.001.03", "pain.002.001.03"),
                                                      ("sap.pain.001.001.09", "pain.001.001.09", "pain.002.001.10")])
def test_status_report_names_each_payment_block_of_the_file_it_came_in(maker, gateway, fmt, version, report_fmt):
    """The gateway keeps each payment's PmtInfId from the pain.001 it came in (issue 25): its pain.002 has one
    OrgnlPmtInfAndSts per PmtInfId of the file, whatever order the query names the payments in. A payment
    sent in a PaymentOrder has none: it goes in the block named after the original message, as before."""
    today = dt.date.today().isoformat()
    data = _in_two_blocks(cgi_file(version, requested=today, txs=[
        {"e2e": "B-1", "amount": "1.00"}, {"e2e": "B-2", "amount": "2.00"}, {"e2e": "B-3", "amount": "3.00"}]),
        version, moved="B-2")
    assert [ref for ref, _, _, _ in outcomes(submit(maker, data, fmt))] == ["B-1", "B-3", "B-2"]   # file order
    order = maker.call(dl.payment_order(dl.payment("PO-1", OPERATING, "4.00", "ACME Supplies", SUPPLIER)))
    assert outcomes(order)[0][:2] == ("PO-1", "SETTLED")
    report = _pain002(maker, report_fmt, "B-1", "B-2", "PO-1", "B-3")
    if report_fmt.endswith("03"):
        assert_xsd_valid(report, report_fmt)
    typed(report, report_fmt)
    ns = {"p": NS + report_fmt}
    blocks = [(b.findtext("p:OrgnlPmtInfId", namespaces=ns), [t[:2] for t in tx_statuses(etree.tostring(b), report_fmt)])
              for b in etree.fromstring(report).iterfind(".//p:OrgnlPmtInfAndSts", ns)]
    assert blocks == [("PI-1", [("B-1", "ACSC"), ("B-3", "ACSC")]), ("PI-2", [("B-2", "ACSC")]),
                      (pain002.UNKNOWN_ORIGINAL, [("PO-1", "ACSC")])]


def _native_statement(maker) -> tuple[Decimal, Decimal, list[tuple]]:
    body = maker.call(dl.statement_query(OPERATING)).body
    rows = [(text(e.find(q("Amount"))), text(e.find(q("Direction"))), text(e.find(q("BankRef"))),
             text(e.find(q("EndToEndId")))) for e in body.iterfind(q("Entry"))]
    return Decimal(text(body.find(q("Opening")))), Decimal(text(body.find(q("Closing")))), rows


@pytest.mark.parametrize("fmt", ["camt.053.001.02", "camt.053.001.08", "camt.052.001.08"])
def test_statement_in_camt_matches_the_ledger(maker, gateway, fmt):
    _sap_batch(maker)
    opening, closing, rows = _native_statement(maker)
    assert closing == Decimal("999900.00") and len(rows) == 2
    answer = maker.call(dl.statement_query(OPERATING, fmt=fmt))
    assert (answer.status, answer.code, answer.body.get("format")) == (200, "OK", fmt), answer.detail
    data = etree.tostring(answer.body[0])
    assert_xsd_valid(data, fmt)
    typed(data, fmt)
    parser = Camt053Parser(data)
    info = parser.get_statement_info()[0]
    assert Decimal(info["OpeningBalance"]) == opening
    if fmt.startswith("camt.053"):
        assert Decimal(info["ClosingBalance"]) == closing
    got = parser.get_transactions()
    assert [row(t) for t in got] == rows
    assert (got[1]["CreditorName"], got[1]["RemittanceInformation"]) == ("ACME Supplies", "货款 2026-11")


def test_pain002_rejecting_a_whole_file_is_valid_and_says_why():
    """A file the gateway refused whole (issue 25): GrpSts RJCT with the result code and its text, no
    transaction, valid against the official XSD; a long reason is cut into AddtlInf of at most 105."""
    why = "/Document/CstmrCdtTrfInitn/PmtInf[1]/NbOfTxs: says 3, the block has 2 " + "x" * 150
    data = pain002.writer(pain002.V03)(StatusReport((), original_message_id="ERP-FILE-7",
                                                     rejected=("DOCUMENT_INVALID", why)))
    assert_xsd_valid(data, "pain.002.001.03")
    ns = {"p": pain002.V03.ns}
    group = etree.fromstring(data).find("p:CstmrPmtStsRpt/p:OrgnlGrpInfAndSts", ns)
    assert (group.findtext("p:OrgnlMsgId", namespaces=ns), group.findtext("p:GrpSts", namespaces=ns),
            group.findtext("p:StsRsnInf/p:Rsn/p:Prtry", namespaces=ns)) == ("ERP-FILE-7", "RJCT", "DOCUMENT_INVALID")
    parts = [el.text for el in group.findall("p:StsRsnInf/p:AddtlInf", ns)]
    assert "".join(parts) == why and all(len(p) <= 105 for p in parts)
    assert etree.fromstring(data).find("p:CstmrPmtStsRpt/p:OrgnlPmtInfAndSts", ns) is None


def test_a_pain001s_msg_id_is_read_even_from_a_file_refused_whole():
    """The agent's pain.002 refusing a file names it by the file's MsgId when there is one to read."""
    from adapters.iso20022.pain001 import file_message_id

    data = sepa_file("pain.001.001.03", TWO_PAYMENTS)
    msg_id = etree.fromstring(data).findtext(f".//{{{NS}pain.001.001.03}}MsgId")
    spoiled = data.replace(b"<CtrlSum>17.34<", b"<CtrlSum>17.35<", 1)
    with pytest.raises(DocumentInvalid, match="CtrlSum"):
        SAP.payment_readers["sap.pain.001.001.03"](spoiled)
    assert file_message_id(data) == file_message_id(spoiled) == msg_id and msg_id
    assert file_message_id(cgi_file("pain.001.001.09")) == "SAP-F110-0001"
    no_id = data.replace(f"<MsgId>{msg_id}</MsgId>".encode(), b"<MsgId> </MsgId>")
    unreadable = (b'{"formid": "bei_bankpaybill"}', data[:len(data) // 2], no_id,
                  camt.write(SAMPLE, FACTS, camt.CAMT053_08))
    assert [file_message_id(d) for d in unreadable] == [None] * 4


def test_pain002_names_each_payment_block_of_the_original_file():
    """Statuses of a pain.001 of two PmtInf blocks: one OrgnlPmtInfAndSts per block, with its PmtInfId, as
    the ERP wrote it (pain001.payment_info_ids reads them from the file the agent sends)."""
    from adapters.iso20022.pain001 import payment_info_ids
    from domain.codes import PaymentState
    from domain.models import PaymentStatus

    data = sepa_file("pain.001.001.03", [
        {"name": "ACME GmbH", "IBAN": CREDITOR_IBAN, "BIC": OWN_BIC, "amount": 100, "endtoend_id": "E2E-A"},
        {"name": "ACME GmbH", "IBAN": CREDITOR_IBAN, "BIC": OWN_BIC, "amount": 200, "endtoend_id": "E2E-B"}])
    ns1 = {"p": NS + "pain.001.001.03"}
    root = etree.fromstring(data)
    [block] = root.findall(".//p:PmtInf", ns1)
    second = copy.deepcopy(block)                  # a second block holding the second payment
    second.find("p:PmtInfId", ns1).text = "BLOCK-2"
    block.remove(block.findall("p:CdtTrfTxInf", ns1)[1])
    second.remove(second.findall("p:CdtTrfTxInf", ns1)[0])
    block.addnext(second)
    ids = payment_info_ids(etree.tostring(root))
    assert ids == {"E2E-A": block.findtext("p:PmtInfId", namespaces=ns1), "E2E-B": "BLOCK-2"}
    assert payment_info_ids(b'{"formid": "bei_bankpaybill"}') == {} and payment_info_ids(b"<a/>") == {}
    statuses = tuple(PaymentStatus(ref, PaymentState.ACCEPTED, f"P-{ref}") for ref in ("E2E-A", "E2E-B"))
    report = pain002.writer(pain002.V03)(StatusReport(statuses, original_message_id="MSG-1", payment_info_ids=ids))
    assert_xsd_valid(report, "pain.002.001.03")
    ns = {"p": pain002.V03.ns}
    blocks = etree.fromstring(report).findall(".//p:OrgnlPmtInfAndSts", ns)
    assert [(b.findtext("p:OrgnlPmtInfId", namespaces=ns), [t[0] for t in tx_statuses(etree.tostring(b), "pain.002.001.03")])
            for b in blocks] == [(ids["E2E-A"], ["E2E-A"]), ("BLOCK-2", ["E2E-B"])]
