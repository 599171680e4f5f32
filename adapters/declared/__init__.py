"""Formats by declaration: an integrator describes an ERP or treasury file format in a TOML mapping and
gets an adapter, without code (what SAP's DMEE does for payment media).

    spec.py     the mapping's keys, checked, with the line and key of every fault (MappingError)
    syntax.py   JSON, XML, CSV and fixed-width files <-> tables of text values, both ways
    kinds.py    tables <-> payments (PaymentFile), statements and statuses, both ways

adapters/kit_mapping.py runs the conformance kit on a mapping (outside this package: the kit reads the
registry, which reads this package).

A mapping is data: it cannot run code, name a file or a host, declare XML entities (files are parsed by
gateway.protocol.xmlsafe) or ask for unbounded sizes (spec.py has every bound). `directlink adapters add
FILE` checks a mapping and copies it into the gateway home's `formats/` folder; the registry reads that
folder again whenever a file in it changes (see `folder()`), so a new format needs no restart.
docs/declared-formats.md is the integrator's guide; the Yonyou adapter (adapters/yonyou) is a built-in
mapping.
"""
from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from adapters.base import Adapter, Limits
from adapters.declared import kinds
from adapters.declared.spec import Mapping, MappingError, parse

__all__ = ["Declared", "MappingError", "build", "folder", "load", "load_text"]
SUFFIX = ".toml"


@dataclass(frozen=True)
class Declared:
    """A checked mapping and the adapter it makes; `payment_writers` and `status_readers` are the reverse
    directions (round trips, sample files, tests), which the gateway itself never calls."""

    mapping: Mapping
    adapter: Adapter
    payment_writers: dict = field(default_factory=dict)
    status_readers: dict = field(default_factory=dict)
    digest: str = ""                         # sha256 of the mapping's text: compare replicas with it


def build(mapping: Mapping) -> Declared:
    payments, statements, statuses = mapping.of("payments"), mapping.of("statements"), mapping.of("statuses")
    written = (*statements, *statuses)
    adapter = Adapter(
        name=mapping.name,
        description=mapping.description or f"declared mapping {mapping.name}",
        payment_readers={s.format: partial(kinds.read_payments, s) for s in payments},
        statement_writers={s.format: partial(kinds.write_statement, s) for s in statements},
        status_writers={s.format: partial(kinds.write_statuses, s) for s in statuses},
        statement_readers={s.format: partial(kinds.read_statement, s) for s in statements},
        text_formats=frozenset(s.format for s in written if s.syntax != "xml"),
        limits=Limits(
            max_transactions=max((s.max_records for s in payments), default=1000),
            amount_unit="minor" if payments and all(s.fields["amount"].unit == "fen" for s in payments) else "major",
            encodings=tuple(sorted({s.encoding for s in mapping.sections})) or ("utf-8",)),
    )
    digest = hashlib.sha256(mapping.source.encode("utf-8")).hexdigest()
    return Declared(mapping, adapter, {s.format: partial(kinds.write_payments, s) for s in payments},
                    {s.format: partial(kinds.read_statuses, s) for s in statuses}, digest)


def load_text(text: str, base: Path | None = None) -> Declared:
    return build(parse(text, base))


def load(path: Path) -> Declared:
    """A mapping file: UTF-8 TOML (as TOML requires), at most spec.MAX_MAPPING_BYTES."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise MappingError(0, "mapping", f"{path} cannot be read ({err.strerror or err})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MappingError(0, "mapping", f"{path} is not UTF-8 (TOML files are), at byte {err.start}") from None
    return load_text(text, path.parent)


# ---- a folder of mappings, read again when it changes ---------------------------------------------------

_lock = threading.Lock()
_seen: dict[Path, tuple[tuple, dict[str, Declared], dict[str, str]]] = {}


def _signature(root: Path) -> tuple:
    try:
        with os.scandir(root) as it:
            return tuple(sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in it
                                if e.name.endswith(SUFFIX) and e.is_file()))
    except FileNotFoundError:
        return ()


def folder(root: Path) -> tuple[dict[str, Declared], dict[str, str]]:
    """(mapping name -> Declared, file name -> why it cannot be used) for the mappings in `root`.

    Read again only when a file in it was added, removed or changed (one directory scan per call), so a
    mapping added by `directlink adapters add` is served by running gateways at the next request. A file
    that fails its checks (edited by hand after `add`, say) serves nothing and is reported, while the other
    mappings go on."""
    signature = _signature(root)
    with _lock:
        kept = _seen.get(root)
        if kept is not None and kept[0] == signature:
            return kept[1], kept[2]
    good: dict[str, Declared] = {}
    broken: dict[str, str] = {}
    for name, _, _ in signature:
        try:
            declared = load(root / name)
        except MappingError as err:
            broken[name] = str(err)
            continue
        if declared.mapping.name != name.removesuffix(SUFFIX):
            broken[name] = f"the file of mapping {declared.mapping.name!r} must be named {declared.mapping.name}{SUFFIX}"
            continue
        good[declared.mapping.name] = declared
    with _lock:
        _seen[root] = (signature, good, broken)
    return good, broken
