"""`directlink adapters` (list), `adapters check`, `adapters add` and `adapters remove`: a mapping passes the
conformance kit or is refused with the line and key at fault, and nothing is added; an added mapping is
listed with its sha256; a hand-broken file in formats/ is reported. In process (typer's runner): these
commands only read and write files, and the gateway serving an added mapping is test_declared_end_to_end."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.setup import init_home

ROOT = Path(__file__).parents[3]
EXAMPLES = ROOT / "config" / "formats"


@pytest.fixture
def home(tmp_path) -> Path:
    return init_home(tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'home.db'}").home


@pytest.fixture
def examples(tmp_path) -> Path:
    return Path(shutil.copytree(EXAMPLES, tmp_path / "examples"))


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def line_of(path: Path, needle: str) -> int:
    return next(n for n, ln in enumerate(path.read_text("utf-8").splitlines(), start=1) if needle in ln)


def test_add_lists_and_removes_a_mapping(home, examples):
    mapping = examples / "treasury-fixed.toml"
    done = run("adapters", "add", str(mapping), "--home", str(home))
    assert done.exit_code == 0, done.output
    assert (home / "formats" / "treasury-fixed.toml").read_bytes() == mapping.read_bytes()
    digest = hashlib.sha256(mapping.read_bytes()).hexdigest()
    listed = run("adapters", "--home", str(home))
    assert listed.exit_code == 0, listed.output
    assert "treasury-fixed: Treasury system fixed-width files (GBK)" in listed.output
    assert f"sha256 {digest}" in listed.output and "reads payments: treasury.fixed" in listed.output
    assert "kingdee: " in listed.output and "yonyou: " in listed.output
    again = run("adapters", "add", str(mapping), "--home", str(home))
    assert again.exit_code == 0 and "unchanged" in again.output
    gone = run("adapters", "remove", "treasury-fixed", "--home", str(home))
    assert gone.exit_code == 0 and not (home / "formats" / "treasury-fixed.toml").exists()


def test_a_broken_mapping_is_refused_with_the_line_and_field_and_nothing_is_added(home, examples):
    mapping = examples / "treasury-fixed.toml"
    text = mapping.read_text("utf-8")
    mapping.write_text(text.replace("creditor_name    = { start = 54,  width = 60 }",
                                    "creditor_name    = { start = 54,  width = 104857600 }"), "utf-8")
    done = run("adapters", "add", str(mapping), "--home", str(home))
    assert done.exit_code == 2
    n = line_of(mapping, "creditor_name    =")
    assert f"line {n}: payments.1.fields.creditor_name.width: must be a whole number from 1 to 1024" in done.output
    assert not (home / "formats").exists()


def test_a_mapping_failing_its_golden_cases_is_refused_naming_the_case(home, examples):
    expected = examples / "bank-csv.golden" / "basic" / "expected.json"
    expected.write_text(expected.read_text("utf-8").replace('"劳务费"', '"货款"', 1), "utf-8")
    done = run("adapters", "add", str(examples / "bank-csv.toml"), "--home", str(home))
    assert done.exit_code == 2, done.output
    n = line_of(examples / "bank-csv.toml", 'format = "bankcsv.csv"')
    assert f"line {n}: payments.1.format: bankcsv.csv:golden:basic:" in done.output
    assert "nothing was added" in done.output and not (home / "formats").exists()


def test_another_version_needs_replace(home, examples):
    mapping = examples / "bank-csv.toml"
    assert run("adapters", "add", str(mapping), "--home", str(home)).exit_code == 0
    mapping.write_text(mapping.read_text("utf-8").replace('description = "', 'description = "v2 '), "utf-8")
    refused = run("adapters", "add", str(mapping), "--home", str(home))
    assert refused.exit_code == 2 and "--replace" in refused.output
    assert "v2" not in (home / "formats" / "bank-csv.toml").read_text("utf-8")
    assert run("adapters", "add", str(mapping), "--home", str(home), "--replace").exit_code == 0
    assert "v2" in (home / "formats" / "bank-csv.toml").read_text("utf-8")


def test_check_refuses_the_names_of_installed_adapters():
    done = run("adapters", "check", str(ROOT / "adapters" / "yonyou" / "yonyou.toml"))
    assert done.exit_code == 2
    assert "line 6: mapping.name: 'yonyou' is the name of an installed adapter" in done.output


def test_check_passes_an_example_without_a_home(examples):
    done = run("adapters", "check", str(examples / "bank-csv.toml"))
    assert done.exit_code == 0, done.output
    assert "passes the conformance kit (bankcsv.csv, bankcsv.statement.csv, bankcsv.status.csv)" in done.output


def test_a_hand_edited_file_in_formats_is_reported_by_the_listing(home, examples):
    (home / "formats").mkdir()
    text = (examples / "bank-csv.toml").read_text("utf-8").replace('syntax = "csv"', 'syntax = "excel"', 1)
    (home / "formats" / "bank-csv.toml").write_text(text, "utf-8")
    listed = run("adapters", "--home", str(home))
    assert listed.exit_code == 1
    n = line_of(home / "formats" / "bank-csv.toml", 'syntax = "excel"')
    assert f"bank-csv.toml: cannot be used: line {n}: payments.1.syntax: must be one of json, xml, csv, fixed" in \
           listed.output


def test_add_needs_a_gateway_home(tmp_path, examples):
    done = run("adapters", "add", str(examples / "bank-csv.toml"), "--home", str(tmp_path))
    assert done.exit_code == 2 and "is not a gateway home" in done.output
