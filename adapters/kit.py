"""The adapter conformance kit: checks every adapter runs against itself, built-in or third-party.

Plain functions, each raising AssertionError with a readable message (or unittest.SkipTest):

    check_declaration(adapter)                          names, text formats and limits are coherent
    check_reader_robust(adapter, fmt, extra_inputs)     garbage and truncated files raise DocumentInvalid
                                                        (or a DirectLinkError), never KeyError/ValueError/...
    check_payment_golden(adapter, fmt, case_dir)        payments.<fmt> reads to exactly expected.json
    check_round_trip(adapter, fmt, writer, batch)       read(write(batch)) == batch (with a writer hook)
    check_statement_writer(adapter, fmt, st, facts)     renders and the gateway can embed it; with a reader
                                                        hook, opening + entries = closing as written
    check_status_writer(adapter, fmt, report)           renders (every PaymentState, empty reports)
    check_deterministic(adapter, kind, fmt, *inputs)    the same input, twice, gives the same bytes
    check_writer_golden(adapter, kind, fmt, case_dir)   statement.json / statuses.json render to the expected bytes

`checks()` assembles all of them for a set of adapters (default: every registered one) and golden root;
`pytest_params()` wraps them for `@pytest.mark.parametrize`; formats a suite names in `nondeterministic`
({format: why}) have their determinism checks marked as expected failures, visibly, instead of passing.
Golden layout, tests/adapters/golden/<adapter>/<case>/:

    payments.<fmt> + expected.json      a payment file and the domain objects (or the DocumentInvalid) it gives
    statement.json + statement.<fmt>    a Statement with its AccountFacts, and the bytes a writer must produce
    statuses.json  + statuses.<fmt>     a StatusReport, and the bytes a status writer must produce

`python -m adapters.kit ADAPTER CASE_DIR...` (re)writes the expected files from the current code; review
the diff before committing it. Optional hooks, module attributes next to an adapter's ADAPTER:
PAYMENT_WRITERS {fmt: PaymentFile -> bytes} and STATEMENT_READERS {fmt: bytes -> Statement}.
"""
from __future__ import annotations

import copy
import difflib
import json
import sys
import unittest
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path

from adapters.base import Adapter, DocumentInvalid, PaymentFile
from adapters.kit_samples import (
    sample_batches,
    sample_statements,
    sample_status_reports,
    statement_from_json,
    status_report_from_json,
    to_jsonable,
)
from domain.errors import DirectLinkError, PaymentRejected
from domain.models import PaymentInstruction, Statement, SubmittedPayment

GOLDEN_KINDS = {"payments": "payment_readers", "statement": "statement_writers", "statuses": "status_writers"}
HOSTILE_INPUTS: dict[str, bytes] = {
    "empty": b"", "blank": b" \r\n\t", "prose": b"this is not a payment file", "nul": b"\x00" * 16,
    "all-bytes": bytes(range(256)), "gbk-prose": "付款文件".encode("gbk") * 4,
    "json-object": b"{}", "json-list": b"[]", "json-null": b"null", "json-nan": b'{"a": NaN}',
    "json-deep": b"[" * 50_000 + b"]" * 50_000, "xml-root": b"<a/>", "xml-unclosed": b"<a><b>",
    "xml-utf16": "<?xml version='1.0' encoding='UTF-16'?><a/>".encode("utf-16"),
    "xml-entity": b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>',
    "csv-header": b"a,b,c\r\n", "csv-quote": b'"unterminated,\n',
}


@dataclass(frozen=True)
class Check:
    """One named check; call it to run it. `expected_failure` says why it is known to fail, if it is."""

    id: str
    run: Callable[[], None]
    expected_failure: str | None = None

    def __call__(self) -> None:
        self.run()

    def __repr__(self) -> str:
        return self.id


# ---- the checks -----------------------------------------------------------------------------------------

def check_declaration(adapter: Adapter) -> None:
    """Format names fit the protocol's Ref35 `format` attribute; text formats are written ones; limits sane."""
    assert adapter.name and adapter.name == adapter.name.strip(), "an adapter needs a name"
    written = {*adapter.statement_writers, *adapter.status_writers}
    for fmt in adapter.formats:
        assert 1 <= len(fmt) <= 35 and fmt == fmt.strip() and fmt.isprintable(), f"format {fmt!r} is not a Ref35"
        assert fmt != "directlink", "'directlink' is the protocol's own format"
    assert len(set(adapter.formats)) == len(adapter.formats), \
        f"{adapter.name}: a format name is used by two maps; the registry would refuse it"
    assert adapter.text_formats <= written, f"text_formats name formats nothing writes: " \
                                            f"{sorted(adapter.text_formats - written)}"
    limits = adapter.limits
    assert limits.max_transactions >= 1 and limits.amount_unit in ("major", "minor")
    assert set(limits.encodings) <= {"utf-8", "gbk", "gb18030"}, f"unknown encodings {limits.encodings}"


