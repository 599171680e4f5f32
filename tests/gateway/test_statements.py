"""Statements and balances: cursor paging without gaps or repeats, opening/closing, AsOf balances."""
from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from conftest import OPERATING, SUPPLIER
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from gateway import audit, ledger
from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q, text
from gateway.storage.tables import entries
from gateway.storage.unit_of_work import UnitOfWork


def page(client, account, after, limit):
    body = client.call(dl.statement_query(account, after=after, limit=limit)).body
    rows = [(text(e.find(q("EntryId"))), text(e.find(q("Direction"))), Decimal(text(e.find(q("Amount")))),
             Decimal(text(e.find(q("BalanceAfter"))))) for e in body.iterfind(q("Entry"))]
    return (rows, Decimal(text(body.find(q("Opening")))), Decimal(text(body.find(q("Closing")))),
            text(body.find(q("NextCursor"))), text(body.find(q("Complete"))) == "true")


def read_all(client, account, limit, cursor=""):
    entries = []
    while True:
        rows, opening, closing, cursor, complete = page(client, account, cursor, limit)
        if rows:
            assert opening == rows[0][3] - (rows[0][2] if rows[0][1] == "CRDT" else -rows[0][2])
            assert closing == rows[-1][3]
        entries += rows
        if complete:
            return entries, cursor


def assert_chain(entries):
    """EntryIds strictly increase and each BalanceAfter follows from the one before."""
    ids = [int(e[0]) for e in entries]
    assert ids == sorted(set(ids)) and ids == list(range(ids[0], ids[0] + len(ids)))
    for prev, cur in itertools.pairwise(entries):
        assert cur[3] == prev[3] + (cur[2] if cur[1] == "CRDT" else -cur[2])


def pay(client, ref, amount="1.00"):
    return client.call(dl.payment_order(dl.payment(ref, OPERATING, amount, "ACME", SUPPLIER)))


def test_paging_covers_every_entry_once(maker):
    for i in range(7):
        pay(maker, f"ST-{i}", f"{i + 1}.00")
    entries, cursor = read_all(maker, OPERATING, limit=3)
    assert len(entries) == 8                       # opening credit + 7 debits
    assert_chain(entries)
    assert entries[-1][3] == Decimal("1000000.00") - sum(Decimal(i + 1) for i in range(7))
    # caught up: the same cursor later gives an empty, complete page with opening == closing
    rows, opening, closing, same, complete = page(maker, OPERATING, cursor, 3)
    assert (rows, same, complete, opening == closing) == ([], cursor, True, True)


def test_entries_booked_between_pages_are_picked_up(maker):
    first, _, _, cursor, _ = page(maker, OPERATING, "", 1)
    pay(maker, "LATE-1")
    rest, _ = read_all(maker, OPERATING, limit=1, cursor=cursor)
    assert [r[0] for r in first + rest] == ["000000000001", "000000000002"]


def test_unknown_cursor_is_not_found(maker):
    for cursor in ("999999999999", "abc", "-1", "１"):
        answer = maker.call(dl.statement_query(OPERATING, after=cursor))
        assert (answer.status, answer.code) == (404, "NOT_FOUND"), cursor


def test_statement_of_an_account_without_grant_is_not_found(maker):
    answer = maker.call(dl.statement_query(SUPPLIER))
    assert (answer.status, answer.code) == (404, "NOT_FOUND")


def test_statement_by_date_range(maker):
    pay(maker, "DR-1")
    today = dt.date.today()
    body = maker.call(dl.E.StatementQuery(dl.E.Account(OPERATING), dl.E.From(str(today - dt.timedelta(days=1))),
                                          dl.E.To(str(today + dt.timedelta(days=1))))).body
    assert len(body.findall(q("Entry"))) == 2
    empty = maker.call(dl.E.StatementQuery(dl.E.Account(OPERATING), dl.E.From("2020-01-01"),
                                           dl.E.To("2020-01-31"))).body
    assert empty.findall(q("Entry")) == [] and text(empty.find(q("Opening"))) == "0.00"


def test_counterparty_and_references_on_the_entry(maker):
    pay(maker, "REF-1", "42.00")
    rows = maker.call(dl.statement_query(OPERATING, after="000000000001")).body.find(q("Entry"))
    assert text(rows.find(q("ClientRef"))) == "REF-1" and text(rows.find(q("EndToEndId"))) == "REF-1"
    assert text(rows.find(f"{q('Counterparty')}/{q('Account')}")) == SUPPLIER
    assert text(rows.find(q("Reversal"))) == "false"


