"""Formats by declaration (adapters/declared): mappings refused with the line and key at fault, what a
mapping may not do (entities, unbounded sizes), GBK and GB18030 read right, the example mappings through
the conformance kit, and the registry picking a mapping up from a folder without a restart."""
from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from adapters import registry
from adapters.base import DocumentInvalid, PaymentFile, RenderError
from adapters.declared import MappingError, load, load_text
from adapters.kit_mapping import check
from adapters.kit_samples import sample_status_reports
from domain.errors import UnsupportedFormat
from domain.models import SubmittedPayment, build_instruction

EXAMPLES = Path(__file__).parents[2] / "config" / "formats"
OWN = "6222000000000001"

MINIMAL = """\
[mapping]
name = "acme"

[[payments]]
format = "acme.fixed"
syntax = "fixed"
encoding = "gbk"
record_tag = "D"

[payments.batch]
id = "FILE-1"
debtor_account = "6222000000000001"
currency = "CNY"

[payments.fields]
client_ref       = { start = 2,  width = 10 }
creditor_account = { start = 12, width = 20 }
creditor_name    = { start = 32, width = 20 }
bank_code        = { start = 52, width = 12, this_bank = "本行" }
amount           = { start = 64, width = 12, unit = "fen" }
purpose          = { start = 76, width = 10 }
"""


def example(name: str):
    return load(EXAMPLES / f"{name}.toml")


def refused(text: str) -> MappingError:
    with pytest.raises(MappingError) as caught:
        load_text(text)
    return caught.value


def line(text: str, needle: str) -> int:
    return next(n for n, ln in enumerate(text.splitlines(), start=1) if needle in ln)


# ---- mappings refused, each with its line and key --------------------------------------------------------

@pytest.mark.parametrize(("old", "new", "key", "words"), [
    ("purpose          = { start = 76, width = 10 }", "purpose          = { start = 76, widht = 10 }",
     "payments.1.fields.purpose.widht", "not a key of a field"),
    ("amount           = { start = 64, width = 12, unit = \"fen\" }",
     "amount           = { start = 64, width = 12, unit = \"cents\" }", "payments.1.fields.amount.unit", "yuan"),
    ("creditor_name    = { start = 32, width = 20 }", "creditor_name    = { start = 32, width = 104857600 }",
     "payments.1.fields.creditor_name.width", "from 1 to 1024"),
    ("creditor_name    = { start = 32, width = 20 }",
     "creditor_name    = { start = 32, width = 20, max_length = 100000000 }",
     "payments.1.fields.creditor_name.max_length", "from 1 to 1024"),
    ("creditor_name    = { start = 32, width = 20 }", "creditor_name    = { start = 30, width = 20 }",
     "payments.1.fields.creditor_name.start", "overlaps"),
    ('encoding = "gbk"', 'encoding = "big5"', "payments.1.encoding", "UTF-8, GBK or GB18030"),
    ('syntax = "fixed"', 'syntax = "python"', "payments.1.syntax", "json, xml, csv, fixed"),
    ("purpose          = { start = 76, width = 10 }", "", "payments.1.fields", "purpose"),
])
def test_a_broken_mapping_is_refused_with_its_line_and_key(old, new, key, words):
    text = MINIMAL.replace(old, new)
    err = refused(text)
    assert err.key.startswith(key) and words in err.detail, err
    if new:
        assert err.line == line(text, new.split("=")[0].strip() + " ") or err.line == line(text, new)
    assert str(err).startswith(f"line {err.line}: ")


def test_a_missing_required_field_names_the_section():
    text = MINIMAL.replace("purpose          = { start = 76, width = 10 }\n", "")
    err = refused(text)
    assert (err.key, err.line) == ("payments.1.fields", line(text, "[payments.fields]"))
    assert err.detail == "purpose is missing: a payments file needs it"


def test_not_toml_names_the_line():
    err = refused(MINIMAL.replace('name = "acme"', 'name = "acme'))
    assert err.line == 2 and "not valid TOML" in err.detail