def read_outcome(adapter: Adapter, fmt: str, data: bytes) -> dict:
    """What a reader makes of bytes, as golden JSON: the PaymentFile, or the error refusing the file."""
    try:
        batch = adapter.payment_readers[fmt](data)
    except DocumentInvalid as err:
        return {"error": {"where": err.where, "detail": err.detail}}
    except DirectLinkError as err:
        return {"error": {"code": err.code.value, "detail": err.detail}}
    check_batch_shape(batch)
    return to_jsonable(batch)


def check_batch_shape(batch: object) -> None:
    """What documents.read_payment_file relies on: the types, and one of instruction/problem per transaction."""
    assert isinstance(batch, PaymentFile), f"a reader must return a PaymentFile, not {type(batch).__name__}"
    assert isinstance(batch.message_id, str) and batch.message_id, "message_id (the BatchId) must be non-empty"
    assert isinstance(batch.transactions, tuple), "transactions must be a tuple"
    for t in batch.transactions:
        assert isinstance(t, SubmittedPayment) and t.where and t.client_ref, f"bad transaction {t!r}"
        assert (t.instruction is None) != (t.problem is None), f"{t.where}: exactly one of instruction/problem"
        if t.instruction is not None:
            assert isinstance(t.instruction, PaymentInstruction) and t.instruction.client_ref == t.client_ref
        else:
            assert isinstance(t.problem, PaymentRejected), f"{t.where}: problem must be a PaymentRejected"