def test_balance_as_of_a_past_day_and_today(maker, clock):
    pay(maker, "ASOF-1", "100.00")
    # The bank's days (Asia/Shanghai), not this machine's: from 16:00 UTC they are a date apart.
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    yesterday = today - dt.timedelta(days=1)
    body = maker.call(dl.balance_query(OPERATING, as_of=yesterday)).body.find(q("Balance"))
    assert text(body.find(q("Booked"))) == "0.00"   # the account was opened today
    assert text(body.find(q("AsOf"))).startswith(str(yesterday) + "T23:59:59")
    now = maker.call(dl.balance_query(OPERATING, as_of=today)).body.find(q("Balance"))
    assert text(now.find(q("Booked"))) == "999900.00"


def test_balance_query_without_accounts_lists_every_queryable_one(viewer):
    accounts = [text(b.find(q("Account"))) for b in viewer.call(dl.balance_query()).body.iterfind(q("Balance"))]
    assert accounts == ["6222000000000001", "6222000000000002"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=st.lists(st.one_of(st.tuples(st.just("pay"), st.integers(1, 500)),
                                 st.tuples(st.just("read"), st.integers(1, 4))), min_size=1, max_size=12))
def test_interleaved_bookings_and_page_reads_never_skip_or_repeat(maker, script):
    """Hypothesis interleaves payments with page reads; the pages joined equal the full statement."""
    seen, cursor = [], ""
    for action, n in script:
        if action == "pay":
            pay(maker, f"H-{dt.datetime.now().timestamp()}-{n}"[:35], f"{n}.00")
        else:
            rows, _, _, cursor, _ = page(maker, OPERATING, cursor, n)
            seen += rows
    rest, _ = read_all(maker, OPERATING, limit=5, cursor=cursor)
    everything, _ = read_all(maker, OPERATING, limit=1000)
    assert seen + rest == everything
    assert_chain(everything)


def test_date_ranges_at_the_ends_of_the_calendar(maker):
    """Dates the schema accepts at the calendar's ends are answered, never a 500 (clamped, not overflowed)."""
    whole = maker.call(dl.E.StatementQuery(dl.E.Account(OPERATING), dl.E.From("0001-01-01"), dl.E.To("9999-12-31")))
    assert whole.code == "OK" and len(whole.body.findall(q("Entry"))) == 1
    pay(maker, "CAL-1")
    found = maker.call(dl.E.PaymentStatusQuery(dl.E.From("0001-01-01"), dl.E.To("9999-12-31")))
    assert found.code == "OK" and len(found.body.findall(q("PaymentStatus"))) == 1


def test_booking_time_never_goes_backwards_along_entry_ids(gateway, clock):
    """A posting whose transaction started earlier but locked the account later is stamped no earlier than
    the entry before it, so day statements add up and date pages continue by cursor without a gap."""
    late = clock()
    early = late - dt.timedelta(seconds=5)
    with gateway.engine.begin() as conn:
        gl = ledger.internal_account("CNY", "OPENING")
        for at in (late, early):
            with UnitOfWork(conn) as uow:   # each posting's entries written before the next
                ledger.post(uow, "T", [ledger.Leg(OPERATING, "CRDT", 100, "x"), ledger.Leg(gl, "DBIT", 100, "x")],
                            at, at.date())
    with gateway.engine.connect() as conn:
        stamps = conn.execute(select(entries.c.booked_at).where(entries.c.account == OPERATING)
                              .order_by(entries.c.seq)).scalars().all()
    assert stamps == sorted(stamps) and stamps[-1] == late


