"""The conformance kit (adapters/kit.py) over every registered adapter, and checks that the kit can fail.

Golden cases are required for the adapters this repository documents as examples (kingdee, template, yonyou);
other registered adapters get every generic check and their golden cases when they have them.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from adapters import kit
from adapters.base import Adapter
from adapters.registry import adapters

GOLDEN = Path(__file__).parent / "golden"
REQUIRED = ("kingdee", "template", "yonyou")


@pytest.mark.parametrize("check", kit.pytest_params(golden_root=GOLDEN, require_golden=REQUIRED))
def test_kit(check):
    check()                      # unittest.SkipTest from a check is a pytest skip


def test_the_example_adapters_are_registered():
    assert set(REQUIRED) <= set(adapters()), "run pip install -e . after adding an entry point"


def test_every_state_and_sample_is_checked_for_every_writer():
    ids = {c.id for c in kit.checks(golden_root=GOLDEN)}
    for name, a in adapters().items():
        for fmt in a.status_writers:
            assert {f"{name}:{fmt}:bare-{s}" for s in ("PENDING_APPROVAL", "RETURNED", "CANCELLED")} <= ids
        for fmt in a.statement_writers:
            assert {f"{name}:{fmt}:{s}" for s in ("empty", "jpy", "basic")} <= ids


def _copy_case(tmp_path: Path, adapter: str, case: str) -> Path:
    return Path(shutil.copytree(GOLDEN / adapter / case, tmp_path / adapter / case))


def test_a_mutated_golden_file_fails(tmp_path):
    # A golden check that cannot fail proves nothing (aesthetics.md 8.2 item 7).
    case = _copy_case(tmp_path, "kingdee", "json-basic")
    expected = json.loads((case / "expected.json").read_text("utf-8"))
    expected["transactions"][1]["instruction"]["amount"]["amount"] = "3800.51"
    (case / "expected.json").write_text(json.dumps(expected, ensure_ascii=False), "utf-8")
    with pytest.raises(AssertionError, match=r"3800\.51"):
        kit.check_payment_golden(adapters()["kingdee"], "kingdee.json", case)


def test_a_changed_writer_output_fails(tmp_path):
    case = _copy_case(tmp_path, "kingdee", "statement-basic")
    path = case / "statement.kingdee.statement.json"
    path.write_bytes(path.read_bytes().replace(b'"987604.00"', b'"987604.01"'))
    with pytest.raises(AssertionError):
        kit.check_writer_golden(adapters()["kingdee"], "statement", "kingdee.statement.json", case)


def test_a_crashing_reader_fails_the_robustness_check():
    def reader(data: bytes):
        return json.loads(data)["batch"]      # KeyError, ValueError: would be INTERNAL at the gateway
    broken = Adapter("broken", "test double", payment_readers={"broken.json": reader})
    with pytest.raises(AssertionError, match="must be DocumentInvalid"):
        kit.check_reader_robust(broken, "broken.json")


def test_an_unbalanced_statement_writer_fails():
    template = adapters()["template"]
    st, facts = kit.sample_statements()["basic"]

    def drops_last_entry(statement, account):
        from dataclasses import replace
        return template.statement_writers["template.statement.csv"](
            replace(statement, entries=statement.entries[:-1]), account)
    lossy = Adapter("lossy", "test double", statement_writers={"lossy.csv": drops_last_entry},
                    text_formats=frozenset({"lossy.csv"}))
    from adapters.template import read_statement
    with pytest.raises(AssertionError, match="entries changed"):
        kit.check_statement_writer(lossy, "lossy.csv", st, facts, read_statement)


def test_a_golden_file_naming_an_unknown_format_fails(tmp_path):
    case = _copy_case(tmp_path, "template", "csv-basic")
    (case / "payments.template.cvs").write_bytes(b"")      # a typo would otherwise never be checked
    stale = [c for c in kit.checks({"template": adapters()["template"]}, tmp_path, require_golden=["template"])
             if c.id == "template:golden-files-name-formats"]
    with pytest.raises(AssertionError, match=r"template\.cvs"):
        stale[0]()
