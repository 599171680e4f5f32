"""How `--help` shows options and how a mistyped command line is reported.

Typer (0.29 with click 8.5) labels every option with a value type, flags too (`--once <bool>`), which reads as
if the flag took a value: users typed `--once true` and failed. A flag is shown bare here, as click does. Its
usage errors come in a box of several lines; `directlink` reports them as one line like every other failure
(errors.py), so scripts and people read one kind of message."""
from __future__ import annotations

from typing import Any

# Typer 0.29 carries its own copy of click; its exceptions are the ones a command line raises.
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.core import TyperOption

__all__ = ["ClickException", "NoArgsIsHelpError", "usage_line"]

_typed = TyperOption.display_type_rich


def _flag_bare(self: TyperOption, ctx: Any) -> str | None:
    return None if self.is_flag else _typed(self, ctx)


TyperOption.display_type_rich = _flag_bare   # type: ignore[method-assign]


def usage_line(err: ClickException) -> str:
    """A usage error as one line: what click found wrong and where the command's options are listed."""
    ctx = getattr(err, "ctx", None)
    where = f"; `{ctx.command_path} --help` lists its arguments and options" if ctx is not None else ""
    return f"{err.format_message().rstrip('.')}{where}"
