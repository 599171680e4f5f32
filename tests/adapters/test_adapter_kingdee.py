"""Kingdee batches through the whole gateway: DocumentSubmit pays them, statuses and statements come back
in Kingdee's formats, and faulty files are refused whole (on SQLite and PostgreSQL, see conftest.py)."""
from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
from conftest import OPERATING, booked_total, snapshot
from kingdee_files import as_json, as_xml, batch, bill
from lxml import etree

from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q, text

EXTERNAL, CNAPS = "31001234567890", "102290012345"


# ---- sending Kingdee files ------------------------------------------------------------------------------

def submit(client, data: bytes, fmt: str = "kingdee.json"):
    return client.call(dl.E.DocumentSubmit(dl.E.Document(base64.b64encode(data).decode("ascii"),
                                                         format=fmt, encoding="base64")))


def statuses(answer) -> list[tuple]:
    return [(text(s.find(q("ClientRef"))), text(s.find(q("State"))),
             s.find(q("Reason")).get("code") if s.find(q("Reason")) is not None else None,
             text(s.find(q("PaymentId")))) for s in answer.body.iterfind(q("PaymentStatus"))]


def document_json(answer, fmt: str) -> dict:
    """The JSON inside an answer's <Document format=... encoding="base64">."""
    assert answer.code == "OK", answer.detail
    assert answer.body.tag == q("Document") and answer.body.get("format") == fmt
    assert answer.body.get("encoding") == "base64"
    return json.loads(base64.b64decode(text(answer.body)).decode("utf-8"))


def balance(client, account: str) -> tuple[str, str]:
    b = client.call(dl.balance_query(account)).body.find(q("Balance"))
    return text(b.find(q("Booked"))), text(b.find(q("Available")))


def ledger_state(engine) -> dict:
    """snapshot() without the MessageId log: a refused request is still remembered, nothing else may change."""
    return {k: v for k, v in snapshot(engine).items() if k != "messages"}


def two_payments(batch_id: str = "KD-20261125-0001") -> dict:
    return batch(batch_id,
                 bill("KD-PAY-0001", "12500.00", fpayeebank="DirectLink Demo Bank", fdescription="十一月货款"),
                 bill("KD-PAY-0002", "3800.50", fpayeename="上海某某科技有限公司", fpayeeacct=EXTERNAL,
                      frecbanknumber=CNAPS, fpayeebank="中国工商银行上海分行", fisurgent="true"))


# ---- paying -----------------------------------------------------------------------------------------------

def test_json_batch_pays_internal_and_external(maker, gateway):
    answer = submit(maker, as_json(two_payments()))
    assert (answer.status, answer.code) == (200, "OK")
    assert text(answer.body.find(q("BatchId"))) == "KD-20261125-0001"
    assert [s[:3] for s in statuses(answer)] == [("KD-PAY-0001", "SETTLED", None), ("KD-PAY-0002", "ACCEPTED", None)]
    assert balance(maker, OPERATING) == ("987500.00", "983699.50")     # external: held, not yet booked
    assert booked_total(gateway.engine) == 0


@pytest.mark.parametrize("fmt, encoding", [("kingdee.xml", "GBK"), ("kingdee.json", "GBK"),
                                           ("kingdee.xml", "GB18030")])
def test_chinese_encodings_are_paid_and_names_survive(maker, fmt, encoding):
    doc = batch("KD-ENC-1", bill("KD-ENC-A", "66.60", fpayeename="张三", fdescription="差旅费报销"),
                bill("KD-ENC-B", "8.00", fpayeename="李四", fpayeeacct=EXTERNAL, frecbanknumber=CNAPS))
    data = as_xml(doc, encoding) if fmt == "kingdee.xml" else as_json(doc, encoding)
    assert "张三".encode() not in data                     # really GBK/GB18030 bytes on the wire
    answer = submit(maker, data, fmt)
    assert [s[:2] for s in statuses(answer)] == [("KD-ENC-A", "SETTLED"), ("KD-ENC-B", "ACCEPTED")]
    lines = document_json(maker.call(dl.statement_query(OPERATING, fmt="kingdee.statement.json")),
                          "kingdee.statement.json")["data"]
    assert [(x["foppname"], x["fdebitamount"]) for x in lines if x["fpayunique"] == "KD-ENC-A"] == [("张三", "66.60")]


