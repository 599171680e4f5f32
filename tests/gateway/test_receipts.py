"""Electronic receipts: ReceiptQuery by payment, number and account; the signed XML judged by signxml and
xmlsec1; the PDF's text read back by pdftotext; an edited amount or payee fails verification."""
from __future__ import annotations

import base64
import datetime as dt
import io
import subprocess
from decimal import Decimal

import pytest
from conftest import OPERATING, SUPPLIER
from cryptography import x509
from lxml import etree
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ByteStringObject, ContentStream, TextStringObject

from gateway.protocol import client as dl
from gateway.protocol import receipts as document
from gateway.protocol.xmlsafe import q, text


def gateway_cert(home) -> x509.Certificate:
    return x509.load_pem_x509_certificate(home.path(home.gateway_cert).read_bytes())


def pay(maker, ref, amount, name="深圳华为技术有限公司", account=SUPPLIER, **kw):
    answer = maker.call(dl.payment_order(dl.payment(ref, OPERATING, amount, name, account, **kw)))
    assert answer.code == "OK", answer.detail
    status = answer.body.find(q("PaymentStatus"))
    return text(status.find(q("PaymentId"))), text(status.find(q("State")))


def items(answer):
    assert answer.code == "OK", answer.detail
    return answer.body.findall(q("Receipt"))


def test_a_settled_payment_has_a_signed_receipt_in_both_forms(home, maker, signxml_shadow):
    payment_id, state = pay(maker, "RC-1", "1004.05", purpose="货款", remark="合同 HT-2026-001 尾款")
    assert state == "SETTLED"
    [item] = items(maker.call(dl.receipt_query(payment_ids=(payment_id,))))
    xml, pdf = base64.b64decode(text(item.find(q("Xml")))), base64.b64decode(text(item.find(q("Pdf"))))
    checked = document.verify_xml(xml, gateway_cert(home))
    r = checked.receipt
    assert (r.direction, r.amount.amount, r.capital) == ("DBIT", Decimal("1004.05"), "壹仟零肆元零伍分")
    assert (r.payee.name, r.payee.account, r.payer.account) == ("深圳华为技术有限公司", SUPPLIER, OPERATING)
    assert (r.purpose, r.remittance, r.payment_id, r.client_ref) == ("货款", "合同 HT-2026-001 尾款", payment_id, "RC-1")
    assert checked.code == text(item.find(q("VerificationCode")))
    assert text(item.find(q("ReceiptNo"))) == r.number
    # the PDF: the same receipt inside, and the page shows it (pdftotext, poppler: an independent reader)
    assert document.verify_pdf(pdf, gateway_cert(home)).code == checked.code
    shown = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    for expected in ("1,004.05", "人民币壹仟零肆元零伍分", "深圳华为技术有限公司", r.number, checked.code):
        assert expected in shown


def test_the_receipt_number_and_code_are_stable(home, maker):
    payment_id, _ = pay(maker, "RC-2", "10000.00")
    first = items(maker.call(dl.receipt_query(payment_ids=(payment_id,), form="XML")))
    again = items(maker.call(dl.receipt_query(numbers=(text(first[0].find(q("ReceiptNo"))),), form="XML")))
    assert [(text(i.find(q("ReceiptNo"))), text(i.find(q("VerificationCode")))) for i in first] == \
        [(text(i.find(q("ReceiptNo"))), text(i.find(q("VerificationCode")))) for i in again]
    assert first[0].find(q("Pdf")) is None


def test_receipts_of_an_account_page_by_cursor_and_cover_credits(home, maker):
    for i in range(3):
        pay(maker, f"RP-{i}", f"{i + 1}.50")
    seen, cursor = [], ""
    while True:
        answer = maker.call(dl.receipt_query(account=OPERATING, after=cursor, limit=2, form="XML"))
        seen += [(text(i.find(q("EntryId"))), text(i.find(q("Direction")))) for i in items(answer)]
        cursor = text(answer.body.find(q("NextCursor")))
        if text(answer.body.find(q("Complete"))) == "true":
            break
    # the opening credit and three debits, each once, in EntryId order
    assert seen == [("000000000001", "CRDT")] + [(f"{n:012d}", "DBIT") for n in (2, 3, 4)]
    opening = items(maker.call(dl.receipt_query(account=OPERATING, after="", limit=1, form="XML")))[0]
    r = document.verify_xml(base64.b64decode(text(opening.find(q("Xml")))), gateway_cert(home)).receipt
    assert r.payee.account == OPERATING and r.direction == "CRDT"


