"""The electronic receipt document (schemas/receipt.xsd) and its offline check.

The gateway renders a Receipt with `render` and signs it with its key and the profile of every Response; the
PDF form (gateway/receipt_pdf.py) prints the same content and carries the signed document inside as the
attached file receipt.xml. `verify_xml` and `verify_pdf` check either form with nothing but the gateway's
certificate: the signature, then (PDF) that the printed text shows what was signed.
"""
from __future__ import annotations

import datetime as dt
import io
import threading
from dataclasses import dataclass

from lxml import etree

from domain.errors import SignatureRejected, XmlRejected
from domain.money import parse_amount
from domain.receipts import Receipt, ReceiptParty, capital_amount, figures, verification_code
from gateway.protocol import signing
from gateway.protocol.messages import stamp
from gateway.protocol.xmlsafe import NS, parse, q, text
from schemas import SCHEMA_DIR, compile_schema

VERSION = "1"
ATTACHMENT = "receipt.xml"
MAX_BYTES = 1024 * 1024
_local = threading.local()


class ReceiptInvalid(Exception):
    """A receipt that does not check out: what is wrong, for the person holding it."""


@dataclass(frozen=True)
class Checked:
    receipt: Receipt
    code: str                  # the verification code of the signed content
    signed_by: str             # the signing certificate's SHA-256 fingerprint


def render(r: Receipt, bank: str, zone: dt.tzinfo) -> etree._Element:
    """The unsigned Receipt document."""
    root = etree.Element(q("Receipt"), nsmap={None: NS}, version=VERSION)

    def add(parent: etree._Element, tag: str, value: str, **attributes: str) -> etree._Element:
        el = etree.SubElement(parent, q(tag), attributes)
        el.text = value
        return el

    add(root, "ReceiptNo", r.number)
    add(root, "Bank", bank)
    add(root, "Account", r.account)
    add(root, "EntryId", f"{r.entry_id:012d}")
    add(root, "Direction", r.direction)
    for tag, party in (("Payer", r.payer), ("Payee", r.payee)):
        el = etree.SubElement(root, q(tag))
        add(el, "Name", party.name)
        add(el, "Account", party.account)
        if party.bank_name:
            add(el, "BankName", party.bank_name)
        if party.bank_scheme:
            add(el, "BankCode", party.bank_code, scheme=party.bank_scheme)
    add(root, "Amount", r.amount.text(), currency=r.amount.currency)
    add(root, "AmountInWords", r.capital)
    add(root, "ValueDate", r.value_date.isoformat())
    add(root, "Booked", stamp(r.booked, zone))
    add(root, "Purpose", r.purpose)
    add(root, "Remittance", r.remittance)
    add(root, "BankRef", r.bank_ref)
    for tag, value in (("PaymentId", r.payment_id), ("ClientRef", r.client_ref), ("EndToEndId", r.end_to_end_id)):
        if value:
            add(root, tag, value)
    add(root, "Reversal", "true" if r.reversal else "false")
    return root


def code_of(root: etree._Element) -> str:
    """The verification code of a Receipt document: over its exclusive C14N without any ds:Signature."""
    unsigned = etree.fromstring(etree.tostring(root))
    for sig in unsigned.findall(f"{{{signing.DS}}}Signature"):
        unsigned.remove(sig)
    return verification_code(etree.tostring(unsigned, method="c14n", exclusive=True, with_comments=False))


def parse_receipt(root: etree._Element) -> Receipt:
    """A Receipt document (valid against schemas/receipt.xsd) as the domain object."""
    def val(el: etree._Element, name: str) -> str:
        return text(el.find(q(name))) or ""

    def party(tag: str) -> ReceiptParty:
        el = root.find(q(tag))
        bank = el.find(q("BankCode"))
        return ReceiptParty(val(el, "Name"), val(el, "Account"), val(el, "BankName"),
                            "" if bank is None else text(bank), "" if bank is None else bank.get("scheme", ""))

    amount = root.find(q("Amount"))
    return Receipt(
        number=val(root, "ReceiptNo"), account=val(root, "Account"), entry_id=int(val(root, "EntryId")),
        direction=val(root, "Direction"), payer=party("Payer"), payee=party("Payee"),
        amount=parse_amount(text(amount), amount.get("currency", "")),
        value_date=dt.date.fromisoformat(val(root, "ValueDate")),
        booked=dt.datetime.fromisoformat(val(root, "Booked")), purpose=val(root, "Purpose"),
        remittance=val(root, "Remittance"), bank_ref=val(root, "BankRef"),
        payment_id=val(root, "PaymentId") or None, client_ref=val(root, "ClientRef") or None,
        end_to_end_id=val(root, "EndToEndId") or None, reversal=val(root, "Reversal") in ("true", "1"))