@pytest.mark.parametrize(("snippet", "key"), [
    ('requested_date = { start = 86, width = 8, format = "%Y%j" }', "payments.1.fields.requested_date.format"),
    ('urgency = { start = 86, width = 1, codes = { FAST = "1" } }', "payments.1.fields.urgency.codes.FAST"),
    ('urgency = { start = 86, width = 1, codes = { URGENT = "1" }, value = "2" }', "payments.1.fields.urgency.value"),
    ('remark = { path = "a/b" }', "payments.1.fields.remark.path"),
])
def test_what_a_field_cannot_declare(snippet, key):
    err = refused(MINIMAL + snippet + "\n")
    assert err.key == key, err
    assert err.line == len(MINIMAL.splitlines()) + 1


def test_statuses_must_code_every_state():
    text = """[mapping]\nname = "s"\n[[statuses]]\nformat = "s.csv"\nsyntax = "csv"\n[statuses.fields]
client_ref = { column = "ref" }\nstate = { column = "st", codes = { SETTLED = "ok", FAILED = "no" } }\n"""
    err = refused(text)
    assert err.key == "statuses.1.fields.state.codes" and "PENDING_APPROVAL" in err.detail and err.line == 8


def test_a_mapping_cannot_name_a_doctype_or_an_entity_as_a_path():
    text = MINIMAL.replace('syntax = "fixed"', 'syntax = "xml"').replace('record_tag = "D"',
                                                                          'records = "!DOCTYPE x/&xxe;"')
    err = refused(text)
    assert err.key == "payments.1.records" and err.line == line(text, "records =")


def test_a_mapping_file_over_its_size_limit_is_refused():
    err = refused(MINIMAL + "#" * (64 * 1024) + "\n")
    assert "64" in str(err) or "65536" in str(err)


# ---- what a mapping reads: entities, sizes, encodings ----------------------------------------------------

