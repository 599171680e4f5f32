"""The conformance kit (adapters/kit.py) run on a declared mapping before it is added.

What is checked: the mapping itself (spec.py, with the line and key at fault); that its names are free
(no installed adapter has them); the integrator's golden cases -- at least one payment file per payment
format, read to exactly its expected.json, then written and read back unchanged (the round trip), and any
statement or status golden files written byte for byte; the kit's hostile inputs (binary, truncated,
doubled, entities, deep JSON ...) refused cleanly by every reader; the kit's statements and statuses
written (or cleanly refused, when the format cannot express them) and read back by the mapping's own
readers with the balances and codes intact.

The kit's sample payment batches are not round-tripped: they carry every field the domain has (an
end-to-end id, a BIC, JPY and 𠮷 in one file), which a treasury system's file may rightly not have. The
integrator's own golden cases stand for what the format carries.
"""
from __future__ import annotations

import tempfile
import unittest
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from adapters import kit
from adapters.base import Adapter, RenderError
from adapters.declared import Declared
from adapters.declared.spec import Section, line_of
from adapters.kit_samples import sample_batches, sample_status_reports


@dataclass(frozen=True)
class Failure:
    line: int
    key: str
    detail: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.key}: {self.detail}" if self.line else f"{self.key}: {self.detail}"


def check(declared: Declared, installed: Mapping[str, Adapter], golden: Path | None = None) -> list[Failure]:
    """Every failure of the mapping, in the order the kit runs; empty: the mapping may be added."""
    m, adapter = declared.mapping, declared.adapter
    golden = golden or m.golden

    def at(key: str, detail: str) -> Failure:
        return Failure(line_of(m.source, key), key, detail)

    owner = {fmt: a.name for a in installed.values() for fmt in a.formats}
    failures = [at("mapping.name", f"{m.name!r} is the name of an installed adapter")] if m.name in installed else []
    failures += [at(f"{s.key}.format", f"{s.format!r} is a format of the installed adapter {owner[s.format]!r}")
                 for s in m.sections if s.format in owner]
    if failures:
        return failures
    if golden is None or not golden.is_dir():
        return [at("mapping.golden", "needs the folder of golden cases (payments.<format> + expected.json, "
                                     "one folder per case); docs/declared-formats.md shows the layout")]
    section_of = {s.format: s for s in m.sections}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / m.name).symlink_to(golden.resolve(), target_is_directory=True)
        checks = kit.checks({m.name: adapter}, Path(tmp), require_golden=[m.name],
                            hooks_of={m.name: (declared.payment_writers, adapter.statement_readers)})
        samples = set(sample_batches())
        for c in checks:
            parts = c.id.split(":")
            if len(parts) == 4 and parts[2] == "round-trip" and parts[3] in samples:
                continue
            problem = _run(c)
            if problem is not None:
                section = section_of.get(parts[1]) if len(parts) > 1 else None
                key = f"{section.key}.format" if section else "mapping"
                problem = problem.replace(f"{tmp}/{m.name}", str(golden))
                failures.append(at(key, f"{':'.join(parts[1:])}: {problem}"))
    for s in m.of("statuses"):
        failures += [at(f"{s.key}.fields.state", p) for p in _statuses_read_back(declared, s)]
    return failures


def _run(c: kit.Check) -> str | None:
    try:
        c()
    except unittest.SkipTest:
        return None
    except RenderError:
        return None      # the format cannot say this (a name too long for its column): the gateway refuses it
    except AssertionError as err:
        return _summary(str(err))
    except Exception as exc:  # noqa: BLE001 -- any fault of a mapping is reported, never raised at the integrator
        return f"{type(exc).__name__}: {exc}"
    return None


def _summary(message: str) -> str:
    """An assertion's message in a line or two: a golden diff becomes its first changed lines."""
    lines = message.splitlines() or ["failed"]
    changed = [ln.strip() for ln in lines if ln[:1] in "+-" and not ln.startswith(("---", "+++"))]
    if changed:
        where = lines[0].removeprefix("--- ").removesuffix(" (golden)")
        return f"{where}: golden {changed[0]!r}, now {changed[1]!r}" if len(changed) > 1 else f"{where}: {changed[0]}"
    return lines[0]


def _statuses_read_back(declared: Declared, s: Section) -> list[str]:
    """Every state written is read back by the mapping's own reader as a state with the same file code."""
    state = s.fields["state"]
    report = sample_status_reports()["every-state"]
    try:
        rows = declared.status_readers[s.format](declared.adapter.status_writers[s.format](report))
    except RenderError:
        return []
    except Exception as exc:  # noqa: BLE001 -- as in _run
        return [f"{s.format}: the statuses written cannot be read back: {type(exc).__name__}: {exc}"]
    problems = []
    for st, row in zip(report.statuses, rows, strict=False):
        if row.get("client_ref") != st.client_ref or state.to_file(row.get("state") or "") != state.to_file(st.state):
            problems.append(f"{s.format}: {st.client_ref} {st.state.value} reads back as {row}")
    if len(rows) != len(report.statuses):
        problems.append(f"{s.format}: {len(report.statuses)} statuses written, {len(rows)} read back")
    return problems[:3]