def test_receipts_by_booking_date(home, maker):
    pay(maker, "RD-1", "0.50")
    today = dt.datetime.now(dt.UTC).astimezone(home.zone).date()
    answer = maker.call(dl.receipt_query(account=OPERATING, dates=(today, today), form="XML"))
    words = [document.verify_xml(base64.b64decode(text(i.find(q("Xml")))), gateway_cert(home)).receipt.capital
             for i in items(answer)]
    assert "伍角整" in words
    yesterday = today - dt.timedelta(days=1)
    assert items(maker.call(dl.receipt_query(account=OPERATING, dates=(yesterday, yesterday)))) == []


def test_unknown_or_foreign_receipts_are_not_found(home, maker, viewer):
    payment_id, _ = pay(maker, "RN-1", "1.00")
    for query in (dl.receipt_query(payment_ids=("NOPE",)), dl.receipt_query(numbers=("R999999999999",)),
                  dl.receipt_query(numbers=("X1",)), dl.receipt_query(account=OPERATING, after="999999999999")):
        answer = maker.call(query)
        assert (answer.status, answer.code) == (404, "NOT_FOUND")
    assert maker.call(dl.receipt_query(account="6222000000009999")).code == "NOT_FOUND"
    # the viewer may query OPERATING: it sees its receipts, but the maker's payment by its id only as a
    # payment of its own client (one client, one set of payments)
    assert items(viewer.call(dl.receipt_query(payment_ids=(payment_id,), form="XML")))


def _edited(xml: bytes, path: str, value: str) -> bytes:
    root = etree.fromstring(xml)
    root.find(path, {"d": "urn:directlink:v1"}).text = value
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_an_edited_receipt_fails(home, maker):
    payment_id, _ = pay(maker, "RE-1", "1004.05")
    [item] = items(maker.call(dl.receipt_query(payment_ids=(payment_id,))))
    xml, pdf = base64.b64decode(text(item.find(q("Xml")))), base64.b64decode(text(item.find(q("Pdf"))))
    cert = gateway_cert(home)
    for path, value in (("d:Amount", "9004.05"), ("d:Payee/d:Name", "某某贸易有限公司"),
                        ("d:Payee/d:Account", "6222000000000001")):
        with pytest.raises(document.ReceiptInvalid, match="signature"):
            document.verify_xml(_edited(xml, path, value), cert)
    # the PDF's page edited (its attachment untouched): the page no longer shows what was signed
    for old, new in (("1,004.05", "9,004.05"), ("深圳华为技术有限公司", "某某贸易有限公司")):
        edited = edit_page(pdf, old, new)
        assert new in document.pdf_text(edited)
        with pytest.raises(document.ReceiptInvalid, match="does not show"):
            document.verify_pdf(edited, cert)


