"""Statement readers (adapters/*/..._read.py, reconcile/native.py): our writers' output reads back to the
statement's entries, other banks' files read, bad files are refused with DocumentInvalid, and statements
from a real gateway (internal payments and incoming credits) read back equal to its ledger."""
from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal
from pathlib import Path

import mt940
import pytest
from conftest import OPERATING, PAYROLL, SUPPLIER
from lxml import etree
from reconcile_scenario import OWN, statement

from adapters.base import AccountFacts, DocumentInvalid
from adapters.registry import adapters
from adapters.swift import common
from domain.models import Statement
from gateway import sandbox
from gateway.protocol import client as dl
from gateway.protocol.messages import render_statement
from reconcile import statement_files
from reconcile.native import read_native

FACTS = AccountFacts(OWN, "CNY", "演示贸易有限公司", "DirectLink Demo Bank")
FORMATS = ["mt940", "bai2", "camt.053.001.02", "camt.053.001.08", "camt.052.001.08", "kingdee.statement.json"]


def writer(fmt):
    return next(a.statement_writers[fmt] for a in adapters().values() if fmt in a.statement_writers)


def reader(fmt):
    return statement_files.readers()[fmt]


def native_bytes(st: Statement) -> bytes:
    return etree.tostring(render_statement(st, dt.timezone(dt.timedelta(hours=8))), xml_declaration=True,
                          encoding="UTF-8")


def _refs(e) -> set[str]:
    return {r for r in (e.client_ref, e.end_to_end_id) if r}


def assert_same_entries(fmt: str, back: Statement, st: Statement) -> None:
    """What each format carries must come back; where a format folds text, compare the folded text."""
    assert (back.account, back.currency, back.opening, back.closing) == (st.account, st.currency, st.opening,
                                                                         st.closing)
    assert len(back.entries) == len(st.entries)
    text_only = fmt in ("mt940", "bai2")
    for a, b in zip(st.entries, back.entries):
        assert (b.entry_id, b.direction, b.amount, b.balance_after, b.value_date, b.reversal, b.bank_ref) == \
            (a.entry_id, a.direction, a.amount, a.balance_after, a.value_date, a.reversal, a.bank_ref)
        assert common.booking_day(b) == common.booking_day(a)
        party_a, party_b = a.counterparty, b.counterparty
        assert (party_a is None) == (party_b is None)
        if party_a is not None:
            assert party_b.account == party_a.account
            fold = (lambda s: common.fold(s, common.SWIFT_X - {"/", "?"})) if text_only else (lambda s: s)
            assert party_b.name == fold(party_a.name) or (fmt == "bai2" and party_b.name == common.fold(
                party_a.name, common.PRINTABLE_ASCII - {"/"}))
            if fmt != "bai2":                              # BAI2 carries no bank codes of counterparties
                assert party_b.bank == party_a.bank
        if fmt.startswith("camt"):
            assert _refs(b) == _refs(a) and b.narrative == a.narrative
        elif fmt == "mt940":
            assert b.client_ref == a.client_ref
            assert b.end_to_end_id == (a.end_to_end_id and a.end_to_end_id.replace("/", "-"))
        else:
            assert (b.client_ref, b.end_to_end_id) == (a.client_ref, a.end_to_end_id)
        if not text_only:
            assert b.narrative == a.narrative


@pytest.mark.parametrize("fmt", [*FORMATS, "directlink"])
def test_written_statement_reads_back(fmt):
    st = statement()
    data = native_bytes(st) if fmt == "directlink" else writer(fmt)(st, FACTS)
    assert statement_files.detect(data) == fmt
    assert_same_entries(fmt, reader(fmt)(data), st)