def test_inline_xml_document_is_read_too(maker):
    # Inside the envelope's default namespace the file must undo it with xmlns="" (lxml's builders do
    # not write that declaration; a file built with them lands in urn:directlink:v1 and is refused).
    inline = as_xml(batch("KD-INLINE", bill("KD-INLINE-1", "1.00"))).split(b"?>", 1)[1]
    inline = inline.replace(b"<bei_bankpaybill>", b'<bei_bankpaybill xmlns="">', 1)
    op = etree.fromstring(b'<DocumentSubmit xmlns="urn:directlink:v1"><Document format="kingdee.xml" '
                          b'encoding="xml">' + inline + b"</Document></DocumentSubmit>")
    assert [s[:2] for s in statuses(maker.call(op))] == [("KD-INLINE-1", "SETTLED")]


def test_resubmitting_the_same_file_is_idempotent(maker, gateway):
    data = as_json(two_payments())
    first = statuses(submit(maker, data))
    before = ledger_state(gateway.engine)
    again = submit(maker, data)                           # a new MessageId, the same batch
    assert again.code == "OK" and statuses(again) == first
    assert ledger_state(gateway.engine) == before


def test_business_faults_reject_only_their_bill(maker):
    answer = submit(maker, as_json(batch(
        "KD-MIXED", bill("KD-M-OK", "10.00"), bill("KD-M-ZERO", "0.00"),
        bill("KD-M-CNAPS", "5.00", fpayeeacct=EXTERNAL, frecbanknumber="12345"))))
    assert [s[:3] for s in statuses(answer)] == [
        ("KD-M-OK", "SETTLED", None), ("KD-M-ZERO", "REJECTED", "AMOUNT_INVALID"),
        ("KD-M-CNAPS", "REJECTED", "BANK_CODE_INVALID")]


# ---- refusing -----------------------------------------------------------------------------------------------

GOOD = bill("KD-BAD-1", "1.00")         # every refused file below starts with a payable bill


@pytest.mark.parametrize("fmt, data, where", [
    ("kingdee.json", as_json(batch("B", GOOD, bill("KD-BAD-2", "1.00", fpayeename=None))), "/data/1/fpayeename"),
    ("kingdee.json", as_json(batch("B", GOOD, bill("KD-BAD-2", "1.00"), total="3.00")), "/ftotalamount"),
    ("kingdee.json", as_json(batch("B", GOOD, bill("KD-BAD-2", "1.00"), count=3)), "/ftotalcount"),
    ("kingdee.json", as_json(batch("B", GOOD, bill("KD-BAD-1", "2.00"))), "/data/1/fpayunique"),
    ("kingdee.json", as_json(batch("B", GOOD, bill("KD-BAD-2", "1e3"), total="1001")), "/data/1/famount"),
    ("kingdee.json", as_json(batch("B", GOOD, bill("KD-BAD-2", "1.00", fcurrency="XAU"))), "/data/1"),
    ("kingdee.json", as_json(batch("B", GOOD))[:-30], "not well-formed JSON"),
    ("kingdee.xml", as_xml(batch("B", GOOD, bill("KD-BAD-2", "1.00", fusage=None))),
     "/bei_bankpaybill/data/bill[2]/fusage"),
], ids=["missing-field", "total-amount", "total-count", "duplicate-ref", "exponent-amount", "currency",
        "malformed-json", "xml-missing-field"])