def check_reader_robust(adapter: Adapter, fmt: str, extra_inputs: Collection[bytes] = ()) -> None:
    """Hostile and truncated inputs: a file-level error or a well-formed PaymentFile, never a crash (a crash
    is an INTERNAL answer to the ERP)."""
    inputs = dict(HOSTILE_INPUTS)
    for n, data in enumerate(extra_inputs):     # valid files cut short and doubled up
        inputs |= {f"extra{n}-cut{k}": data[:len(data) * k // 8] for k in range(1, 8)}
        inputs[f"extra{n}-twice"] = data + data
    for name, data in inputs.items():
        try:
            read_outcome(adapter, fmt, data)
        except AssertionError as err:
            raise AssertionError(f"{fmt} on input {name!r}: {err}") from err
        except Exception as exc:  # exactly what this check exists to catch
            raise AssertionError(f"{fmt} on input {name!r} raised {type(exc).__name__}: {exc}; "
                                 "file faults must be DocumentInvalid") from exc


def _diff(expected: str, actual: str, name: str) -> str:
    lines = difflib.unified_diff(expected.splitlines(), actual.splitlines(), f"{name} (golden)", f"{name} (now)",
                                 lineterm="", n=2)
    return "\n".join(list(lines)[:60])


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2) + "\n"


def check_payment_golden(adapter: Adapter, fmt: str, case_dir: Path) -> None:
    expected = (case_dir / "expected.json").read_text("utf-8")
    actual = _dumps(read_outcome(adapter, fmt, (case_dir / f"payments.{fmt}").read_bytes()))
    assert json.loads(actual) == json.loads(expected), _diff(expected, actual, f"{case_dir}/expected.json")


def _essence(batch: PaymentFile) -> tuple:
    return batch.message_id, [(t.client_ref, t.instruction) for t in batch.transactions]


def check_round_trip(adapter: Adapter, fmt: str, writer: Callable[[PaymentFile], bytes], batch: PaymentFile) -> None:
    """read(write(batch)) gives back every instruction exactly (references, amounts, names, dates)."""
    good = tuple(t for t in batch.transactions if t.instruction is not None)
    if not good:
        raise unittest.SkipTest("no readable transactions to write")
    batch = PaymentFile(batch.message_id, good, batch.created)
    back = adapter.payment_readers[fmt](writer(batch))
    check_batch_shape(back)
    assert _essence(back) == _essence(batch), f"{fmt} round trip changed the batch:\n" + _diff(
        _dumps(to_jsonable(_essence(batch))), _dumps(to_jsonable(_essence(back))), fmt)


def _round_trip_case(adapter: Adapter, fmt: str, writer: Callable, case_dir: Path) -> None:
    try:
        batch = adapter.payment_readers[fmt]((case_dir / f"payments.{fmt}").read_bytes())
    except (DocumentInvalid, DirectLinkError):
        raise unittest.SkipTest("a refused file has nothing to round-trip") from None
    check_round_trip(adapter, fmt, writer, batch)


def _embeddable(adapter: Adapter, fmt: str, data: bytes) -> None:
    assert isinstance(data, bytes) and data, f"{fmt} must write non-empty bytes"
    # the exact call the gateway makes; an XML format that fails it is a 500
    from gateway.protocol import messages
    messages.render_document(fmt, data, fmt in adapter.text_formats)


def _signed_total(st: Statement) -> Decimal:
    return sum((e.amount.amount if e.direction == "CRDT" else -e.amount.amount for e in st.entries), Decimal(0))


def check_statement_writer(adapter: Adapter, fmt: str, st: Statement, facts, reader=None) -> None:
    out = adapter.statement_writers[fmt](st, facts)
    _embeddable(adapter, fmt, out)
    if reader is None:
        return
    back = reader(out)
    assert (back.account, back.currency) == (st.account, st.currency), f"{fmt}: account or currency changed"
    assert (back.opening, back.closing) == (st.opening, st.closing), f"{fmt}: opening/closing balances changed"
    assert [(e.direction, e.amount, e.reversal) for e in back.entries] == \
           [(e.direction, e.amount, e.reversal) for e in st.entries], f"{fmt}: entries changed"
    assert back.opening.amount + _signed_total(back) == back.closing.amount, f"{fmt}: opening + entries != closing"


def check_status_writer(adapter: Adapter, fmt: str, report) -> None:
    _embeddable(adapter, fmt, adapter.status_writers[fmt](report))


def check_deterministic(adapter: Adapter, kind: str, fmt: str, *inputs) -> None:
    """Same input (an equal copy) -> same bytes: golden files, retries and ERP-side de-duplication need it.
    A writer that stamps the time or a random id breaks it; status reports carry `created` for that."""
    write = getattr(adapter, GOLDEN_KINDS[kind])[fmt]
    first, second = write(*inputs), write(*copy.deepcopy(inputs))
    assert first == second, f"{fmt}: the same {kind} rendered twice gave different bytes:\n" + _diff(
        first.decode("utf-8", "replace"), second.decode("utf-8", "replace"), fmt)


def _render(adapter: Adapter, kind: str, fmt: str, case_dir: Path) -> bytes:
    data = json.loads((case_dir / f"{kind}.json").read_text("utf-8"))
    if kind == "statement":
        return adapter.statement_writers[fmt](*statement_from_json(data))
    return adapter.status_writers[fmt](status_report_from_json(data))


def check_writer_golden(adapter: Adapter, kind: str, fmt: str, case_dir: Path) -> None:
    expected = (case_dir / f"{kind}.{fmt}").read_bytes()
    actual = _render(adapter, kind, fmt, case_dir)
    assert actual == expected, _diff(expected.decode("utf-8", "replace"), actual.decode("utf-8", "replace"),
                                     f"{case_dir}/{kind}.{fmt}")


# ---- assembling the checks ------------------------------------------------------------------------------

def hooks(adapter: Adapter) -> tuple[Mapping, Mapping]:
    """(PAYMENT_WRITERS, STATEMENT_READERS) of the module defining this ADAPTER, empty if it has none."""
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None) or {}
        if namespace.get("ADAPTER") is adapter:
            return namespace.get("PAYMENT_WRITERS", {}), namespace.get("STATEMENT_READERS", {})
    return {}, {}


def golden_cases(root: Path | None, adapter: Adapter, kind: str, fmt: str) -> list[Path]:
    """Case directories under root/<adapter>/ holding a `kind` file for this format."""
    base = root / adapter.name if root else None
    if base is None or not base.is_dir():
        return []
    return sorted(p.parent for p in base.glob(f"*/{kind}.{fmt}") if p.is_file())


def _stale(root: Path, adapter: Adapter) -> None:
    """Every golden file names a format of this adapter: a typo would otherwise be silently never checked."""
    for path in sorted((root / adapter.name).glob("*/*")):
        kind, _, fmt = path.name.partition(".")
        if kind in GOLDEN_KINDS and fmt != "json":
            assert fmt in getattr(adapter, GOLDEN_KINDS[kind]), f"{path}: {adapter.name} has no {kind} format {fmt!r}"


def _refused(case_dir: Path) -> bool:
    """Whether the golden outcome of a payments case is a refused file (nothing to round-trip)."""
    expected = case_dir / "expected.json"
    return expected.is_file() and "error" in json.loads(expected.read_text("utf-8"))