def test_an_xml_format_never_resolves_an_external_entity(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", "utf-8")
    yonyou = registry.installed()["yonyou"]
    data = (f'<?xml version="1.0"?>\n<!DOCTYPE ufinterface [<!ENTITY x SYSTEM "file://{secret}">]>\n'
            '<ufinterface><request_body><bat_no>&x;</bat_no></request_body></ufinterface>').encode()
    with pytest.raises(DocumentInvalid) as caught:
        yonyou.payment_readers["yonyou.xml"](data)
    assert "XML_FORBIDDEN_CONSTRUCT" in caught.value.detail and "TOP-SECRET" not in str(caught.value)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read():
    reader = load_text(MINIMAL).adapter.payment_readers["acme.fixed"]
    with pytest.raises(DocumentInvalid, match="over the limit"):
        reader(b"D" * (10 * 1024 * 1024 + 1))


def test_a_field_longer_than_declared_is_a_fault_of_the_file():
    mapping = load_text(MINIMAL.replace('syntax = "fixed"', 'syntax = "csv"').replace('record_tag = "D"\n', "")
                        .replace("{ start = 32, width = 20 }", '{ column = "name", max_length = 4 }')
                        .replace("{ start = 2,  width = 10 }", '{ column = "ref" }')
                        .replace("{ start = 12, width = 20 }", '{ column = "acct" }')
                        .replace('{ start = 52, width = 12, this_bank = "本行" }', '{ column = "bank" }')
                        .replace('{ start = 64, width = 12, unit = "fen" }', '{ column = "amount" }')
                        .replace("{ start = 76, width = 10 }", '{ column = "purpose" }'))
    data = "ref,acct,name,bank,amount,purpose\r\nR1,6222000000009001,上海某某科技,102290012345,1.00,x\r\n"
    with pytest.raises(DocumentInvalid) as caught:
        mapping.adapter.payment_readers["acme.fixed"](data.encode("gbk"))
    assert caught.value.where == "line 2/name" and "at most 4" in caught.value.detail


def test_rare_characters_in_gbk_names_are_read_right():
    """生僻字 that GBK has and GB2312 lacks (堃 喆 镕 犇 淼 鑫 垚), at their byte positions."""
    d = example("treasury-fixed")
    data = (EXAMPLES / "treasury-fixed.golden" / "basic" / "payments.treasury.fixed").read_bytes()
    batch = d.adapter.payment_readers["treasury.fixed"](data)
    names = [t.instruction.creditor.name for t in batch.transactions]
    assert names == ["王堃", "上海陶喆朱镕基贸易有限公司", "犇淼鑫垚商行"]
    with pytest.raises(UnicodeEncodeError):
        "堃".encode("gb2312")                      # the point of the test: not GB2312 characters
    assert [t.instruction.amount.minor for t in batch.transactions] == [1250000, 380050, 1]
    assert batch.transactions[0].instruction.creditor.bank.scheme == "INTERNAL"      # 本行, in GBK bytes


def test_a_character_gbk_lacks_is_refused_by_a_gbk_writer_not_mangled():
    d = example("treasury-fixed")
    ins = build_instruction(client_ref="R-1", debtor_account=OWN, amount="1.00", currency="CNY",
                            creditor_name="𠮷野家", creditor_account="6222000000009001", bank_scheme="INTERNAL",
                            bank_code="", bank_name=None, purpose="货款")
    with pytest.raises(RenderError, match="gbk"):
        d.payment_writers["treasury.fixed"](PaymentFile("B-1", (SubmittedPayment("R-1", ins, where="x"),)))
    back = example("bank-csv")      # GB18030 has it: written and read back exactly
    data = back.payment_writers["bankcsv.csv"](PaymentFile("B-1", (SubmittedPayment("R-1", ins, where="x"),)))
    assert back.adapter.payment_readers["bankcsv.csv"](data).transactions[0].instruction == ins


# ---- the example mappings ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["treasury-fixed", "bank-csv"])
def test_the_example_mappings_pass_the_conformance_kit(name):
    assert check(example(name), registry.installed()) == []


def test_a_changed_golden_file_fails_the_kit_naming_the_format_line(tmp_path):
    folder = Path(shutil.copytree(EXAMPLES, tmp_path / "formats"))
    expected = folder / "treasury-fixed.golden" / "basic" / "expected.json"
    expected.write_text(expected.read_text("utf-8").replace('"3800.50"', '"3800.51"'), "utf-8")
    failures = check(load(folder / "treasury-fixed.toml"), registry.installed())
    text = (folder / "treasury-fixed.toml").read_text("utf-8")
    assert [(f.line, f.key) for f in failures] == [(line(text, 'format = "treasury.fixed"'), "payments.1.format")]
    assert "3800.51" in failures[0].detail and "basic" in failures[0].detail


def test_a_lossy_mapping_fails_its_own_round_trip(tmp_path):
    """A writer that drops what the reader reads: the kit's round trip of the golden case catches it."""
    folder = Path(shutil.copytree(EXAMPLES, tmp_path / "formats"))
    mapping = folder / "bank-csv.toml"
    text = mapping.read_text("utf-8").replace('remark           = { column = "备注" }\n', "")
    mapping.write_text(text, "utf-8")
    failures = check(load(mapping), registry.installed())
    assert failures and all(f.key == "payments.1.format" for f in failures)
    assert any("golden:basic" in f.detail for f in failures)


def test_a_mapping_needs_golden_cases():
    failures = check(load_text(MINIMAL), registry.installed())
    assert [f.key for f in failures] == ["mapping.golden"]


def test_statuses_written_by_each_example_read_back_as_written():
    report = sample_status_reports()["every-state"]
    for name, fmt in (("treasury-fixed", "treasury.status.fixed"), ("bank-csv", "bankcsv.status.csv")):
        d = example(name)
        rows = d.status_readers[fmt](d.adapter.status_writers[fmt](report))
        state = d.mapping.of("statuses")[0].fields["state"]
        assert [(r["client_ref"], state.to_file(r["state"])) for r in rows] == \
               [(s.client_ref, state.to_file(s.state.value)) for s in report.statuses]


def test_the_csv_statement_has_debit_and_credit_columns_and_no_formulas():
    d = example("bank-csv")
    case = EXAMPLES / "bank-csv.golden" / "statement-basic"
    data = (case / "statement.bankcsv.statement.csv").read_bytes().decode("gb18030")
    rows = [r.split(",") for r in data.splitlines()]
    titles = next(r for r in rows if "借方发生额" in r)
    lines = rows[rows.index(titles) + 1:]
    debit, credit, flag = titles.index("借方发生额"), titles.index("贷方发生额"), titles.index("借贷")
    assert [(r[flag], bool(r[debit]), bool(r[credit])) for r in lines] == [
        ("借", True, False), ("借", True, False), ("贷", False, True), ("借", True, False), ("贷", False, True)]
    assert "'=1+2 某公司" in data                        # a counterparty's formula stays text
    st = d.adapter.statement_readers["bankcsv.statement.csv"](data.encode("gb18030"))
    assert st.entries[-1].counterparty.name == "=1+2 某公司" and st.closing.amount == Decimal("987749.00")
    assert st.opening.amount + sum(e.amount.amount if e.direction == "CRDT" else -e.amount.amount
                                   for e in st.entries) == st.closing.amount


# ---- the registry and a folder of mappings -------------------------------------------------------------

def test_the_registry_sees_a_mapping_added_and_removed_without_a_restart(tmp_path):
    folder = tmp_path / "formats"
    folder.mkdir()
    with pytest.raises(UnsupportedFormat, match=r"no adapter for format 'treasury\.fixed'"):
        registry.payment_reader("treasury.fixed", folder)
    shutil.copy(EXAMPLES / "treasury-fixed.toml", folder)
    reader, limits = registry.payment_reader("treasury.fixed", folder)
    assert reader.func.__name__ == "read_payments" and limits.max_transactions == 5000 and limits.amount_unit == "minor"
    assert "treasury-fixed" in registry.adapters(folder) and "treasury-fixed" not in registry.adapters()
    (folder / "treasury-fixed.toml").unlink()
    with pytest.raises(UnsupportedFormat, match="no adapter"):
        registry.payment_reader("treasury.fixed", folder)


def test_a_broken_or_clashing_file_in_the_folder_serves_nothing_and_says_why(tmp_path):
    folder = tmp_path / "formats"
    folder.mkdir()
    shutil.copy(EXAMPLES / "bank-csv.toml", folder)
    (folder / "broken.toml").write_text(MINIMAL.replace('name = "acme"', 'name = "broken"')
                                        .replace("width = 20 }", "width = 0 }"), "utf-8")
    (folder / "kingdee.toml").write_text(MINIMAL.replace('name = "acme"', 'name = "kingdee"'), "utf-8")
    (folder / "other.toml").write_text(MINIMAL.replace('"acme.fixed"', '"kingdee.json"')
                                       .replace('name = "acme"', 'name = "other"'), "utf-8")
    usable, broken = registry.declared(folder)
    assert list(usable) == ["bank-csv"]
    assert "creditor_account.width" in broken["broken.toml"] and broken["broken.toml"].startswith("line 17:")
    assert "installed adapter 'kingdee'" in broken["kingdee.toml"]
    assert "'kingdee.json'" in broken["other.toml"]
    assert registry.payment_reader("kingdee.json", folder)[0] is registry.installed()["kingdee"].payment_readers[
        "kingdee.json"]


def test_dates_and_amounts_convert_both_ways():
    d = example("treasury-fixed")
    data = (EXAMPLES / "treasury-fixed.golden" / "basic" / "payments.treasury.fixed").read_bytes()
    batch = d.adapter.payment_readers["treasury.fixed"](data)
    assert batch.created == dt.datetime(2026, 11, 25, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    first = batch.transactions[0].instruction
    assert (first.requested_date, first.urgency) == (dt.date(2026, 11, 26), "URGENT")
    assert d.payment_writers["treasury.fixed"](batch) == data               # the same bytes, written again
    assert json.loads((EXAMPLES / "treasury-fixed.golden" / "basic" / "expected.json").read_text("utf-8"))[
        "transactions"][1]["instruction"]["amount"] == {"amount": "3800.50", "currency": "CNY"}


def test_of_two_mappings_claiming_one_format_the_second_serves_nothing(tmp_path):
    folder = tmp_path / "formats"
    folder.mkdir()
    (folder / "acme.toml").write_text(MINIMAL, "utf-8")
    (folder / "zeta.toml").write_text(MINIMAL.replace('name = "acme"', 'name = "zeta"'), "utf-8")
    usable, broken = registry.declared(folder)
    assert list(usable) == ["acme"]
    assert broken == {"zeta.toml": "the format 'acme.fixed' belongs to the declared mapping 'acme'"}


def test_a_statement_amount_with_more_decimals_than_its_currency_is_refused_not_rounded():
    d = example("bank-csv")
    data = (EXAMPLES / "bank-csv.golden" / "statement-basic" / "statement.bankcsv.statement.csv").read_bytes()
    bad = data.replace(b",12500.00,", b",12500.005,", 1)
    with pytest.raises(DocumentInvalid) as caught:
        d.adapter.statement_readers["bankcsv.statement.csv"](bad)
    assert caught.value.where.startswith("line 14") and "more decimals than CNY" in caught.value.detail