def test_booking_time_never_goes_backwards_when_a_request_writes_its_entries_at_its_end(gateway, clock):
    """In a request the entries go in with its last statement (UnitOfWork.along_rows on PostgreSQL): a second
    posting on an account finds the first one's entries not written yet, and reads the last entry written
    before them, as the first posting did. Both are stamped no earlier than it."""
    late = clock()
    early = late - dt.timedelta(seconds=5)
    gl = ledger.internal_account("CNY", "OPENING")
    legs = [ledger.Leg(OPERATING, "CRDT", 100, "x"), ledger.Leg(gl, "DBIT", 100, "x")]
    with gateway.engine.begin() as conn, UnitOfWork(conn) as uow:
        ledger.post(uow, "LATE", legs, late, late.date())
    with gateway.engine.begin() as conn, UnitOfWork(conn) as uow:
        audit.append(uow, chain="BOOKING", at=early, kind="config", code="X")
        for journal in ("EARLY-1", "EARLY-2"):
            ledger.post(uow, journal, legs, early, early.date())
    with gateway.engine.connect() as conn:
        rows = conn.execute(select(entries.c.journal, entries.c.booked_at).where(entries.c.account == OPERATING)
                            .order_by(entries.c.seq)).all()
    assert [r.journal for r in rows[-3:]] == ["LATE", "EARLY-1", "EARLY-2"]
    assert [r.booked_at for r in rows[-3:]] == [late, late, late]


def test_a_posting_with_several_legs_on_one_account_numbers_and_balances_each_entry(gateway, clock):
    """Legs are booked per account in one statement: two legs on one account still get consecutive
    EntryIds, each with its own BalanceAfter, ending at the account's booked balance; the books balance."""
    now = clock()
    gl = ledger.internal_account("CNY", "OPENING")
    with gateway.engine.begin() as conn:
        before = {a: ledger.balance(conn, a)[0] for a in (OPERATING, SUPPLIER)}
        with UnitOfWork(conn) as uow:
            ledger.post(uow, "MULTI", [ledger.Leg(OPERATING, "CRDT", 500, "in"), ledger.Leg(SUPPLIER, "CRDT", 200, "x"),
                                       ledger.Leg(OPERATING, "DBIT", 120, "out"), ledger.Leg(gl, "DBIT", 580, "x")],
                        now, now.date())
    with gateway.engine.connect() as conn:
        rows = conn.execute(select(entries.c.seq, entries.c.amount, entries.c.balance_after)
                            .where(entries.c.account == OPERATING, entries.c.journal == "MULTI")
                            .order_by(entries.c.seq)).all()
        assert [r.amount for r in rows] == [500, 120] and rows[1].seq == rows[0].seq + 1
        assert [r.balance_after for r in rows] == [before[OPERATING] + 500, before[OPERATING] + 380]
        assert ledger.balance(conn, OPERATING)[0] == before[OPERATING] + 380
        assert ledger.balance(conn, SUPPLIER)[0] == before[SUPPLIER] + 200
        assert ledger.total_booked(conn) == {"CNY": 0}


def test_a_posting_that_would_take_an_account_below_its_holds_is_refused(gateway, maker, clock):
    """The ledger's own guard: whatever path posts, a client's account never goes below what it holds;
    the bank's own books may go below zero."""
    assert text(pay(maker, "HELD-1", "300000.00").body.find(".//" + q("State"))) == "PENDING_APPROVAL"   # held
    now = clock()
    gl = ledger.internal_account("CNY", "CLEARING")
    with gateway.engine.connect() as conn:
        booked, available = ledger.balance(conn, OPERATING)
        assert booked - available == 30000000
        with pytest.raises(RuntimeError, match="below what they hold"), UnitOfWork(conn) as uow:
            ledger.post(uow, "OVER", [ledger.Leg(OPERATING, "DBIT", available + 1, "x"),
                                      ledger.Leg(gl, "CRDT", available + 1, "x")], now, now.date())
        conn.rollback()
        with UnitOfWork(conn) as uow:
            ledger.post(uow, "EXACT", [ledger.Leg(OPERATING, "DBIT", available, "x"),
                                       ledger.Leg(gl, "CRDT", available, "x")],
                        now, now.date())   # exactly what is free of holds: allowed
        assert ledger.balance(conn, OPERATING) == (booked - available, 0)
        conn.rollback()


def test_holds_that_do_not_fit_the_available_balance_are_refused(gateway, clock):
    """The ledger's guard on holds, whatever path places them: the update finds no room and raises (a
    defect upstream), and the transaction cannot commit them."""
    now = clock()
    with gateway.engine.connect() as conn:
        available = ledger.balance(conn, OPERATING)[1]
        with pytest.raises(RuntimeError, match="do not fit"), UnitOfWork(conn) as uow:
            ledger.place_holds(uow, [("P-NONE", OPERATING, available + 1)], now)
        conn.rollback()
        assert ledger.balance(conn, OPERATING)[1] == available


