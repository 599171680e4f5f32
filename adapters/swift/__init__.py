"""SWIFT MT940 customer statements, as banks deliver them to ERPs (SAP FF_5/FEBAN, Oracle Cash Management).

Framing: plain MT940 text WITHOUT SWIFT FIN header blocks ({1:...}{2:...}{4: ... -}). That is how banks
hand statement files to ERPs (EBICS STA download, SFTP), and ERP importers look for the tags at the start
of lines. One statement page (one StatementQuery answer) is one message: it begins with :20: and ends
with a line holding only "-". Lines end with CRLF; the file is ASCII.

Fields:
  :20:  transaction reference, 16x: the account's last digits, "-", the page's first EntryId
        (unique per page; "-E<cursor>" for a page without entries)
  :25:  "<bank BIC>/<account>" (the IBAN when the account has one), or the bare account if over 35x
  :28C: statement number / sequence: first EntryId of the page (wrapped into 1-99999), "/001";
        a page without entries is statement 00000, so it never collides with a page that has entries
  :60F: opening balance, :62F: closing balance: C/D mark, YYMMDD, currency, amount with decimal comma
        and exactly the currency's decimals (JPY none: "1250,"). Every page is a statement of its own
        (F, not M): an ERP imports each page independently and cannot know which pages will follow.
  :61:  value date YYMMDD, entry date MMDD (booking day, see common.booking_day), mark C/D, or RD/RC
        for reversals (RD = reversal of a debit: money back in; RC = reversal of a credit: money out),
        amount, type NTRF (transfer with a counterparty account), NMSC (other bookings), NRTI (returned
        item: every reversal), customer reference = ClientRef, "//" bank reference = BankRef. Both are
        16x. A ClientRef that does not fit (or is not SWIFT X as it stands) is not shortened into a
        reference that looks real but is not: the customer reference is NONREF and the ClientRef is
        written whole in :86: as /KREF/. A longer BankRef is shortened to a derived form (its first 4 and
        last 12 characters: payment ids P<date><hex> keep their unique hex tail, returns R<payment id>
        stay distinct from the payment), and the full BankRef follows as supplementary details on the
        next line, where MT940 puts the bank's longer reference.
  :86:  "/EREF/<EndToEndId>/KREF/<ClientRef, when it differs>/CNTP/<account>/<bank code>/<name>
        /REMI/<narrative>", at most 6 lines of at most 65 characters including the tag. The remittance
        text comes last because it is what gets shortened if the field is full. Values never contain
        "/" (replaced by "-") or "?" (replaced by ".": a "?NN" looks like the German structured :86:
        that parsers such as mt-940 would then take apart).
  :64:  not written: the Statement carries no available balance, and a guessed one is worse than none.

Character set: SWIFT X. Chinese is spelled in pinyin, other characters outside it are replaced; see
adapters/swift/common.py for the exact rules. Continuation lines never start with ":" or "-" (a line
":NN:" would open a new tag, a line "-" ends the message) and never start or end with a blank, which
readers strip; lines are wrapped a little early instead of changing the text. Every line stays within
65 characters except, possibly, a :61: line: it follows its own field format (6!n4!n2a15d1!a3!c16x//16x,
up to 65 after the tag), which only exceeds 65 in all for amounts of nine digits or more.
"""
from __future__ import annotations

from collections.abc import Iterator

from adapters.base import AccountFacts, Adapter
from adapters.swift import common
from adapters.swift.mt940_read import read_mt940
from domain.models import Statement, StatementEntry
from domain.money import minor_units

FORMAT = "mt940"
LINE = 65                                  # SWIFT line length; we keep whole physical lines within it
DETAIL_LINES = 6                           # :86: is 6*65x
_VALUE_CHARS = common.SWIFT_X - {"/", "?"}
_MARKS = {("CRDT", False): "C", ("DBIT", False): "D", ("CRDT", True): "RD", ("DBIT", True): "RC"}
_AMOUNT_WIDTH = 15                         # 15d, the decimal comma included


def amount_text(value_minor: int, currency: str) -> str:
    """An unsigned SWIFT amount: decimal comma, exactly the currency's decimals, always a comma."""
    digits = minor_units()[currency]
    whole, fraction = divmod(abs(value_minor), 10 ** digits)
    text = f"{whole}," + (f"{fraction:0{digits}d}" if digits else "")
    if len(text) > _AMOUNT_WIDTH:
        raise ValueError(f"amount {text} {currency} does not fit SWIFT's 15d")
    return text


def _balance(tag: str, value_minor: int, day, currency: str) -> str:
    mark = "D" if value_minor < 0 else "C"
    return f":{tag}:{mark}{day:%y%m%d}{currency}{amount_text(value_minor, currency)}"


def reference16(value: str | None) -> str:
    """A 16x reference (SWIFT X, no leading/trailing "/", no "//"); "" when nothing is left."""
    text = common.fold(value, common.SWIFT_X).replace(" ", "")
    if len(text) > 16:
        text = text[:4] + text[-12:]       # the tail is where sequence numbers and random parts live
    while "//" in text:
        text = text.replace("//", "/")
    return text.strip("/")


def _customer_reference(entry: StatementEntry) -> str:
    """The ClientRef if :61: can carry it exactly, else NONREF (then :86: has it as /KREF/)."""
    short = reference16(entry.client_ref)
    return short if short and short == entry.client_ref else "NONREF"


