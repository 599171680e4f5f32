"""Write Kingdee payment batches from domain objects: the inverse of bills.py.

The gateway never writes payment files; these exist so the conformance kit can round-trip the readers
(read(write(batch)) == batch) and so ERP teams and tests can produce sample batches in any encoding.
"""
from __future__ import annotations

import json
from decimal import Decimal

from lxml import etree

from adapters.base import PaymentFile
from adapters.kingdee.bills import FORM_ID, THIS_BANK
from adapters.kingdee.reports import beijing
from domain.models import PaymentInstruction


def bill(ins: PaymentInstruction) -> dict[str, str]:
    """One instruction as a bill's fields, in the documented order; absent optionals are left out."""
    bank = ins.creditor.bank
    out = {"fpayunique": ins.client_ref}
    if ins.end_to_end_id:
        out["fbizrefno"] = ins.end_to_end_id
    out |= {"fpayeracct": ins.debtor_account, "fpayeename": ins.creditor.name, "fpayeeacct": ins.creditor.account}
    if ins.creditor.bank_name:
        out["fpayeebank"] = ins.creditor.bank_name
    if bank.scheme == "BIC":
        out["fswiftcode"] = bank.code
    else:
        out["frecbanknumber"] = THIS_BANK if bank.scheme == "INTERNAL" else bank.code
    out |= {"famount": ins.amount.text(), "fcurrency": ins.amount.currency, "fusage": ins.purpose}
    if ins.remark:
        out["fdescription"] = ins.remark
    if ins.requested_date:
        out["fexpectdealtime"] = ins.requested_date.isoformat()
    if ins.urgency == "URGENT":
        out["fisurgent"] = "true"
    return out


def header(batch: PaymentFile) -> dict[str, str]:
    """The batch header with its control sums, computed from the instructions it holds."""
    instructions = [t.instruction for t in batch.transactions]
    if any(i is None for i in instructions):
        raise ValueError("only transactions with an instruction can be written")
    out = {"fbatchseqid": batch.message_id}
    if batch.created:
        out["fcreatetime"] = beijing(batch.created)
    total = sum((i.amount.amount for i in instructions), Decimal(0))
    return out | {"ftotalcount": str(len(instructions)), "ftotalamount": format(total, "f")}


def write_json(batch: PaymentFile, encoding: str = "utf-8") -> bytes:
    """kingdee.json bytes; a GBK/GB18030 file carries the fencoding declaration as its first member."""
    doc: dict = {}
    if encoding.lower() not in ("utf-8", "utf8"):
        doc["fencoding"] = encoding.upper()
    doc |= {"formid": FORM_ID, **header(batch), "data": [bill(t.instruction) for t in batch.transactions]}
    return json.dumps(doc, ensure_ascii=False, indent=2).encode(encoding)


def write_xml(batch: PaymentFile, encoding: str = "GB18030") -> bytes:
    """kingdee.xml bytes, with the XML declaration naming the encoding."""
    root = etree.Element(FORM_ID)
    for key, value in header(batch).items():
        etree.SubElement(root, key).text = value
    data = etree.SubElement(root, "data")
    for t in batch.transactions:
        el = etree.SubElement(data, "bill")
        for key, value in bill(t.instruction).items():
            etree.SubElement(el, key).text = value
    return etree.tostring(root, xml_declaration=True, encoding=encoding, pretty_print=True)
