"""Judges, fixture files and gateway plumbing for tests/adapters/test_adapter_iso20022.py, independent of the
adapters under test.

Judges: the official XSDs (schemas/iso20022), compiled here with lxml directly, not through the adapters'
loader; pyiso20022's typed models (strict xsdata parse, pyiso20022's field validator, and a re-serialisation
that must give back the same elements in the same order). Files: sepaxml writes pain.001 as an ERP would;
cgi_file writes what SAP's DMEE trees and Oracle's templates add for China (Othr/Id accounts, CNAPS).
"""
from __future__ import annotations

import base64
import datetime as dt
import importlib
import importlib.util
from decimal import Decimal
from functools import cache
from pathlib import Path

import pyiso20022
from conftest import OPERATING, SUPPLIER, snapshot
from lxml import etree
from lxml.builder import ElementMaker
from sepaxml import SepaTransfer
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.parsers.config import ParserConfig
from xsdata.formats.dataclass.serializers import XmlSerializer

from gateway import directory
from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q, text

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas" / "iso20022"
NS = "urn:iso:std:iso:20022:tech:xsd:"
DEBTOR_IBAN, CREDITOR_IBAN = "DE89370400440532013000", "DE02120300000000202051"
FOREIGN_IBAN, FOREIGN_BIC, OWN_BIC = "GB29NWBK60161331926819", "NWBKGB2LXXX", "DLNKCNSHXXX"
STRICT = ParserConfig(fail_on_unknown_properties=True, fail_on_unknown_attributes=True,
                      fail_on_converter_warnings=True)


@cache
def official_xsd(message: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / f"{message}.xsd")))


def assert_xsd_valid(data: bytes, message: str) -> None:
    xsd = official_xsd(message)
    assert xsd.validate(etree.fromstring(data)), xsd.error_log


