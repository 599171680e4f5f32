"""Statement files for reconciliation: which format a file is in, and which reader reads it.

Readers come from the adapters (every `statement_readers` entry of every registered adapter) plus the
gateway's own answer format, "directlink" (reconcile/native.py). Without --format the first bytes decide:
XML in the ISO 20022 camt namespace, XML in urn:directlink:v1, ":20:" or a SWIFT block (MT940), "01,"
(BAI2), JSON with formid bei_transdetail (Kingdee), or else a :25: line followed by :60F:/:60M: (MT940
after a bank's header lines, or without :20:). A file may hold several accounts, and several files may
be given: each account's statements are joined in the order given, and must follow each other without a
gap. Read leniently, a file whose figures disagree (balances, control totals, a gap) is read anyway and
each inconsistency is returned with the statements (adapters/readback.py says which faults those are).
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from adapters.base import DocumentInvalid
from adapters.readback import SeveralAccounts, accounts, leniently
from adapters.registry import adapters
from domain.models import Statement
from reconcile import xlsx
from reconcile.native import FORMAT as NATIVE
from reconcile.native import read_native

XLSX = "xlsx"                         # a spreadsheet statement, read through the user's column mapping
_CAMT = re.compile(rb"urn:iso:std:iso:20022:tech:xsd:(camt\.05[234]\.001\.[0-9]{2})")
# MT940 after a bank's header lines (ABN AMRO's "ABNANL2A"/"940") or without :20:: an account and an opening.
_MT940 = re.compile(rb"(?:^|\n):25:[^\n]*\n(?:[^\n]*\n)*?:60[FM]:")


class StatementFileInvalid(ValueError):
    def __init__(self, where: str, detail: str):
        super().__init__(f"{where}: {detail}")
        self.where, self.detail = where, detail


@dataclass(frozen=True)
class Statements:
    """What the statement files say: one statement per account, in the order the files first name them,
    and (read leniently) the inconsistencies found, each naming its file and place."""

    statements: tuple[Statement, ...]
    inconsistencies: tuple[str, ...] = ()


def readers(formats: Path | None = None) -> dict[str, Callable[[bytes], Statement]]:
    """Format name -> reader, for every statement format that can be read: the installed adapters', and
    those of the declared mappings in the folder `formats` if given (docs/declared-formats.md)."""
    found: dict[str, Callable[[bytes], Statement]] = {NATIVE: read_native}
    for adapter in adapters(formats).values():
        found.update(adapter.statement_readers)
    return found


def detect(data: bytes) -> str | None:
    """The statement format the bytes look like, or None."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        camt = _CAMT.search(head)
        if camt:
            return camt.group(1).decode("ascii")
        return NATIVE if b"urn:directlink:v1" in head else None
    if head.startswith((b":20:", b"{1:", b":940:")):
        return "mt940"
    if head.startswith(b"01,"):
        return "bai2"
    if head.startswith(b"{") and b"bei_transdetail" in head:
        return "kingdee.statement.json"
    if _MT940.search(head):
        return "mt940"
    return None


def _reader(fmt: str, known: dict) -> Callable[[bytes], Statement]:
    if fmt in known:
        return known[fmt]
    # A camt version we have no writer for still reads with the camt reader (it reads every revision).
    if fmt.startswith("camt.05"):
        return next(r for name, r in known.items() if name.startswith("camt.05"))
    raise StatementFileInvalid("--format", f"no reader for {fmt!r}; formats: {', '.join(sorted(known))}")


def _read(path: Path, fmt: str | None, noted: list[str] | None, columns: Mapping | None = None,
          formats: Path | None = None) -> list[Statement]:
    """One statement file's statements (one per account), in `fmt` or the format it looks like; read
    leniently when given a list `noted` to add the inconsistencies to. An XLSX statement is read through
    the column mapping `columns` (reconcile/xlsx.py); `formats`: a folder of declared mappings."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise StatementFileInvalid(str(path), f"cannot be read: {err.strerror or err}") from None
    if fmt == XLSX or (fmt is None and xlsx.is_xlsx(data)):
        if columns is None:
            raise StatementFileInvalid(str(path), "an XLSX statement is read through a column mapping: give it "
                                                  "with --columns FILE (docs/reconciliation.md)")
        fmt, known = XLSX, {XLSX: lambda data: xlsx.read_statement(data, columns, "")}
    else:
        known = readers(formats)
    fmt = fmt or detect(data)
    if fmt is None:
        raise StatementFileInvalid(str(path), "format not recognised; name it with --format "
                                              f"({', '.join(sorted(known))})")
    reader = known[fmt] if fmt == XLSX else _reader(fmt, known)
    where = f"{path.name} ({fmt})"
    found: list[str] = []
    try:
        with leniently() if noted is not None else contextlib.nullcontext([]) as found:
            statements = [reader(data)]
    except SeveralAccounts as several:
        statements = list(several.statements)
    except DocumentInvalid as err:
        raise StatementFileInvalid(f"{where} {err.where}".rstrip(), err.detail) from None
    if noted is not None:
        noted += [f"{where} {note}" for note in found]
    return statements


def read(path: Path, fmt: str | None = None) -> Statement:
    """One statement file of one account, in `fmt` or the format it looks like."""
    return read_all([path], fmt)


def read_accounts(paths: Sequence[Path], fmt: str | None = None, *, account: str | None = None,
                  lenient: bool = False, columns: Mapping | None = None, formats: Path | None = None) -> Statements:
    """Every account of the files, each account's statements joined in the order given; with `account`
    only that one (StatementFileInvalid naming the accounts there are if it is not in the files)."""
    noted: list[str] = []
    pages = [st for p in paths for st in _read(p, fmt, noted if lenient else None, columns, formats)]
    try:
        with leniently() if lenient else contextlib.nullcontext([]) as found:
            statements = accounts(pages, where="statement files: ")
    except DocumentInvalid as err:
        raise StatementFileInvalid(err.where, err.detail) from None
    noted += found
    if account is not None:
        wanted = account.replace(" ", "")
        chosen = [st for st in statements if st.account.replace(" ", "") == wanted]
        if not chosen:
            raise StatementFileInvalid("--account", f"{account!r} is not in the statement files; they report "
                                                    f"{', '.join(st.account for st in statements)}")
        statements = chosen
    return Statements(tuple(statements), tuple(noted))


def read_all(paths: Sequence[Path], fmt: str | None = None) -> Statement:
    """Several files of one account, in the order given, as one statement (refused if strict reading
    finds an inconsistency, or the files report several accounts)."""
    statements = read_accounts(paths, fmt).statements
    if len(statements) > 1:
        names = ", ".join(f"{st.account} {st.currency}" for st in statements)
        raise StatementFileInvalid("statement files", f"several accounts ({names}); choose one with --account")
    return statements[0]
