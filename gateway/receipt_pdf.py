"""The printable receipt: one A4 page an accountant attaches to the voucher.

reportlab draws it with its built-in Chinese CID font STSong-Light (the reader's own copy of the font shows
it, so nothing is downloaded or embedded), a QR code holding the receipt number and verification code, and
the signed receipt document attached as receipt.xml, which `directlink receipt verify` checks against what
the page shows (gateway/protocol/receipts.py, printed_lines: each of those is printed here as it stands).
"""
from __future__ import annotations

import datetime as dt
import io

from pypdf import PdfReader, PdfWriter
from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from domain.receipts import Receipt, ReceiptParty, figures
from gateway.protocol.messages import stamp
from gateway.protocol.receipts import ATTACHMENT

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))
_WIDTH, _HEIGHT = A4
_LEFT, _LABEL_WIDTH, _RIGHT = 48.0, 150.0, _WIDTH - 48.0
_SIZE, _LEADING = 10.0, 14.0
_QR = 96.0


def qr_payload(number: str, code: str) -> str:
    return f"DIRECTLINK-RECEIPT:{number}:{code}"


def _bank(party: ReceiptParty) -> str:
    code = f" ({party.bank_scheme} {party.bank_code})" if party.bank_code else ""
    return f"{party.bank_name}{code}" or "-"


def render(r: Receipt, code: str, bank: str, zone: dt.tzinfo, signed_xml: bytes) -> bytes:
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=True)
    c.setTitle(f"{bank} 电子回单 {r.number}")
    c.setAuthor(bank)
    y = _HEIGHT - 60
    c.setFont(FONT, 18)
    c.drawCentredString(_WIDTH / 2, y, f"{bank} 电子回单")
    y -= 18
    c.setFont(FONT, _SIZE)
    c.drawCentredString(_WIDTH / 2, y, "Electronic receipt / " + ("借方 Debit" if r.direction == "DBIT" else "贷方 Credit")
                        + (" / 退回 Return" if r.reversal else ""))
    y -= 28
    rows = [
        ("回单编号 Receipt No.", r.number),
        ("验证码 Verification", code),
        ("付款人 Payer", r.payer.name or "-"),
        ("付款账号 Payer account", r.payer.account or "-"),
        ("付款行 Payer bank", _bank(r.payer)),
        ("收款人 Payee", r.payee.name or "-"),
        ("收款账号 Payee account", r.payee.account or "-"),
        ("收款行 Payee bank", _bank(r.payee)),
        ("金额 Amount", f"{r.amount.currency} {figures(r.amount)}"),
        ("金额大写 In words", ("人民币" if r.amount.currency == "CNY" else f"{r.amount.currency} ") + r.capital),
        ("用途 Purpose", r.purpose or "-"),
        ("附言 Remittance", r.remittance or "-"),
        ("起息日 Value date", r.value_date.isoformat()),
        ("记账时间 Booked", stamp(r.booked, zone)),
        ("账户 Account / 流水 EntryId", f"{r.account} / {r.entry_id:012d}"),
        ("业务参考号 Bank ref.", r.bank_ref),
        ("支付编号 Payment", r.payment_id or "-"),
        ("客户参考号 Client ref.", r.client_ref or "-"),
        ("端到端编号 EndToEndId", r.end_to_end_id or "-"),
    ]
    top = y + _LEADING - 3
    for label, value in rows:
        lines = simpleSplit(value, FONT, _SIZE, _RIGHT - _LEFT - _LABEL_WIDTH - 8)
        c.drawString(_LEFT + 4, y, label)
        for line in lines or ["-"]:
            c.drawString(_LEFT + _LABEL_WIDTH + 4, y, line)
            y -= _LEADING
        c.line(_LEFT, y + _LEADING - 3, _RIGHT, y + _LEADING - 3)
    c.rect(_LEFT, y + _LEADING - 3, _RIGHT - _LEFT, top - (y + _LEADING - 3))
    c.line(_LEFT + _LABEL_WIDTH, y + _LEADING - 3, _LEFT + _LABEL_WIDTH, top)
    widget = QrCodeWidget(qr_payload(r.number, code))
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(_QR, _QR, transform=[_QR / (x1 - x0), 0, 0, _QR / (y1 - y0), 0, 0])
    drawing.add(widget)
    y -= _QR + 4
    renderPDF.draw(drawing, c, _LEFT, y)
    c.setFont(FONT, 8)
    for i, note in enumerate([
            f"本回单由{bank}以电子签名出具，签名文件 {ATTACHMENT} 附于本 PDF 内。",
            "This receipt is signed by the bank; the signed document is attached to this PDF as " + ATTACHMENT + ".",
            "校验 Check: directlink receipt verify <file>"]):
        c.drawString(_LEFT + _QR + 12, y + _QR - 20 - i * 12, note)
    c.showPage()
    c.save()
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(buf.getvalue())))
    writer.add_attachment(ATTACHMENT, signed_xml)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
