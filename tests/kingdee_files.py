"""Kingdee-style payment batches (adapters/kingdee) built for tests: bills from the demo's operating account,
a batch with its totals, and the batch as the JSON or XML a Kingdee ERP writes."""
from __future__ import annotations

import json
from decimal import Decimal

from conftest import OPERATING, SUPPLIER
from lxml import etree


def bill(ref: str, amount: str, **fields) -> dict:
    out = {"fpayunique": ref, "fpayeracct": OPERATING, "fpayeename": "供应商甲", "fpayeeacct": SUPPLIER,
           "frecbanknumber": "本行", "famount": amount, "fcurrency": "CNY", "fusage": "货款"} | fields
    return {k: v for k, v in out.items() if v is not None}


def batch(batch_id: str, *bills: dict, total: str | None = None, count: int | None = None) -> dict:
    amounts = sum(Decimal(b["famount"]) for b in bills)
    return {"formid": "bei_bankpaybill", "fbatchseqid": batch_id, "fcreatetime": "2026-11-25 09:30:00",
            "ftotalcount": len(bills) if count is None else count,
            "ftotalamount": total or format(amounts, "f"), "data": list(bills)}


def as_json(doc: dict, encoding: str = "utf-8") -> bytes:
    if encoding.lower() != "utf-8":
        doc = {"fencoding": encoding} | doc            # the declaration must be the first member
    return json.dumps(doc, ensure_ascii=False, indent=1).encode(encoding)


def as_xml(doc: dict, encoding: str = "UTF-8") -> bytes:
    root = etree.Element("bei_bankpaybill")
    for key, value in doc.items():
        if key == "data":
            data = etree.SubElement(root, "data")
            for b in value:
                el = etree.SubElement(data, "bill")
                for k, v in b.items():
                    etree.SubElement(el, k).text = str(v)
        elif key != "formid":                           # XML says it with the root element
            etree.SubElement(root, key).text = str(value)
    return etree.tostring(root, xml_declaration=True, encoding=encoding)
