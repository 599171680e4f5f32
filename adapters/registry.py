"""The adapter registry: one entry-point group, loaded once; broken or duplicate adapters fail loudly."""
from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from domain.errors import UnsupportedFormat

GROUP = "directlink.adapters"


class AdapterError(RuntimeError):
    """An adapter could not be loaded, or two adapters claim the same format."""


@cache
def adapters() -> dict[str, object]:
    """format name -> adapter object, from every entry point of the group."""
    found: dict[str, object] = {}
    for ep in entry_points(group=GROUP):
        try:
            adapter = ep.load()
        except Exception as exc:  # noqa: BLE001 - re-raised with the entry point named
            raise AdapterError(f"adapter entry point {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        for fmt in getattr(adapter, "formats", ()):
            if fmt in found:
                raise AdapterError(f"format {fmt!r} is claimed by two adapters (one is {ep.name!r})")
            found[fmt] = adapter
    return found


def get(fmt: str) -> object:
    """The adapter for a format, or UNSUPPORTED_FORMAT."""
    try:
        return adapters()[fmt]
    except KeyError:
        raise UnsupportedFormat(f"no adapter for format {fmt!r}") from None