def _schema() -> etree.XMLSchema:
    xsd: etree.XMLSchema | None = getattr(_local, "schema", None)
    if xsd is None:
        path = SCHEMA_DIR.joinpath("receipt.xsd")
        with path.open("rb") as fh:
            doc = etree.parse(fh, etree.XMLParser(no_network=True, resolve_entities=False), base_url=str(path))
        xsd = _local.schema = compile_schema(doc)
    return xsd


def verify_xml(data: bytes, gateway_cert: signing.x509.Certificate) -> Checked:
    """Check a signed receipt document against the gateway's certificate; ReceiptInvalid says why not."""
    try:
        root = parse(data, MAX_BYTES)
    except XmlRejected as err:
        raise ReceiptInvalid(f"not a receipt document: {err.detail}") from None
    if root.tag != q("Receipt") or not _schema().validate(root):
        raise ReceiptInvalid("not a receipt document (schemas/receipt.xsd)")
    try:
        # The certificate must have been valid when the entry was booked, not today: receipts are kept for
        # years. (Without a trusted timestamp that moment is the one the receipt states.)
        booked = dt.datetime.fromisoformat(text(root.find(q("Booked"))) or "")
    except ValueError:
        raise ReceiptInvalid("the receipt's booking time is unreadable") from None
    try:
        signed = signing.verify(root, gateway_cert, at=booked).signed
    except SignatureRejected as err:   # verify turns whatever a forged document provokes into this
        raise ReceiptInvalid(f"the gateway's signature does not verify: {err.detail}") from None
    try:
        receipt = parse_receipt(signed)
    except (XmlRejected, ValueError) as err:
        raise ReceiptInvalid(f"the receipt's content is unreadable: {err}") from None
    if capital_amount(receipt.amount) != text(signed.find(q("AmountInWords"))):
        raise ReceiptInvalid("the amount in words does not match the amount in figures")
    return Checked(receipt, code_of(signed), signing.fingerprint(gateway_cert))


def printed_lines(r: Receipt, code: str) -> list[str]:
    """What the printed receipt must show of the signed content, each as it is printed (gateway/receipt_pdf.py
    prints them so): an edited amount or payee in the PDF's text no longer matches."""
    return [r.number, code, f"{r.amount.currency} {figures(r.amount)}", r.capital, r.payer.name, r.payer.account,
            r.payee.name, r.payee.account]


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def verify_pdf(data: bytes, gateway_cert: signing.x509.Certificate) -> Checked:
    """Check a printable receipt: the signed document inside it, then that every page's text shows what the
    gateway signed (amount in figures and in words, payer, payee, number, code)."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError
    try:
        reader = PdfReader(io.BytesIO(data))
        attached = reader.attachments.get(ATTACHMENT)
        shown = pdf_text(data)
    except (PyPdfError, ValueError, KeyError, TypeError) as err:
        raise ReceiptInvalid(f"not a readable PDF: {err}") from None
    if not attached:
        raise ReceiptInvalid(f"the PDF carries no signed {ATTACHMENT}: not a receipt of this gateway")
    checked = verify_xml(attached[0], gateway_cert)
    flat = "".join(shown.split())
    missing = [line for line in printed_lines(checked.receipt, checked.code) if "".join(line.split()) not in flat]
    if missing:
        raise ReceiptInvalid("the printed receipt does not show what the gateway signed: "
                             + "; ".join(missing))
    return checked


def is_pdf(data: bytes) -> bool:
    return data.lstrip()[:5] == b"%PDF-"


def verify_file(data: bytes, gateway_cert: signing.x509.Certificate) -> Checked:
    return verify_pdf(data, gateway_cert) if is_pdf(data) else verify_xml(data, gateway_cert)