def edit_page(pdf: bytes, old: str, new: str) -> bytes:
    """Replace text drawn on the receipt's page, as an editing program would (reportlab draws the CID font's
    text as UTF-16BE strings)."""
    reader = PdfReader(io.BytesIO(pdf))
    writer = PdfWriter(clone_from=reader)
    page = writer.pages[0]
    content = ContentStream(page.get_contents(), writer)
    hits = 0
    for operands, operator in content.operations:
        if operator == b"Tj":
            drawn = operands[0]
            shown = (drawn.get_original_bytes() if isinstance(drawn, TextStringObject) else bytes(drawn)) \
                .decode("utf-16-be")
            if old in shown:
                operands[0] = ByteStringObject(shown.replace(old, new).encode("utf-16-be"))
                hits += 1
    assert hits
    page.replace_contents(content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def receipts_of(home, maker, **query):
    answer = maker.call(dl.receipt_query(form="XML", **query))
    return [document.verify_xml(base64.b64decode(text(i.find(q("Xml")))), gateway_cert(home)).receipt
            for i in items(answer)]


def test_a_payment_to_another_bank_and_its_return_have_a_receipt_each(home, maker, gateway):
    from test_clearing import clearing
    answer = maker.call(dl.payment_order(dl.payment("RR-1", OPERATING, "1000.00", "上海某某科技有限公司",
                                                    "31001234567890", scheme="CNAPS", bank_code="102290012345",
                                                    bank_name="中国工商银行上海分行")))
    payment_id = text(answer.body.find(f"{q('PaymentStatus')}/{q('PaymentId')}"))
    assert receipts_of(home, maker, payment_ids=(payment_id,)) == []      # accepted, nothing booked yet
    clearing(gateway, scripted={"RR-*": "RETURNED"}).run_once()
    debit, credit = receipts_of(home, maker, payment_ids=(payment_id,))
    assert (debit.direction, debit.reversal, credit.direction, credit.reversal) == ("DBIT", False, "CRDT", True)
    assert (debit.payee.name, debit.payee.bank_name, debit.payee.bank_code) == \
        ("上海某某科技有限公司", "中国工商银行上海分行", "102290012345")
    # the return: the creditor's bank sent the money back to the payer
    assert (credit.payer.account, credit.payee.account, credit.amount) == ("31001234567890", OPERATING, debit.amount)
    assert credit.remittance.startswith("Return") and debit.number != credit.number


def test_incoming_money_has_a_credit_receipt(home, gateway, maker):
    from gateway import sandbox
    with gateway.engine.begin() as conn:
        sandbox.credit(conn, account=OPERATING, amount="88.80", payer_name="深圳市小部件有限公司",
                       payer_account="4000123456789", payer_bank_code="102584000004", reference="INV-42 货款",
                       now=gateway.clock(), zone=gateway.settings.zone,
                       own_cnaps_prefix=gateway.settings.own_cnaps_prefix)
    *_, last = receipts_of(home, maker, account=OPERATING, after="")
    assert (last.direction, last.payer.name, last.payer.bank_code, last.payee.account, last.capital) == \
        ("CRDT", "深圳市小部件有限公司", "102584000004", OPERATING, "捌拾捌元捌角整")
    assert last.remittance == "INV-42 货款"


def test_xmlsec1_verifies_the_receipt_and_refuses_an_edited_one(home, maker, tmp_path):
    from processes import xmlsec_valid
    payment_id, _ = pay(maker, "RX-1", "1234.56")
    [item] = items(maker.call(dl.receipt_query(payment_ids=(payment_id,), form="XML")))
    xml = base64.b64decode(text(item.find(q("Xml"))))
    cert_file = home.path(home.gateway_cert)
    assert xmlsec_valid(xml, cert_file, tmp_path)
    assert not xmlsec_valid(_edited(xml, "d:Amount", "9234.56"), cert_file, tmp_path)


@pytest.mark.key_type("rsa")
def test_an_rsa_gateway_signs_receipts_too(home, maker):
    payment_id, _ = pay(maker, "RK-1", "1.00")
    [r] = receipts_of(home, maker, payment_ids=(payment_id,))
    assert r.capital == "壹元整"


def test_receipt_verify_command_checks_both_forms_and_names_an_edit(home, maker, tmp_path):
    """End to end through the installed command: pay, settle, download both forms, verify, edit, fail."""
    from processes import cli
    payment_id, state = pay(maker, "RV-1", "1004.05")
    assert state == "SETTLED"
    [item] = items(maker.call(dl.receipt_query(payment_ids=(payment_id,))))
    xml_file, pdf_file = tmp_path / "r.xml", tmp_path / "r.pdf"
    xml_file.write_bytes(base64.b64decode(text(item.find(q("Xml")))))
    pdf_file.write_bytes(base64.b64decode(text(item.find(q("Pdf")))))
    for f in (xml_file, pdf_file):
        done = cli("receipt", "verify", str(f), "--home", str(home.home))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "OK receipt" in done.stdout and "1004.05 (壹仟零肆元零伍分)" in done.stdout
    edited_xml, edited_pdf = tmp_path / "e.xml", tmp_path / "e.pdf"
    edited_xml.write_bytes(_edited(xml_file.read_bytes(), "d:Payee/d:Name", "某某贸易有限公司"))
    edited_pdf.write_bytes(edit_page(pdf_file.read_bytes(), "1,004.05", "9,004.05"))
    cert = str(home.path(home.gateway_cert))
    for f, why in ((edited_xml, "signature does not verify"), (edited_pdf, "CNY 1,004.05")):
        done = cli("receipt", "verify", str(f), "--gateway-cert", cert)
        assert done.returncode == 1 and "FAILED" in done.stdout and why in done.stdout, done.stdout + done.stderr


def test_a_receipt_still_verifies_after_the_gateway_certificate_expired(home, maker, monkeypatch):
    """Checked at its booking time: years later, with the certificate long expired, it still verifies;
    a receipt claiming a booking time outside the certificate's validity does not."""
    payment_id, _ = pay(maker, "RT-1", "1.00")
    [item] = items(maker.call(dl.receipt_query(payment_ids=(payment_id,), form="XML")))
    xml, cert = base64.b64decode(text(item.find(q("Xml")))), gateway_cert(home)
    later = cert.not_valid_after_utc + dt.timedelta(days=3650)

    class Later(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return later.astimezone(tz) if tz else later.replace(tzinfo=None)

    from gateway.protocol import signing
    monkeypatch.setattr(signing.dt, "datetime", Later)
    assert document.verify_xml(xml, cert).receipt.amount.amount == Decimal("1.00")
    with pytest.raises(document.ReceiptInvalid, match="validity"):
        document.verify_xml(_edited(xml, "d:Booked", "2001-01-01T00:00:00+08:00"), cert)