@pytest.mark.parametrize("fmt", [*FORMATS, "directlink"])
def test_bad_files_are_refused_as_documents(fmt):
    st = statement()
    good = native_bytes(st) if fmt == "directlink" else writer(fmt)(st, FACTS)
    hostile = [b"", b"\x00" * 8, bytes(range(256)), b"<a/>", b"{}", b":20:X\r\n-\r\n",
               b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>']
    hostile += [good[:cut] for cut in (len(good) // 3, len(good) // 2, len(good) - 30)]
    for data in hostile:
        with pytest.raises(DocumentInvalid):
            reader(fmt)(data)
    # a changed amount no longer adds up to the stated closing balance (or the control totals)
    tampered = good.replace(b"9985", b"9986", 1) if b"9985" in good else good.replace(b"998500", b"998600", 1)
    assert tampered != good
    with pytest.raises(DocumentInvalid, match=r"add up|control total|differs"):
        reader(fmt)(tampered)


def test_consecutive_pages_join_and_a_gap_is_refused(tmp_path):
    st = statement()
    first = Statement(st.account, st.currency, st.opening, st.opening_date, st.entries[5].balance_after,
                      st.entries[5].value_date, st.entries[:6], "000000000006", False)
    second = Statement(st.account, st.currency, st.entries[5].balance_after, st.entries[6].value_date, st.closing,
                       st.closing_date, st.entries[6:], st.next_cursor, True)
    write = writer("mt940")
    (tmp_path / "a.mt940").write_bytes(write(first, FACTS))
    (tmp_path / "b.mt940").write_bytes(write(second, FACTS))
    # one file of two messages, and two files: both are the whole month
    assert reader("mt940")(write(first, FACTS) + write(second, FACTS)).entries == \
        statement_files.read_all([tmp_path / "a.mt940", tmp_path / "b.mt940"]).entries
    assert_same_entries("mt940", statement_files.read_all([tmp_path / "a.mt940", tmp_path / "b.mt940"]), st)
    with pytest.raises(statement_files.StatementFileInvalid, match="a page is missing"):
        statement_files.read_all([tmp_path / "b.mt940", tmp_path / "a.mt940"])


# ---- other banks' files -----------------------------------------------------------------------------------

FOREIGN_MT940 = (
    "{1:F01BANKDEFFAXXX0000000000}{2:O9401200261125BANKDEFFXXXX00000000002611251200N}{4:\r\n"
    ":20:STARTUMSE\r\n:25:10020030/1234567\r\n:28C:00001/001\r\n:60F:C261124EUR1000,00\r\n"
    ":61:2611251125CR250,50NTRFNONREF//BANKREF-1\r\n"
    ":86:166?00GUTSCHRIFT?20EREF+INV-2026-0042?21Rechnung 42?32ACME GMBH\r\n"
    ":61:261125D100,NCHG\r\n:86:Kontofuehrung\r\n:62F:C261125EUR1150,50\r\n-}")

FOREIGN_BAI2 = (
    "01,122099999,123456789,261125,0200,1,,,2/\r\n"
    "02,123456789,122099999,1,261124,2400,USD,2/\r\n"
    "03,0975312468,USD,010,500000,,,015,536500,,/\r\n"
    "16,175,45000,V,261126,0900,BR-1,CUST-1,Deposit INV-77/\r\n"
    "16,475,10000,S,5000,5000,0,BR-2,,Check 1001 paid/\r\n"
    "16,399,1500,0,BR-3,,Interest/\r\n"
    "49,1093000,5/\r\n98,1093000,1,7/\r\n99,1093000,1,9/\r\n")

FOREIGN_CAMT = b"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.04">
 <BkToCstmrStmt><GrpHdr><MsgId>B1</MsgId><CreDtTm>2026-11-25T18:00:00+01:00</CreDtTm></GrpHdr>
  <Stmt><Id>S1</Id><CreDtTm>2026-11-25T18:00:00+01:00</CreDtTm>
   <Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>
   <Bal><Tp><CdOrPrtry><Cd>PRCD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">100.00</Amt><CdtDbtInd>DBIT</CdtDbtInd>
    <Dt><Dt>2026-11-24</Dt></Dt></Bal>
   <Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">400.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
    <Dt><Dt>2026-11-25</Dt></Dt></Bal>
   <Ntry><Amt Ccy="EUR">500.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-11-25</Dt></BookgDt>
    <ValDt><Dt>2026-11-25</Dt></ValDt><AcctSvcrRef>BK-9</AcctSvcrRef>
    <NtryDtls><TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
     <RltdPties><Dbtr><Nm>Kunde AG</Nm></Dbtr><DbtrAcct><Id><IBAN>FR1420041010050500013M02606</IBAN></Id></DbtrAcct></RltdPties>
     <RmtInf><Strd><CdtrRefInf><Ref>RF18539007547034</Ref></CdtrRefInf></Strd></RmtInf></TxDtls></NtryDtls></Ntry>
   <Ntry><Amt Ccy="EUR">7.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>PDNG</Sts><BookgDt><Dt>2026-11-25</Dt></BookgDt></Ntry>
  </Stmt></BkToCstmrStmt></Document>"""


def test_other_banks_files_read():
    mt = reader("mt940")(FOREIGN_MT940.encode())
    assert (mt.account, mt.currency, mt.opening.amount, mt.closing.amount) == ("1234567", "EUR", Decimal("1000.00"),
                                                                               Decimal("1150.50"))
    assert [(e.direction, e.amount.amount, e.bank_ref) for e in mt.entries] == [
        ("CRDT", Decimal("250.50"), "BANKREF-1"), ("DBIT", Decimal("100.00"), "")]
    assert "EREF+INV-2026-0042" in mt.entries[0].narrative      # kept whole: the text rule searches it
    bai = reader("bai2")(FOREIGN_BAI2.encode())
    assert [(e.direction, e.amount.amount, e.bank_ref, e.client_ref) for e in bai.entries] == [
        ("CRDT", Decimal("450.00"), "BR-1", "CUST-1"), ("DBIT", Decimal("100.00"), "BR-2", None),
        ("CRDT", Decimal("15.00"), "BR-3", None)]
    assert bai.entries[0].narrative == "Deposit INV-77" and bai.closing.amount == Decimal("5365.00")
    camt = reader("camt.053.001.02")(FOREIGN_CAMT)
    assert statement_files.detect(FOREIGN_CAMT) == "camt.053.001.04"
    assert (camt.opening.amount, camt.closing.amount, len(camt.entries)) == (Decimal("-100.00"), Decimal("400.00"), 1)
    entry = camt.entries[0]       # the pending entry has not moved money and is left out
    assert (entry.end_to_end_id, entry.counterparty.name, entry.counterparty.account, entry.narrative) == \
        (None, "Kunde AG", "FR1420041010050500013M02606", "RF18539007547034")


# ---- statements from a real gateway ------------------------------------------------------------------------

def test_gateway_statements_in_every_format_read_back_as_the_native_one(maker, gateway):
    """Internal payments between demo accounts and incoming credits from other banks, on SQLite and PostgreSQL:
    each format the gateway renders reads back to the entries of its own DirectLink answer."""
    for ref, amount, creditor in (("INT-1", "12.50", SUPPLIER), ("INT-2", "1000.00", PAYROLL)):
        assert maker.call(dl.payment_order(dl.payment(ref, OPERATING, amount, "ACME", creditor))).code == "OK"
    with gateway.engine.begin() as conn:
        sandbox.credit(conn, account=OPERATING, amount="3200.00", payer_name="上海某某科技有限公司",
                       payer_account="31001234567890", payer_bank_code="102290012345", reference="INV-2026-0042",
                       end_to_end_id="PAYER-E2E-1", now=gateway.clock(), zone=gateway.settings.zone,
                       own_cnaps_prefix=gateway.settings.own_cnaps_prefix)
    answer = maker.call(dl.statement_query(OPERATING))
    native = read_native(answer.raw)
    assert len(native.entries) == 4 and native.entries[-1].counterparty.bank.code == "102290012345"
    for fmt in FORMATS:
        doc = maker.call(dl.statement_query(OPERATING, fmt=fmt)).body
        data = base64.b64decode(doc.text) if doc.get("encoding") == "base64" else etree.tostring(doc[0])
        assert statement_files.detect(data) == fmt
        back = reader(fmt)(data)
        assert_same_entries(fmt, back, native)


# ---- MT940 dialects of other banks (tests/adapters/statements/README.md says where each shape is from) -------

SAMPLES = Path(__file__).parent / "statements"


def _judge(data: bytes, encoding: str) -> list[tuple[str, Decimal]]:
    """What the independent mt-940 package reads: (direction, amount) of each non-zero transaction."""
    found = []
    for tx in mt940.parse(data.decode(encoding)):
        amount = tx.data["amount"].amount
        if amount:
            found.append(("CRDT" if amount > 0 else "DBIT", abs(amount)))
    return found


@pytest.mark.parametrize(("name", "encoding", "account", "opening", "closing", "entries"), [
    ("abnamro.sta", "ascii", "517852257", "3236.28", "3984.72",
     [("DBIT", "1.56", "", None), ("CRDT", "1000.00", "", None), ("DBIT", "250.00", "", None)]),
    ("rabobank.swi", "ascii", "NL50RABO0123456789", "1147.95", "1300.00",
     [("DBIT", "127.50", "", None), ("CRDT", "300.00", "", None), ("DBIT", "20.45", "", None)]),
    ("sparkasse_latin1.sta", "latin-1", "1234567890", "1000.00", "1150.50",
     [("CRDT", "250.50", "2611251234", None), ("DBIT", "100.00", "", None)]),
    ("zero_spacing_no20.sta", "utf-8", "0123456789", "500.00", "434.75",
     [("DBIT", "75.25", "CITI-REF-1", "PAY-5001"), ("CRDT", "10.00", "CITI-REF-2", None)]),
])
def test_mt940_dialects_of_other_banks_read(name, encoding, account, opening, closing, entries):
    data = (SAMPLES / name).read_bytes()
    assert statement_files.detect(data) == "mt940"
    st = reader("mt940")(data)
    assert (st.account, st.currency, st.opening.amount, st.closing.amount) == \
        (account, "EUR", Decimal(opening), Decimal(closing))
    assert [(e.direction, e.amount.amount, e.bank_ref, e.client_ref) for e in st.entries] == \
        [(d, Decimal(a), ref, client) for d, a, ref, client in entries]
    assert [e.entry_id for e in st.entries] == list(range(1, len(entries) + 1))
    if name != "zero_spacing_no20.sta":     # mt-940 needs :20: and the SWIFT spacing; the others it reads
        assert _judge(data, encoding) == [(d, Decimal(a)) for d, a, _, _ in entries]


def test_mt940_text_of_other_banks_is_kept():
    spk = reader("mt940")((SAMPLES / "sparkasse_latin1.sta").read_bytes())
    assert "Rechnung 42 Größe Müller?32MÜLLER GMBH" in spk.entries[0].narrative    # soft hyphen dropped
    assert "Kontoführung" in spk.entries[1].narrative
    rabo = reader("mt940")((SAMPLES / "rabobank.swi").read_bytes())
    assert (rabo.entries[1].end_to_end_id, rabo.entries[1].counterparty.account,
            rabo.entries[1].counterparty.name) == ("INV-2026-0042", "NL91ABNA0417164300", "ACME BV")
    abn = reader("mt940")((SAMPLES / "abnamro.sta").read_bytes())
    assert abn.entries[0].narrative.startswith("BEA   NR:1F8GR3") and "INV-2026-0042" in abn.entries[1].narrative
    # the same file in UTF-8 reads the same
    utf8 = (SAMPLES / "sparkasse_latin1.sta").read_bytes().decode("latin-1").encode("utf-8")
    assert reader("mt940")(utf8).entries == spk.entries


@pytest.mark.parametrize(("change", "detail"), [
    (lambda t: t.replace(":62F:C261125EUR1150,50", ":62F:C261125EUR1150,51"), "add up"),
    (lambda t: t.replace(":20:STARTUMSE", "Some text\r\n:20:STARTUMSE"), "text before the first field"),
    (lambda t: t.replace(":86:805", ":86:8\x0705"), "control character"),
    (lambda t: t.replace(":61:2611251125D100,NCHG", ":61:2611251125X100,NCHG"), "not a statement line"),
    (lambda t: t.replace(":25:37050198/1234567890\r\n", ""), "no :25:"),
])
def test_mt940_inconsistencies_are_still_refused(change, detail):
    text = (SAMPLES / "sparkasse_latin1.sta").read_bytes().decode("latin-1")
    changed = change(text)
    assert changed != text
    with pytest.raises(DocumentInvalid, match=detail):
        reader("mt940")(changed.encode("latin-1"))


def test_mt940_pages_of_another_bank_with_a_gap_are_refused():
    text = (SAMPLES / "abnamro.sta").read_text("ascii").replace(":60F:C261124EUR4234,72", ":60F:C261124EUR4234,73")
    text = text.replace(":62F:C261125EUR3984,72", ":62F:C261125EUR3984,73")     # page 2 adds up, opens wrong
    with pytest.raises(DocumentInvalid, match="a page is missing"):
        reader("mt940")(text.encode())


# ---- any ISO 4217 currency in a statement (the gateway books only its own few) -------------------------------

@pytest.mark.parametrize(("name", "currency", "account", "closing", "entries"), [
    ("postfinance_chf.sta", "CHF", "CH9300762011623852957", "10974.50",
     [("DBIT", "2375.50", "261125CH00000001"), ("CRDT", "850.00", "261125CH00000002")]),
    ("sberbank_rub_utf8.sta", "RUB", "40702810938000012345", "142654.33",
     [("DBIT", "12345.67", "0000457"), ("CRDT", "5000.00", "0000458")]),
    ("kwd_three_decimals.sta", "KWD", "0123456789", "987.655", [("DBIT", "12.345", "KW-1")]),
])
def test_statements_in_any_iso_currency_read(name, currency, account, closing, entries):
    data = (SAMPLES / name).read_bytes()
    assert statement_files.detect(data) == "mt940"
    st = reader("mt940")(data)
    assert (st.currency, st.account, st.closing.amount) == (currency, account, Decimal(closing))
    assert [(e.direction, e.amount.amount, e.bank_ref) for e in st.entries] == \
        [(d, Decimal(a), ref) for d, a, ref in entries]
    assert _judge(data, "utf-8") == [(d, Decimal(a)) for d, a, _ in entries]


def test_cyrillic_text_and_other_formats_in_other_currencies():
    rub = reader("mt940")((SAMPLES / "sberbank_rub_utf8.sta").read_bytes())
    assert rub.entries[0].narrative == "Оплата по счету № 42 от 20.11.2026, ООО Ромашка"
    bai = reader("bai2")(FOREIGN_BAI2.replace("USD", "CHF").encode())
    assert (bai.currency, bai.closing.amount) == ("CHF", Decimal("5365.00"))
    camt = reader("camt.053.001.02")(FOREIGN_CAMT.replace(b"EUR", b"SEK"))
    assert (camt.currency, camt.closing.amount) == ("SEK", Decimal("400.00"))
    with pytest.raises(DocumentInvalid, match="'ZZZ' is not an ISO 4217 currency"):
        reader("mt940")((SAMPLES / "postfinance_chf.sta").read_bytes().replace(b"CHF", b"ZZZ"))
    with pytest.raises(DocumentInvalid, match="more decimals than KWD has"):
        reader("mt940")((SAMPLES / "kwd_three_decimals.sta").read_bytes().replace(b"12,345", b"12,3451")
                        .replace(b"987,655", b"987,6549"))