def test_file_faults_refuse_the_whole_file(maker, gateway, fmt, data, where):
    before = ledger_state(gateway.engine)
    answer = submit(maker, data, fmt)
    assert (answer.status, answer.code) == (400, "DOCUMENT_INVALID")
    assert where in answer.detail and "nothing in the file was accepted" in answer.detail
    assert ledger_state(gateway.engine) == before


@pytest.mark.parametrize("fmt, data, words", [
    ("kingdee.xml", as_xml(batch("B", GOOD | {"fpayeename": "张三"})).replace(b"'UTF-8'", b"'GBK'"), "XML_ENCODING_INVALID"),
    ("kingdee.json", json.dumps({"fencoding": "GBK"} | batch("B", GOOD | {"fpayeename": "张三"}),
                                ensure_ascii=False).encode("utf-8"), "declares GBK but the bytes are UTF-8"),
    ("kingdee.json", json.dumps(batch("B", GOOD | {"fpayeename": "张三"}), ensure_ascii=False).encode("gbk"),
     "not valid utf-8"),
], ids=["xml-utf8-declared-gbk", "json-utf8-declared-gbk", "json-gbk-undeclared"])
def test_misdeclared_encoding_is_refused(maker, gateway, fmt, data, words):
    before = ledger_state(gateway.engine)
    answer = submit(maker, data, fmt)
    assert answer.code == "DOCUMENT_INVALID" and words in answer.detail
    assert ledger_state(gateway.engine) == before


def test_the_statement_format_is_not_a_payment_format(maker):
    answer = submit(maker, as_json(two_payments()), "kingdee.statement.json")
    assert answer.code == "UNSUPPORTED_FORMAT"


# ---- reading back in Kingdee formats ------------------------------------------------------------------------

def test_statuses_in_kingdee_format_match_the_ledger(maker):
    paid = {ref: pid for ref, _, _, pid in statuses(submit(maker, as_json(two_payments())))}
    query = dl.E.PaymentStatusQuery(dl.E.ClientRef("KD-PAY-0001"), dl.E.ClientRef("KD-PAY-0002"),
                                    dl.E.Format("kingdee.status.json"))
    doc = document_json(maker.call(query), "kingdee.status.json")
    assert doc["formid"] == "bei_bankpaybill" and doc["ftotalcount"] == 2
    assert [(s["fpayunique"], s["fstatementrefno"], s["fstate"], s["fbankpaystate"], s["famount"], s["fpayeracct"])
            for s in doc["data"]] == [
        ("KD-PAY-0001", paid["KD-PAY-0001"], "SETTLED", "TS", "12500.00", OPERATING),
        ("KD-PAY-0002", paid["KD-PAY-0002"], "ACCEPTED", "BP", "3800.50", OPERATING)]


def test_statement_in_kingdee_format_matches_the_ledger(maker):
    submit(maker, as_json(two_payments()))
    doc = document_json(maker.call(dl.statement_query(OPERATING, fmt="kingdee.statement.json")),
                        "kingdee.statement.json")
    own = maker.call(dl.statement_query(OPERATING)).body              # the protocol's own statement
    entries = list(own.iterfind(q("Entry")))
    assert doc["faccountbank"] == OPERATING and doc["fcount"] == len(entries) == len(doc["data"])
    assert [(x["fdetailid"], x["fbalance"]) for x in doc["data"]] == \
           [(text(e.find(q("EntryId"))), text(e.find(q("BalanceAfter")))) for e in entries]
    credits = sum(Decimal(x["fcreditamount"]) for x in doc["data"])
    debits = sum(Decimal(x["fdebitamount"]) for x in doc["data"])
    assert Decimal(doc["fopeningbalance"]) + credits - debits == Decimal(doc["fclosingbalance"])
    assert doc["fclosingbalance"] == text(own.find(q("Closing"))) == balance(maker, OPERATING)[0]
    paid = [x for x in doc["data"] if x["fpayunique"] == "KD-PAY-0001"]
    assert [(x["foppbanknumber"], x["fdebitamount"], x["fiskdretflag"]) for x in paid] == [("本行", "12500.00", True)]