def _missing(name: str, fmt: str, required: bool) -> None:
    if required:
        raise AssertionError(f"{name}: no golden case for {fmt} (add tests/adapters/golden/{name}/<case>/)")
    raise unittest.SkipTest(f"{name}: no golden case for {fmt}")


def checks(adapters: Mapping[str, Adapter] | None = None, golden_root: Path | None = None,
           require_golden: Collection[str] = (), nondeterministic: Mapping[str, str] | None = None,
           hooks_of: Mapping[str, tuple[Mapping, Mapping]] | None = None) -> list[Check]:
    """Every check for every adapter (default: all registered); golden cases are required for the named ones.
    `hooks_of`: adapter name -> (payment writers, statement readers) for adapters that are not a module's
    ADAPTER (declared mappings); the others' hooks are found next to their ADAPTER."""
    nondeterministic = nondeterministic or {}
    if adapters is None:
        from adapters.registry import adapters as registered
        adapters = registered()
    out: list[Check] = []
    for name, a in sorted(adapters.items()):
        def add(suffix: str, fn: Callable, *args, name: str = name) -> None:
            out.append(Check(f"{name}:{suffix}", partial(fn, *args)))
        writers, readers = (hooks_of or {}).get(name) or hooks(a)
        add("declaration", check_declaration, a)
        if golden_root and name in require_golden:
            add("golden-files-name-formats", _stale, golden_root, a)
        for fmt in a.payment_readers:
            cases = golden_cases(golden_root, a, "payments", fmt)
            add(f"{fmt}:robust", check_reader_robust, a, fmt, [(c / f"payments.{fmt}").read_bytes() for c in cases])
            if not cases:
                add(f"{fmt}:golden", _missing, name, fmt, name in require_golden)
            for case in cases:
                add(f"{fmt}:golden:{case.name}", check_payment_golden, a, fmt, case)
                if fmt in writers and not _refused(case):
                    add(f"{fmt}:round-trip:{case.name}", _round_trip_case, a, fmt, writers[fmt], case)
            if fmt in writers:
                for sample, batch in sample_batches().items():
                    add(f"{fmt}:round-trip:{sample}", check_round_trip, a, fmt, writers[fmt], batch)
        for kind, attr, check in (("statement", "statement_writers", check_statement_writer),
                                  ("statuses", "status_writers", check_status_writer)):
            samples = sample_statements() if kind == "statement" else sample_status_reports()
            for fmt in getattr(a, attr):
                for sample, value in samples.items():
                    inputs = value if kind == "statement" else (value,)
                    add(f"{fmt}:{sample}", check, a, fmt, *inputs, *([readers.get(fmt)] if kind == "statement" else []))
                    out.append(Check(f"{name}:{fmt}:{sample}:deterministic",
                                     partial(check_deterministic, a, kind, fmt, *inputs), nondeterministic.get(fmt)))
                for case in golden_cases(golden_root, a, kind, fmt):
                    add(f"{fmt}:golden:{case.name}", check_writer_golden, a, kind, fmt, case)
    return out


def pytest_params(*args, **kwargs) -> list:
    """checks(...) as pytest.param objects with readable ids: `@pytest.mark.parametrize("check", ...)`."""
    import pytest
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(reason=c.expected_failure, strict=False)]
                         if c.expected_failure else []) for c in checks(*args, **kwargs)]


# ---- regenerating golden files --------------------------------------------------------------------------

def write_golden(adapter: Adapter, case_dir: Path) -> list[Path]:
    """(Re)write the expected files of one case from the current code; returns the files written."""
    written = []
    for path in sorted(case_dir.iterdir()):
        kind, _, fmt = path.name.partition(".")
        if kind == "payments" and fmt in adapter.payment_readers:
            target = case_dir / "expected.json"
            target.write_text(_dumps(read_outcome(adapter, fmt, path.read_bytes())), "utf-8")
        elif kind in ("statement", "statuses") and fmt in getattr(adapter, GOLDEN_KINDS[kind]):
            target = path
            target.write_bytes(_render(adapter, kind, fmt, case_dir))
        else:
            continue
        written.append(target)
    return written


if __name__ == "__main__":
    from adapters.registry import adapters as _registered
    if len(sys.argv) < 3:
        sys.exit("usage: python -m adapters.kit ADAPTER CASE_DIR...")
    for _case in sys.argv[2:]:
        for _path in write_golden(_registered()[sys.argv[1]], Path(_case)):
            print(f"wrote {_path}")