@cache
def pyiso_validator():
    # pyiso20022.tools/__init__ imports pandas for its Excel export; the validator needs the stdlib only.
    path = Path(pyiso20022.__file__).parent / "tools" / "validation.py"
    spec = importlib.util.spec_from_file_location("pyiso20022_validation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def typed(data: bytes, message: str):
    """Parse with pyiso20022's model of `message`, strictly; require its validator and a faithful round trip
    (xsdata writes each type's sequence order, so a misplaced element fails)."""
    module = importlib.import_module(f"pyiso20022.{message[:4]}.{message.replace('.', '_')}")
    doc = XmlParser(config=STRICT).from_bytes(data, module.Document)
    result = pyiso_validator().validate_message(doc)
    assert result.is_valid, str(result)
    back = XmlSerializer().render(doc, ns_map={None: NS + message}).encode()
    canon = [etree.tostring(etree.fromstring(b), method="c14n", exclusive=True)   # xsdata writes UTC as Z
             for b in (data.replace(b"+00:00<", b"Z<"), back)]
    assert canon[0] == canon[1]
    return doc


def code(value) -> str:
    """An xsdata field that is an enum in one model version and a plain string in another."""
    return str(getattr(value, "value", value))


def tx_statuses(data: bytes, message: str) -> list[tuple]:
    """(OrgnlEndToEndId, TxSts, the reason code) of each TxInfAndSts of a pain.002."""
    n = {"p": NS + message}
    return [(tx.findtext("p:OrgnlEndToEndId", namespaces=n), tx.findtext("p:TxSts", namespaces=n),
             tx.findtext("p:StsRsnInf/p:Rsn/*", namespaces=n))
            for tx in etree.fromstring(data).iterfind(".//p:TxInfAndSts", n)]


def sepa_file(schema: str, payments: list[dict], debtor: str = DEBTOR_IBAN) -> bytes:
    """A pain.001 as the ERP side writes it (sepaxml, validated against its own bundled XSD)."""
    sepa = SepaTransfer({"name": "Demo Trading", "IBAN": debtor, "BIC": OWN_BIC, "batch": True,
                         "currency": "EUR"}, schema=schema, clean=True)
    for p in payments:
        sepa.add_payment({"execution_date": dt.date.today(), "description": "Invoice", **p})
    return sepa.export(validate=True)


def _agent(E, bic_tag: str, t: dict) -> list:
    fin = []
    if t.get("bic"):
        fin.append(E(bic_tag, t["bic"]))
    if t.get("cnaps"):
        system = t.get("system", "CNAPS")   # Cd is an ISO code of at most 5 letters, Prtry free text
        fin.append(E.ClrSysMmbId(E.ClrSysId(E.Cd(system) if len(system) <= 5 else E.Prtry(system)),
                                 E.MmbId(t["cnaps"])))
    if t.get("bank_name"):
        fin.append(E.Nm(t["bank_name"]))
    return fin


def cgi_file(version="pain.001.001.03", txs=None, *, nb=None, ctrl=None, block_nb=None, debtor=OPERATING,
             priority=None, method="TRF", requested="2026-11-25") -> bytes:
    """A CNY pain.001 with Othr/Id accounts; each tx a dict: e2e, amount, ccy, bic, cnaps, system,
    bank_name, name, account, ustrd (list), priority."""
    ns = NS + version
    E = ElementMaker(namespace=ns, nsmap={None: ns})
    bic_tag = "BIC" if version.endswith("03") else "BICFI"
    txs = txs if txs is not None else [{"e2e": "T-1", "amount": "10.00"}]
    body = []
    for t in txs:
        tx = E.CdtTrfTxInf(E.PmtId(E.EndToEndId(t["e2e"])))
        if t.get("priority"):
            tx.append(E.PmtTpInf(E.InstrPrty(t["priority"])))
        tx.append(E.Amt(E.InstdAmt(t["amount"], Ccy=t.get("ccy", "CNY"))))
        fin = _agent(E, bic_tag, t)
        if fin:
            tx.append(E.CdtrAgt(E.FinInstnId(*fin)))
        tx.extend([E.Cdtr(E.Nm(t.get("name", "ACME Supplies"))),
                   E.CdtrAcct(E.Id(E.Othr(E.Id(t.get("account", SUPPLIER)))))])
        if t.get("ustrd"):
            tx.append(E.RmtInf(*[E.Ustrd(u) for u in t["ustrd"]]))
        body.append(tx)
    total = str(sum(Decimal(t["amount"]) for t in txs))
    block = E.PmtInf(E.PmtInfId("PI-1"), E.PmtMtd(method), E.NbOfTxs(block_nb or str(len(txs))))
    if priority:
        block.append(E.PmtTpInf(E.InstrPrty(priority)))
    block.append(E.ReqdExctnDt(requested) if version.endswith("03") else E.ReqdExctnDt(E.Dt(requested)))
    block.extend([E.Dbtr(E.Nm("Demo Trading")), E.DbtrAcct(E.Id(E.Othr(E.Id(debtor)))),
                  E.DbtrAgt(E.FinInstnId(E(bic_tag, OWN_BIC))), *body])
    head = E.GrpHdr(E.MsgId("SAP-F110-0001"), E.CreDtTm("2026-11-25T09:30:00"),
                    E.NbOfTxs(nb or str(len(txs))), E.CtrlSum(ctrl or total),
                    E.InitgPty(E.Nm("Demo Trading")))
    return etree.tostring(E.Document(E.CstmrCdtTrfInitn(head, block)), xml_declaration=True, encoding="UTF-8")


# ---- talking to the gateway -----------------------------------------------------------------------------

def submit(maker, data: bytes, fmt: str, encoding: str = "xml") -> dl.Answer:
    inner = etree.fromstring(data) if encoding == "xml" else base64.b64encode(data).decode("ascii")
    return maker.call(dl.E.DocumentSubmit(dl.E.Document(inner, format=fmt, encoding=encoding)))


def outcomes(answer: dl.Answer) -> list[tuple]:
    assert (answer.status, answer.code) == (200, "OK"), answer.detail
    found = []
    for s in answer.body.iterfind(q("PaymentStatus")):
        reason = s.find(q("Reason"))
        found.append((text(s.find(q("ClientRef"))), text(s.find(q("State"))), text(s.find(q("PaymentId"))),
                      None if reason is None else reason.get("code")))
    return found


def money_of(gateway) -> dict[str, tuple[int, int]]:
    """Account -> (booked, held) in minor units."""
    return {number: (booked, held) for number, booked, held, _ in snapshot(gateway.engine)["accounts"]}


def without_messages(gateway) -> dict:
    return {k: v for k, v in snapshot(gateway.engine).items() if k != "messages"}


def open_sepa_accounts(gateway) -> None:
    """EUR accounts whose numbers are the IBANs sepaxml writes (it can write nothing else)."""
    now = gateway.clock()
    with gateway.engine.begin() as conn:
        directory.open_account(conn, DEBTOR_IBAN, "DEMO", "Demo Trading EUR", "EUR", "1000.00", now,
                               now.date())
        directory.open_account(conn, CREDITOR_IBAN, "ACME", "ACME EUR", "EUR", None, now, now.date())
        directory.set_grant(conn, "DEMO", "maker", DEBTOR_IBAN, {"query", "pay"}, None, None, now)
