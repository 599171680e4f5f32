"""The adapter registry: one entry-point group, loaded once; broken or duplicate adapters fail loudly."""
from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from adapters.base import Adapter
from domain.errors import UnsupportedFormat

GROUP = "directlink.adapters"


class AdapterError(RuntimeError):
    """An adapter could not be loaded, or two adapters claim the same format."""


@cache
def adapters() -> dict[str, Adapter]:
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


def _find(fmt: str, kind: str) -> Adapter:
    for adapter in adapters().values():
        if fmt in getattr(adapter, kind):
            return adapter
    raise UnsupportedFormat(f"no adapter for format {fmt!r}")


def payment_reader(fmt: str):
    """The function reading ERP payment files of `fmt`, and its adapter's limits; UNSUPPORTED_FORMAT if none."""
    adapter = _find(fmt, "payment_readers")
    return adapter.payment_readers[fmt], adapter.limits


def statement_writer(fmt: str):
    """(writer, is_text) for a statement format; UNSUPPORTED_FORMAT if none."""
    adapter = _find(fmt, "statement_writers")
    return adapter.statement_writers[fmt], fmt in adapter.text_formats


def status_writer(fmt: str):
    """(writer, is_text) for a payment status format; UNSUPPORTED_FORMAT if none."""
    adapter = _find(fmt, "status_writers")
    return adapter.status_writers[fmt], fmt in adapter.text_formats
