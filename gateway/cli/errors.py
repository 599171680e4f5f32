"""What a failed command prints and exits with (spec section 7, docs/protocol.md): one line on standard error
naming what is wrong and what to do, and a status scripts can act on. Commands raise what they raise; this is
the one place that turns it into that line, so a new command gets it without a try block of its own."""
from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Callable

import typer

DONE, REFUSED, USAGE, UNREACHABLE = 0, 1, 2, 3   # 1 is also a bug's status: it is what Python exits with

_debug = os.environ.get("DIRECTLINK_DEBUG") == "1"


def debug_option(debug: bool = typer.Option(False, "--debug", help="show the traceback of a failure (or set "
                                            "DIRECTLINK_DEBUG=1)")) -> None:
    # The root option, so it goes before the subcommand: `directlink --debug send ...`.
    global _debug
    _debug = _debug or debug


def run(command: Callable[[], object]) -> None:
    """Run the whole command; a failure it did not explain itself becomes one line and its exit status."""
    from gateway.cli.usage import ClickException, NoArgsIsHelpError, usage_line
    try:
        status = command()
    except NoArgsIsHelpError:
        sys.exit(USAGE)   # the help was shown: a group given no command is still a usage error
    except ClickException as err:   # a usage error (unknown option, missing argument, bad value)
        _exit(usage_line(err) if not _debug else err.format_message(), err.exit_code)
    except typer.Abort:
        _exit("aborted", REFUSED)
    except SystemExit as stop:
        # The settings and the gateway key stop with a message (they are shared with the server).
        if isinstance(stop.code, str) and not _debug:
            _exit(stop.code, USAGE)
        raise
    except Exception as err:
        if _debug:
            raise
        _exit(*explain(err))
    # Run without click's standalone mode (so that usage errors reach this function), the command returns
    # its exit status instead of exiting with it.
    sys.exit(status if isinstance(status, int) else DONE)


def _exit(message: str, status: int) -> None:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(status)


def explain(err: Exception) -> tuple[str, int]:
    """The line and status for an exception, by what kind of mistake it is."""
    # Imported here, not at the top: each is only needed when a command has failed (see common.py).
    import httpx
    from lxml import etree
    from pydantic import ValidationError
    from sqlalchemy.exc import IntegrityError, OperationalError

    from domain.errors import SignatureRejected
    if isinstance(err, FileNotFoundError):
        return f"{err.filename}: no such file; check the path", USAGE
    if isinstance(err, OSError) and err.filename:
        return f"{err.filename}: {err.strerror}", USAGE
    if isinstance(err, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return f"{err}: give the gateway's URL as http://HOST:PORT or https://HOST:PORT", USAGE
    if isinstance(err, httpx.TransportError):
        return f"cannot reach the gateway ({err}): is it running at that URL?", UNREACHABLE
    if isinstance(err, SignatureRejected):
        return (f"the gateway's answer is not trusted: {err.detail}; check that the pinned gateway certificate "
                "is this gateway's"), UNREACHABLE
    if isinstance(err, tomllib.TOMLDecodeError):
        return f"not valid TOML ({err}): fix the file", USAGE
    if isinstance(err, ValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in err.errors())
        where = "directlink.toml or its DIRECTLINK_* variables" if err.title == "Settings" else err.title
        return f"invalid {where}: {problems}", USAGE
    if isinstance(err, etree.XMLSyntaxError):
        return f"not well-formed XML: {err}", USAGE
    if isinstance(err, IntegrityError):
        return f"refused by the database: {err.orig}; check that what it names exists", USAGE
    if isinstance(err, OperationalError):
        return f"cannot use the database: {err.orig}; check database_url in directlink.toml", USAGE
    return f"{type(err).__name__}: {err} (rerun with --debug for the traceback)", REFUSED
