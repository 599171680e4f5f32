"""Declared formats through the whole gateway, on SQLite and PostgreSQL: the example mappings and the
Yonyou adapter pay a file with DocumentSubmit, and the statuses and statements they write come back and
are read by the mapping's own readers, equal to what the protocol's own answers say.

The mappings are copied into the home's formats/ folder after the gateway has started: a declared format
needs no restart."""
from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
from conftest import OPERATING

from adapters.declared import load
from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q, text

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "config" / "formats"
YONYOU = ROOT / "tests" / "adapters" / "golden" / "yonyou"

# (mapping file or None for the installed Yonyou adapter, payment format, its golden file, status format,
#  statement format)
CASES = {
    "treasury-fixed": (EXAMPLES / "treasury-fixed.toml", "treasury.fixed",
                       EXAMPLES / "treasury-fixed.golden" / "basic" / "payments.treasury.fixed",
                       "treasury.status.fixed", "treasury.statement.fixed"),
    "bank-csv": (EXAMPLES / "bank-csv.toml", "bankcsv.csv", EXAMPLES / "bank-csv.golden" / "basic" / "payments.bankcsv.csv",
                 "bankcsv.status.csv", "bankcsv.statement.csv"),
    "yonyou": (ROOT / "adapters" / "yonyou" / "yonyou.toml", "yonyou.json",
               YONYOU / "json-basic" / "payments.yonyou.json", "yonyou.status.json", "yonyou.statement.json"),
}


def submit(client, data: bytes, fmt: str):
    return client.call(dl.E.DocumentSubmit(dl.E.Document(base64.b64encode(data).decode("ascii"),
                                                         format=fmt, encoding="base64")))


def statuses(answer) -> dict[str, str]:
    assert answer.code == "OK", answer.detail
    return {text(s.find(q("ClientRef"))): text(s.find(q("State"))) for s in answer.body.iterfind(q("PaymentStatus"))}


def document(answer, fmt: str) -> bytes:
    assert answer.code == "OK", answer.detail
    assert answer.body.get("format") == fmt and answer.body.get("encoding") == "base64"
    return base64.b64decode(text(answer.body))


@pytest.mark.parametrize("name", list(CASES))
def test_a_declared_format_pays_and_reports_end_to_end(name, home, gateway, maker):
    mapping_file, pay_fmt, golden, status_fmt, statement_fmt = CASES[name]
    declared = load(mapping_file)
    if name != "yonyou":
        assert submit(maker, golden.read_bytes(), pay_fmt).code == "UNSUPPORTED_FORMAT"
        home.formats.mkdir(exist_ok=True)
        shutil.copy(mapping_file, home.formats)                       # the running gateway, no restart

    paid = statuses(submit(maker, golden.read_bytes(), pay_fmt))
    expected = declared.adapter.payment_readers[pay_fmt](golden.read_bytes())
    assert set(paid) == {t.client_ref for t in expected.transactions}
    assert set(paid.values()) <= {"SETTLED", "ACCEPTED"}

    # statuses in the mapping's format, read back by its own reader: the gateway's states, coded
    refs = sorted(paid)
    answer = maker.call(dl.E.PaymentStatusQuery(*(dl.E.ClientRef(r) for r in refs), dl.E.Format(status_fmt)))
    rows = declared.status_readers[status_fmt](document(answer, status_fmt))
    state = declared.mapping.of("statuses")[0].fields["state"]
    assert {r["client_ref"]: state.to_file(r["state"]) for r in rows} == {
        r: state.to_file(s) for r, s in paid.items()}

    # the statement in the mapping's format, read back by its own reader, equals the protocol's own
    written = document(maker.call(dl.statement_query(OPERATING, fmt=statement_fmt)), statement_fmt)
    st = declared.adapter.statement_readers[statement_fmt](written)
    own = maker.call(dl.statement_query(OPERATING)).body
    entries = list(own.iterfind(q("Entry")))
    assert st.account == OPERATING and len(st.entries) == len(entries) > 0
    assert [(e.bank_ref, e.direction, e.amount.text(), e.balance_after.text()) for e in st.entries] == [
        (text(e.find(q("BankRef"))), text(e.find(q("Direction"))), text(e.find(q("Amount"))),
         text(e.find(q("BalanceAfter")))) for e in entries]
    assert st.closing.text() == text(own.find(q("Closing")))
    mine = {e.client_ref for e in st.entries if e.client_ref}
    assert {r for r, s in paid.items() if s == "SETTLED"} <= mine


def test_a_file_fault_in_a_declared_format_refuses_the_whole_file_with_its_place(home, maker):
    home.formats.mkdir(exist_ok=True)
    shutil.copy(EXAMPLES / "treasury-fixed.toml", home.formats)
    bad = (EXAMPLES / "treasury-fixed.golden" / "wrong-total" / "payments.treasury.fixed").read_bytes()
    answer = submit(maker, bad, "treasury.fixed")
    assert answer.code == "DOCUMENT_INVALID"
    assert answer.detail.startswith("line 5/total (bytes 8-25): is 16300.52 but the payments add up to 16300.51")
    assert maker.call(dl.status_query("TR-PAY-0001", "TR-PAY-0002", "TR-PAY-0003")).code == "NOT_FOUND"


def test_a_removed_mapping_is_refused_from_the_next_request(home, maker):
    home.formats.mkdir(exist_ok=True)
    shutil.copy(EXAMPLES / "bank-csv.toml", home.formats)
    assert maker.call(dl.statement_query(OPERATING, fmt="bankcsv.statement.csv")).code == "OK"
    (home.formats / "bank-csv.toml").unlink()
    answer = maker.call(dl.statement_query(OPERATING, fmt="bankcsv.statement.csv"))
    assert answer.code == "UNSUPPORTED_FORMAT"
