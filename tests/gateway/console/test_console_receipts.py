"""Receipts in the console, in Chromium: a payment's page lists its debit receipt and its return's credit
receipt (number, figures, 大写, booking time); both downloads are judged by the offline checks that
`directlink receipt verify` runs (signature against the gateway's certificate; the PDF's page against its
attached signed XML); the statements page links each entry's receipt; an operator without a query grant on
the account is refused both the page and the files. SQLite: the console only reads."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from processes import cli
from sqlalchemy import select
from test_clearing import clearing

from console.console_kit import shot
from console.test_console_tracker import OPERATING, sign_in
from gateway import directory
from gateway.protocol import client as dl
from gateway.protocol import receipts as document
from gateway.protocol.xmlsafe import q, text
from gateway.storage.tables import audit_log


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'gateway.db'}"


def returned_payment(console) -> str:
    """1,000.00 to another bank, sent back by it: a debit and a return credit on the operating account."""
    answer = console.xml("maker").call(dl.payment_order(dl.payment(
        "RC-1", OPERATING, "1000.00", "上海某某科技有限公司", "31001234567890", scheme="CNAPS",
        bank_code="102290012345", bank_name="中国工商银行上海分行")))
    payment_id = text(answer.body.find(f"{q('PaymentStatus')}/{q('PaymentId')}"))
    clearing(console.gateway, scripted={"RC-*": "RETURNED"}).run_once()
    return payment_id


def download(page, selector: str) -> tuple[str, bytes]:
    with page.expect_download() as got:
        page.click(selector)
    return got.value.suggested_filename, Path(got.value.path()).read_bytes()


def test_payment_page_shows_and_downloads_its_receipts(console, tmp_path):
    payment_id = returned_payment(console)
    cert = x509.load_pem_x509_certificate(console.home.path(console.home.gateway_cert).read_bytes())
    page = sign_in(console, "viewer", "zh")
    page.goto(f"{console.url}/console/payments/{payment_id}")
    assert page.inner_text("#receipts thead").split("\t")[0].strip() == "回单编号"   # Chinese by default
    rows = page.eval_on_selector_all("#receipts tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.innerText))")
    assert [r[1:4] for r in rows] == [["借方", "1,000.00 CNY", "壹仟元整"], ["退汇入账", "1,000.00 CNY", "壹仟元整"]]
    shot(page, "payment-receipts-zh")
    numbers = [r[0] for r in rows]
    for n, number in enumerate(numbers):
        row = f"#receipts tbody tr[data-receipt='{number}']"
        name, xml = download(page, f"{row} a[data-form='xml']")
        checked = document.verify_xml(xml, cert)
        assert name == f"{number}.xml" and checked.receipt.number == number
        assert (checked.receipt.payment_id, checked.receipt.direction) == (payment_id, ("DBIT", "CRDT")[n])
        assert checked.receipt.booked.astimezone(console.gateway.settings.zone).strftime("%Y-%m-%d %H:%M:%S") == rows[n][4]
        name, pdf = download(page, f"{row} a[data-form='pdf']")
        assert name == f"{number}.pdf" and document.verify_pdf(pdf, cert).code == checked.code
        (tmp_path / name).write_bytes(pdf)   # and the command a client runs, as a real process
        done = cli("receipt", "verify", str(tmp_path / name), "--home", str(console.home.home))
        assert done.returncode == 0 and number in done.stdout, done.stdout + done.stderr
    with console.gateway.engine.connect() as conn:
        taken = conn.execute(select(audit_log.c.operator_id, audit_log.c.detail)
                             .where(audit_log.c.code == "RECEIPT_DOWNLOADED").order_by(audit_log.c.id)).all()
    assert [tuple(r) for r in taken] == [("viewer", f"{f} of {n}") for n in numbers for f in ("xml", "pdf")]

    # The statements page: a receipt per entry, the same receipt as the payment page's.
    page.goto(f"{console.url}/console/statements?account={OPERATING}")
    links = page.eval_on_selector_all("#entries tbody a[data-form='xml']", "as => as.map(a => a.href)")
    assert len(links) == page.locator("#entries tbody tr").count() >= 2
    shot(page, "statement-receipts-zh")
    name, xml = download(page, "#entries tbody tr:last-child a[data-form='xml']")
    assert name == f"{numbers[-1]}.xml" and document.verify_xml(xml, cert).receipt.reversal


def test_an_operator_without_a_query_grant_is_refused(console):
    payment_id = returned_payment(console)
    page = sign_in(console, "viewer", "en")
    page.goto(f"{console.url}/console/payments/{payment_id}")
    href = page.get_attribute("#receipts tbody tr a[data-form='pdf']", "href")
    assert page.request.get(console.url + href).status == 200
    with console.gateway.engine.begin() as conn:   # the viewer may still pay from the account, not query it
        directory.set_grant(conn, "DEMO", "viewer", OPERATING, {"pay"}, None, None, dt.datetime.now(dt.UTC))
    assert page.goto(f"{console.url}/console/payments/{payment_id}").status == 404
    for form in ("xml", "pdf"):
        assert page.request.get(console.url + href.replace(".pdf", f".{form}")).status == 404
    assert page.request.get(f"{console.url}/console/receipts/{OPERATING}/1.exe").status == 404
    page.context.clear_cookies()   # signed out: to the sign-in page, no file
    answer = page.request.get(console.url + href, max_redirects=0)
    assert answer.status == 303 and "/console/signin" in answer.headers["location"]