def _header(statement: Statement, facts: AccountFacts) -> list[str]:
    account = statement.account
    key = common.statement_key(statement)
    suffix = f"-{key}" if key else f"-E{common.last_delivered(statement)}"
    reference = common.fold(account, common.SWIFT_X).replace(" ", "")[-(16 - len(suffix)):] + suffix
    identification = f"{facts.bank_bic}/{facts.iban or account}"
    if len(identification) > 35:
        identification = facts.iban or account
    number = (key - 1) % 99999 + 1 if key else 0
    return [f":20:{reference}", f":25:{identification}", f":28C:{number:05d}/001"]


def _type_code(entry: StatementEntry) -> str:
    if entry.reversal:
        return "NRTI"
    return "NTRF" if entry.counterparty is not None and entry.counterparty.account else "NMSC"


def _statement_line(entry: StatementEntry, currency: str) -> list[str]:
    amount = amount_text(common.minor(entry.amount, currency), currency)
    customer = _customer_reference(entry)
    full_bank = common.fold(entry.bank_ref, common.SWIFT_X).replace(" ", "")
    bank = reference16(entry.bank_ref) or "NONREF"
    mark = _MARKS[entry.direction, entry.reversal]
    lines = [f":61:{entry.value_date:%y%m%d}{common.booking_day(entry):%m%d}{mark}{amount}"
             + f"{_type_code(entry)}{customer}//{bank}"]
    supplementary = full_bank[:34].lstrip(":-")   # 34x on a line of its own: not ":NN:" nor "-"
    if bank != full_bank and supplementary:
        lines.append(supplementary)
    return lines


def _value(text: str | None) -> str:
    return common.fold(text, _VALUE_CHARS)


def details_text(entry: StatementEntry, facts: AccountFacts) -> str:
    """The :86: content as one string, before wrapping."""
    parts = []
    e2e = _value(entry.end_to_end_id)
    if e2e:
        parts.append(f"/EREF/{e2e}")
    client = _value(entry.client_ref)
    if client and (client != e2e or _customer_reference(entry) == "NONREF"):
        parts.append(f"/KREF/{client}")
    party = entry.counterparty
    if party is not None:
        bank = party.bank
        code = "" if bank is None else (bank.code or (facts.bank_bic if bank.scheme == "INTERNAL" else ""))
        parts.append(f"/CNTP/{_value(party.account)}/{_value(code)}/{_value(party.name)}")
    parts.append(f"/REMI/{_value(entry.narrative)}")
    return "".join(parts)


def wrap(text: str, first: int, width: int, max_lines: int) -> list[str]:
    """Cut `text` into lines (the first `first` long, the others `width`), at most `max_lines`.

    A cut moves left (by up to 16 characters) until the line does not end with a blank and the next does
    not start with a blank, ":" or "-". The text itself is not changed (short of a run of 16 such
    characters), so readers that join the lines without a separator get it back exactly. What does not
    fit into `max_lines` is dropped."""
    lines, limit = [], first
    while len(text) > limit and len(lines) < max_lines:
        cut = next((c for c in range(limit, max(limit - 16, 0), -1) if text[c - 1] != " " and text[c] not in " :-"),
                   None)
        if cut is None:                    # only in pathological texts ("- - - - ..."): mend the start
            cut = limit
            text = text[:cut] + ("." if text[cut] in ":-" else "") + text[cut:].lstrip(" :-")
        lines.append(text[:cut])
        text, limit = text[cut:], width
    if len(lines) < max_lines and text:
        lines.append(text)
    return [line.rstrip() for line in lines]


def _details(entry: StatementEntry, facts: AccountFacts) -> list[str]:
    lines = wrap(details_text(entry, facts), LINE - len(":86:"), LINE, DETAIL_LINES)
    return [":86:" + lines[0], *lines[1:]]


ENTRIES_PER_CHUNK = 256     # about 100 KB of text


def stream_mt940(statement: Statement, facts: AccountFacts) -> Iterator[bytes]:
    """One statement page as an MT940 message, in chunks of whole lines (CRLF after each), so that an export
    of 100,000 entries never sits in memory as one text. The balances are checked before the first chunk: a
    statement that does not add up yields nothing."""
    currency = statement.currency
    opening, closing = common.checked_balances(statement)
    lines = _header(statement, facts)
    lines.append(_balance("60F", opening, statement.opening_date, currency))
    for i, entry in enumerate(statement.entries, 1):
        lines += _statement_line(entry, currency)
        lines += _details(entry, facts)
        if i % ENTRIES_PER_CHUNK == 0:
            yield _chunk(lines)
            lines = []
    lines.append(_balance("62F", closing, statement.closing_date, currency))
    lines.append("-")
    yield _chunk(lines)


def _chunk(lines: list[str]) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode("ascii")


def write_mt940(statement: Statement, facts: AccountFacts) -> bytes:
    """One statement page as an MT940 message (see the module docstring for every choice)."""
    return b"".join(stream_mt940(statement, facts))


ADAPTER = Adapter(
    name="swift",
    description="SWIFT MT940 customer statements (plain text, no FIN blocks) for SAP, Oracle and others",
    statement_writers={FORMAT: write_mt940},
    statement_readers={FORMAT: read_mt940},
    text_formats=frozenset({FORMAT}),
)

# The kit's hook: the statement writer's output must read back balanced (docs/adapters.md section 4).
STATEMENT_READERS = ADAPTER.statement_readers