def test_a_posting_to_an_unknown_account_books_nothing(gateway, clock):
    now = clock()
    with gateway.engine.connect() as conn:
        booked = ledger.balance(conn, OPERATING)[0]
        with pytest.raises(ValueError, match="unknown accounts"), UnitOfWork(conn) as uow:
            ledger.post(uow, "BAD", [ledger.Leg(OPERATING, "CRDT", 5, "x"), ledger.Leg("NOSUCH", "DBIT", 5, "x")],
                        now, now.date())
        conn.rollback()
        assert ledger.balance(conn, OPERATING)[0] == booked


def test_paging_resumes_across_gateway_kills_and_restarts_without_gap_or_repeat(home, tmp_path):
    """A reader pages a statement by cursor from a real `directlink serve`; another writer books entries
    between its pages (and while the gateway is down); the gateway is SIGKILLed and restarted several
    times. The pages joined are the account's whole statement: every entry once, in order."""
    import httpx
    from processes import Servers

    from gateway import sandbox
    from gateway.storage.engine import make_engine

    engine = make_engine(home.db_url)
    servers = Servers(home.home, tmp_path)
    booked = 0

    def book() -> None:
        nonlocal booked
        booked += 1
        with engine.begin() as conn:
            sandbox.credit(conn, account=OPERATING, amount=f"{booked}.00", payer_name="Payer", payer_account="1",
                           reference=f"R-{booked}", now=dt.datetime.now(dt.UTC), zone=home.zone,
                           own_cnaps_prefix=home.own_cnaps_prefix)

    seen, cursor = [], ""
    try:
        for _life in range(3):
            proc, base = servers.start()
            demo = home.home / "demo"
            with httpx.Client(timeout=30) as http:
                reader = dl.Client(base, "DEMO", "viewer", (demo / "viewer.key.pem").read_bytes(),
                                   (demo / "viewer.cert.pem").read_bytes(),
                                   home.path(home.gateway_cert).read_bytes(), http=http)
                for _ in range(3):
                    rows, *_, cursor, _ = page(reader, OPERATING, cursor, 2)
                    seen += rows
                    book()
            proc.kill()                                   # no goodbye: the next life starts from the cursor
            proc.wait()
            book()                                        # booked while no gateway runs
        proc, base = servers.start()
        with httpx.Client(timeout=30) as http:
            demo = home.home / "demo"
            reader = dl.Client(base, "DEMO", "viewer", (demo / "viewer.key.pem").read_bytes(),
                               (demo / "viewer.cert.pem").read_bytes(), home.path(home.gateway_cert).read_bytes(),
                               http=http)
            rest, _ = read_all(reader, OPERATING, 5, cursor)
            everything, _ = read_all(reader, OPERATING, 500)
    finally:
        servers.stop_all()
        engine.dispose()
    assert seen + rest == everything
    assert_chain(everything)
    assert len(everything) == 1 + booked              # the opening balance and every credit, once


def test_a_csv_statement_never_hands_a_spreadsheet_a_formula(gateway, maker):
    """Issue 29, hole 2: an incoming credit's payer name and reference come from another party. In
    template.statement.csv they start with an apostrophe, so a spreadsheet shows them and runs nothing
    (before the fix they came through verbatim); amounts keep their form, and the adapter reads the values back."""
    import base64
    import csv
    import io

    from adapters.template import read_statement
    from gateway import sandbox
    name, reference = '=HYPERLINK("http://evil.example","x")', "=1+2+cmd|' /C calc'!A0"
    with gateway.engine.begin() as conn:
        sandbox.credit(conn, account=OPERATING, amount="12.00", payer_name=name, payer_account="4000123456789",
                       payer_bank_code="102584000004", reference=reference, now=gateway.clock(),
                       zone=gateway.settings.zone, own_cnaps_prefix=gateway.settings.own_cnaps_prefix)
    answer = maker.call(dl.statement_query(OPERATING, "", 1000, "template.statement.csv"))
    assert answer.code == "OK", answer.detail
    data = base64.b64decode(text(answer.body))
    cells = [c for row in csv.reader(io.StringIO(data.decode("utf-8"), newline="")) for c in row]
    assert "'" + name in cells and name not in cells
    assert any(c.startswith("'=1+2+cmd") for c in cells) and not any(c.startswith("=") for c in cells)
    assert "12.00" in cells
    entry = read_statement(data).entries[-1]
    assert entry.counterparty.name == name and reference in (entry.narrative, entry.end_to_end_id, entry.bank_ref)
