"""The adapter registry: one entry-point group, loaded once; broken or duplicate adapters fail loudly.

Declared mappings (adapters/declared) come on top when the caller names their folder (`declared`, the
gateway home's `formats/`): read again whenever the folder changes, each refused on its own -- never the
installed adapters -- when it is broken or claims a name an installed adapter has."""
from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

from adapters import declared as declared_formats
from adapters.base import Adapter
from domain.errors import UnsupportedFormat

GROUP = "directlink.adapters"


class AdapterError(RuntimeError):
    """An adapter could not be loaded, or two adapters claim the same format."""


@cache
def installed() -> dict[str, Adapter]:
    """adapter name -> adapter, from every entry point of the group; loud on any defect."""
    found: dict[str, Adapter] = {}
    owner: dict[str, str] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        try:
            adapter = ep.load()
        except Exception as exc:  # re-raised with the entry point named
            raise AdapterError(f"adapter entry point {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        if not isinstance(adapter, Adapter):
            raise AdapterError(f"entry point {ep.name!r} is not an adapters.base.Adapter")
        if adapter.name in found:
            raise AdapterError(f"two adapters are named {adapter.name!r}")
        for fmt in adapter.formats:
            if fmt in owner:
                raise AdapterError(f"format {fmt!r} is claimed by {owner[fmt]!r} and {adapter.name!r}")
            owner[fmt] = adapter.name
        found[adapter.name] = adapter
    return found


_composed: dict[Path, tuple[object, tuple[dict, dict]]] = {}


def declared(folder: Path) -> tuple[dict[str, declared_formats.Declared], dict[str, str]]:
    """The usable declared mappings of a folder, and file name -> why each other one is not used.
    Worked out again only when the folder's mappings were read again (every request asks)."""
    mapped, found_broken = declared_formats.folder(folder)
    kept = _composed.get(folder)
    if kept is not None and kept[0] is mapped:
        return kept[1]
    broken = dict(found_broken)
    builtin = installed()
    owner = {fmt: a.name for a in builtin.values() for fmt in a.formats}
    usable = {}
    for name, d in sorted(mapped.items()):     # of two mappings claiming one format, the first by name serves
        clash = next((fmt for fmt in d.adapter.formats if fmt in owner), None)
        if name in builtin or clash is not None:
            what = f"the name {name!r}" if name in builtin else f"the format {clash!r}"
            whose = "installed adapter" if name in builtin or owner[clash or ""] in builtin else "declared mapping"
            broken[f"{name}{declared_formats.SUFFIX}"] = f"{what} belongs to the {whose} " \
                                                         f"{owner.get(clash or '', name)!r}"
            continue
        owner |= dict.fromkeys(d.adapter.formats, name)
        usable[name] = d
    _composed[folder] = (mapped, (usable, broken))
    return usable, broken


def adapters(folder: Path | None = None) -> dict[str, Adapter]:
    """Every adapter: the installed ones, and the usable declared mappings of `folder` if given."""
    found = dict(installed())
    if folder is not None:
        found |= {name: d.adapter for name, d in declared(folder)[0].items()}
    return found


def _find(fmt: str, kind: str, folder: Path | None) -> Adapter:
    for adapter in adapters(folder).values():
        if fmt in getattr(adapter, kind):
            return adapter
    raise UnsupportedFormat(f"no adapter for format {fmt!r}")


def payment_reader(fmt: str, folder: Path | None = None):
    """The function reading ERP payment files of `fmt`, and its adapter's limits; UNSUPPORTED_FORMAT if none."""
    adapter = _find(fmt, "payment_readers", folder)
    return adapter.payment_readers[fmt], adapter.limits


def statement_writer(fmt: str, folder: Path | None = None):
    """(writer, is_text) for a statement format; UNSUPPORTED_FORMAT if none."""
    adapter = _find(fmt, "statement_writers", folder)
    return adapter.statement_writers[fmt], fmt in adapter.text_formats


def status_writer(fmt: str, folder: Path | None = None):
    """(writer, is_text) for a payment status format; UNSUPPORTED_FORMAT if none."""
    adapter = _find(fmt, "status_writers", folder)
    return adapter.status_writers[fmt], fmt in adapter.text_formats
