"""The race attacks of the security catalogue (security.md D: IDM-01..03, 09, 10; F: AUT-04) across two
replicas (issue 29): two real `directlink serve` processes on one PostgreSQL schema, each race fired at both
at once from threads released by one barrier, over loopback. What one process guarantees with its own
threads must hold when the racers are in different processes and only the database orders them: one effect
per MessageId and per ClientRef, no limit or balance overshot, one approval counted, one of a cancel and an
approval winning, a payee's duplicate seen from another account. After every race the books balance, every
hold matches its payment and the audit chain verifies (test_crash.check_books).

The two replicas and the schema are shared by the module (starting them is most of the cost); each test
opens accounts of its own (and grants, tiers, rules on them only), so the tests do not see each other's
payments, limits or rules. Each race runs a few rounds: a round whose racers happen not to overlap proves
nothing, and the assertions hold for every round.

Each test was run against a broken gateway and failed: the MessageId's primary key dropped (the
MessageId tests), the ClientRef's unique key dropped (the ClientRef tests), no `FOR UPDATE` on the
accounts (the limit and funds test) or on the payment in lifecycle (the approval and cancel tests), no
client lock before a payee rule's facts (the payee test). Clearing does not run in these replicas, so
that what is held stays held and the books are read at rest."""
from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import itertools
import threading
from dataclasses import dataclass

import httpx
import pytest
from conftest import SUPPLIER, _pg_schema
from processes import Servers, cli
from sqlalchemy import func, select
from test_crash import check_books, message_id, operator, post_raw, report, verified

from gateway import directory, rulebook
from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q, text
from gateway.setup import init_home
from gateway.storage.engine import make_engine
from gateway.storage.tables import accounts, entries, messages, payment_approvals, payment_events, payments

pytestmark = pytest.mark.slow

ROUNDS = 4
CNAPS = {"scheme": "CNAPS", "bank_code": "102290012345"}   # another bank: accepted with the funds held
_numbers = itertools.count(1)


@dataclass
class Cluster:
    settings: object          # gateway.settings.Settings of the shared home
    bases: list[str]          # the two replicas' base URLs
    engine: object            # a test-side engine on the same schema


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    schema = _pg_schema()
    url = next(schema)                      # skips the module without DIRECTLINK_TEST_DATABASE_URL
    tmp = tmp_path_factory.mktemp("races")
    settings = init_home(tmp / "home", database_url=url)
    servers = Servers(settings.home, tmp)
    engine = make_engine(url)
    try:
        # No clearing pass during the races (its first is an hour away): what is held stays held, so each
        # test can count it, and the books are read at rest. Clearing's own races: test_replicas, test_clearing.
        bases = [servers.start(DIRECTLINK_CLEARING_INTERVAL_SECONDS="3600")[1] for _ in range(2)]
        yield Cluster(settings, bases, engine)
    finally:
        servers.stop_all()
        engine.dispose()
        next(schema, None)                  # drops the schema


@pytest.fixture(scope="module")
def maker(cluster):
    return operator(cluster.settings, "maker")


@pytest.fixture(scope="module")
def checker(cluster):
    return operator(cluster.settings, "checker")


@pytest.fixture(scope="module")
def viewer(cluster):
    return operator(cluster.settings, "viewer")


@pytest.fixture(autouse=True)
def books_hold_after_each_race(cluster):
    yield
    check_books(cluster.engine, "after the race")


# ---- helpers -------------------------------------------------------------------------------------------------

def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def open_account(cluster: Cluster, opening: str, *, daily_limit: str | None = None,
                 approvers: tuple[str, ...] = (), threshold: str | None = None, approvals: int = 1) -> str:
    """A new DEMO account of this test's own, funded with `opening`: the maker may pay from it (no single
    limit; `daily_limit` if given), `approvers` may approve, and payments at or over `threshold` need
    `approvals` approvals. The replicas see it on their next request (the configuration's version moves on)."""
    number = f"62229{next(_numbers):011d}"
    with cluster.engine.begin() as conn:
        directory.open_account(conn, number, "DEMO", f"race account {number}", "CNY", opening, now(),
                               dt.date.today())
        directory.set_grant(conn, "DEMO", "maker", number, {"query", "pay"}, None, daily_limit, now())
        for who in approvers:
            directory.set_grant(conn, "DEMO", who, number, {"query", "approve"}, None, None, now())
        if threshold:
            directory.set_approval_policy(conn, "DEMO", number, threshold, approvals, now())
    return number


def race(cluster: Cluster, shots: list[tuple[int, bytes]]) -> list[httpx.Response]:
    """Post each (replica, body) from a thread of its own, all released at once by one barrier; the
    responses in order. Bounded: the barrier waits 10 s at most, each post 20 s."""
    gate = threading.Barrier(len(shots), timeout=10)

    def fire(shot: tuple[int, bytes]) -> httpx.Response:
        replica, body = shot
        gate.wait()
        return httpx.post(f"{cluster.bases[replica]}/v1/messages", content=body,
                          headers={"Content-Type": "application/xml"}, timeout=20)

    with cf.ThreadPoolExecutor(len(shots)) as pool:
        return list(pool.map(fire, shots))


def answers(client: dl.Client, shots: list[tuple[int, bytes]], resps: list[httpx.Response]) -> list[dl.Answer]:
    return [verified(client, body, resp) for (_, body), resp in zip(shots, resps)]


def spread(bodies: list[bytes]) -> list[tuple[int, bytes]]:
    """Body i to replica i % 2."""
    return [(i % 2, b) for i, b in enumerate(bodies)]


def only(answer: dl.Answer) -> tuple[str, str | None, str]:
    """(State, Reason code, PaymentId) of an answer about one payment."""
    assert answer.code == "OK", (answer.code, answer.detail)
    (got,) = report(answer).values()
    return got


def count(cluster: Cluster, table, *where) -> int:
    with cluster.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar()


def parse_minor(amount: str) -> int:
    return int(amount.replace(".", ""))


def booked(cluster: Cluster, number: str) -> tuple[int, int]:
    with cluster.engine.connect() as conn:
        return tuple(conn.execute(select(accounts.c.booked, accounts.c.held)
                                  .where(accounts.c.number == number)).one())


def pending_payment(cluster: Cluster, maker: dl.Client, debtor: str, ref: str) -> tuple[str, str]:
    """A payment within the bank waiting for one approval: (PaymentId, OrderDigest)."""
    body = maker.request(dl.payment_order(dl.payment(ref, debtor, "5000.00", "ACME", SUPPLIER)))
    answer = verified(maker, body, post_raw(cluster.bases[0], body))
    st = answer.body.find(q("PaymentStatus"))
    assert text(st.find(q("State"))) == "PENDING_APPROVAL", answer.detail
    return text(st.find(q("PaymentId"))), text(st.find(q("OrderDigest")))


# ---- one MessageId (IDM-01, replay) ----------------------------------------------------------------------------

def test_the_same_signed_request_on_both_replicas_acts_once_with_one_answer(cluster, maker):
    """The same bytes, six times at once, three to each replica, twice a round: a payment to another bank
    (held), then the cancel of it. Each acts once (one payment, one move to CANCELLED), one MessageId is
    stored, and every answer is the same signed bytes (the winner's, answered again to its twins). Would
    catch a MessageId claim that is per process, or a twin that acts again or answers with an answer of
    its own. The cancel is the sharp half: with the MessageId's unique key dropped, the payment's twins
    still act once (they lose at the ClientRef's key instead), but the cancel's twins each store an answer."""
    debtor = open_account(cluster, "1000.00")

    def twins(body: bytes) -> tuple[str, str | None, str]:
        shots = spread([body] * 6)
        got = answers(maker, shots, race(cluster, shots))
        assert len({a.raw for a in got}) == 1
        assert count(cluster, messages, messages.c.message_id == message_id(body)) == 1
        return only(got[0])

    for round_ in range(ROUNDS):
        state, _, pid = twins(maker.request(dl.payment_order(
            dl.payment(f"MID-{round_}", debtor, "10.00", "Vendor", "31003", **CNAPS))))
        assert state == "ACCEPTED"
        assert twins(maker.request(dl.cancel(pid, "twins")))[:2] == ("CANCELLED", "CANCELLED_BY_CLIENT")
        assert count(cluster, payment_events, payment_events.c.payment_id == pid,
                     payment_events.c.to_state == "CANCELLED") == 1
    assert count(cluster, payments, payments.c.debtor_account == debtor) == ROUNDS
    assert booked(cluster, debtor) == (1000_00, 0)


def test_different_requests_under_one_message_id_on_both_replicas_act_once(cluster, maker):
    """Four different payments (other ClientRefs, from two accounts, so that neither an account lock nor a
    ClientRef orders them) under one MessageId, two to each replica: exactly one is paid, the other three
    are REPLAY and leave nothing. Would catch a replay check that reads before the claim without the
    unique key deciding, across processes (with the MessageId's key dropped: three of four paid, or an
    INTERNAL answer)."""
    a, b = open_account(cluster, "1000.00"), open_account(cluster, "1000.00")
    for round_ in range(ROUNDS):
        mid = f"RACE-MID-{round_}-{a[-4:]}"
        bodies = [maker.request(dl.payment_order(dl.payment(f"MIDX-{round_}-{i}", debtor, "1.00", "ACME", SUPPLIER)),
                                message_id=mid) for i, debtor in enumerate((a, b, a, b))]
        shots = spread(bodies)
        got = answers(maker, shots, race(cluster, shots))
        assert sorted(g.code for g in got) == ["OK", "REPLAY", "REPLAY", "REPLAY"], [g.detail for g in got]
        assert only(next(g for g in got if g.code == "OK"))[:2] == ("SETTLED", None)
    assert count(cluster, payments, payments.c.debtor_account.in_((a, b))) == ROUNDS
    assert booked(cluster, a)[0] + booked(cluster, b)[0] == 2000_00 - ROUNDS * 1_00


# ---- one ClientRef (IDM-02, IDM-03) -----------------------------------------------------------------------------

def test_one_client_ref_with_the_same_content_on_both_replicas_makes_one_payment(cluster, maker):
    """Six messages (six MessageIds) carrying the same payment, three to each replica: one payment, every
    answer naming it. Would catch a ClientRef checked per process or read without the unique key (with
    that key dropped: three payments in one round)."""
    debtor = open_account(cluster, "1000.00")
    for round_ in range(ROUNDS):
        order = dl.payment_order(dl.payment(f"REF-{round_}", debtor, "20.00", "ACME", SUPPLIER))
        shots = spread([maker.request(order) for _ in range(6)])
        got = [only(a) for a in answers(maker, shots, race(cluster, shots))]
        assert {g[:2] for g in got} == {("SETTLED", None)} and len({g[2] for g in got}) == 1
    assert count(cluster, payments, payments.c.debtor_account == debtor) == ROUNDS
    assert booked(cluster, debtor) == (1000_00 - ROUNDS * 20_00, 0)


def test_one_client_ref_with_other_content_on_both_replicas_makes_one_payment_and_a_duplicate(cluster, maker):
    """One ClientRef, two different payments (from two accounts: no account lock orders them), one to each
    replica: one is accepted, the other DUPLICATE_REFERENCE with nothing of it kept. Would catch a loser
    that overwrites the winner, or two payments under one reference (with the ClientRef's key dropped:
    both accepted)."""
    a, b = open_account(cluster, "10000.00"), open_account(cluster, "10000.00")
    for round_ in range(ROUNDS):
        ref = f"REFX-{round_}-{a[-4:]}"
        shots = [(i, maker.request(dl.payment_order(dl.payment(ref, debtor, "1000.00", "Vendor", "31009", **CNAPS))))
                 for i, debtor in ((round_ % 2, a), (1 - round_ % 2, b))]
        got = sorted(only(g)[:2] for g in answers(maker, shots, race(cluster, shots)))
        assert got == [("ACCEPTED", None), ("REJECTED", "DUPLICATE_REFERENCE")]
        assert count(cluster, payments, payments.c.client_ref == ref) == 1
    assert booked(cluster, a)[1] + booked(cluster, b)[1] == ROUNDS * 1000_00   # one hold a round


# ---- limits and funds (IDM-09, IDM-10) -------------------------------------------------------------------------

@pytest.mark.parametrize("opening,daily_limit,refused", [("1000000.00", "100000.00", "LIMIT_DAILY"),
                                                          ("100000.00", None, "INSUFFICIENT_FUNDS")])
def test_a_limit_or_the_funds_raced_from_both_replicas_are_never_exceeded(cluster, maker, opening, daily_limit,
                                                                         refused):
    """Room for 100,000.00 (the maker's daily limit with ample funds, or the funds with no daily limit);
    twelve payments of 10,000.00 at once, six to each replica, half within the bank (settled) and half
    to another bank (held): exactly ten pass, two are refused (LIMIT_DAILY or INSUFFICIENT_FUNDS), and
    100,000.00 is spent or held, never more. Would catch funds or a running total read without the
    account's row lock, or kept per process (without the lock: twelve pass, or a hold fails INTERNAL)."""
    debtor = open_account(cluster, opening, daily_limit=daily_limit)
    bodies = [maker.request(dl.payment_order(
        dl.payment(f"ROOM-{debtor[-4:]}-{i}", debtor, "10000.00", "ACME", SUPPLIER) if i % 4 < 2 else
        dl.payment(f"ROOM-{debtor[-4:]}-{i}", debtor, "10000.00", "Vendor", f"3101{i}", **CNAPS))) for i in range(12)]
    shots = spread(bodies)
    got = [only(a) for a in answers(maker, shots, race(cluster, shots))]
    passed = [g for g in got if g[0] in ("SETTLED", "ACCEPTED")]
    assert len(passed) == 10 and sorted(g[:2] for g in got if g not in passed) == [("REJECTED", refused)] * 2
    with cluster.engine.connect() as conn:
        spent = conn.execute(select(func.sum(payments.c.amount)).where(payments.c.debtor_account == debtor)).scalar()
    assert spent == 100_000_00
    booked_, held = booked(cluster, debtor)
    settled = sum(g[0] == "SETTLED" for g in passed)
    assert (booked_, held) == (parse_minor(opening) - settled * 10000_00, (10 - settled) * 10000_00)


# ---- approvals and cancellation (AUT-04) ---------------------------------------------------------------------

@pytest.mark.parametrize("needed,decisions", [(1, ("APPROVE", "APPROVE")), (2, ("APPROVE", "APPROVE")),
                                              (1, ("APPROVE", "REJECT"))])
def test_two_approvers_on_two_replicas_decide_once(cluster, maker, checker, viewer, needed, decisions):
    """A payment within the bank needing `needed` approvals, decided at once by two approvers (checker
    and viewer, both granted 'approve'), one on each replica. One approval needed: exactly one decision is
    recorded and both answers tell its end (SETTLED, or REJECTED by the reject that came first). Two
    needed: both count, once each, and it settles once (the first answer still PENDING_APPROVAL). The payment is debited once or not at all. Would
    catch an approval that reads the payment without its row lock (both decide on the same PENDING row:
    a second settlement, an approval and a reject both recorded, a lost count)."""
    debtor = open_account(cluster, "100000.00", approvers=("checker", "viewer"), threshold="1000.00",
                          approvals=needed)
    for round_ in range(ROUNDS):
        pid, digest = pending_payment(cluster, maker, debtor, f"APR-{needed}-{decisions[1][0]}-{round_}")
        who = (checker, viewer) if round_ % 2 == 0 else (viewer, checker)
        shots = [(i, w.request(dl.approval(pid, digest, d))) for i, (w, d) in enumerate(zip(who, decisions))]
        resps = race(cluster, shots)
        got = [only(verified(w, body, r)) for w, (_, body), r in zip(who, shots, resps)]
        with cluster.engine.connect() as conn:
            end, given = conn.execute(select(payments.c.state, payments.c.approvals_given)
                                      .where(payments.c.id == pid)).one()
            recorded = conn.execute(select(payment_approvals.c.decision)
                                    .where(payment_approvals.c.payment_id == pid)).scalars().all()
        debits = count(cluster, entries, entries.c.payment_id == pid, entries.c.account == debtor)
        assert {g[2] for g in got} == {pid}
        # One needed: the loser finds it decided and tells the end. Two: the first tells 1 of 2 given.
        assert sorted(g[0] for g in got) == ([end, end] if needed == 1 else ["PENDING_APPROVAL", end])
        if end == "SETTLED":
            assert (sorted(recorded), given, debits) == (["APPROVE"] * needed, needed, 1)
        else:
            assert decisions[1] == "REJECT" and end == "REJECTED"
            assert (recorded, given, debits) == (["REJECT"], 0, 0)
    assert booked(cluster, debtor)[1] == 0


def test_a_cancel_racing_an_approval_on_the_other_replica_exactly_one_wins(cluster, maker, checker):
    """The maker cancels a payment waiting for approval on one replica while the checker approves it on
    the other (within the bank: approved, it settles at once, so the two exclude each other): the payment
    ends CANCELLED with no approval and no debit, or SETTLED with one approval and one debit, and both
    answers tell the same end. Would catch a cancel or an approval acting on a payment the other has just
    moved (a settled payment cancelled, or a cancelled one paid)."""
    debtor = open_account(cluster, "100000.00", approvers=("checker",), threshold="1000.00")
    ends = []
    for round_ in range(ROUNDS):
        pid, digest = pending_payment(cluster, maker, debtor, f"CXA-{round_}")
        cancel_on = round_ % 2
        shots = [(cancel_on, maker.request(dl.cancel(pid, "race"))),
                 (1 - cancel_on, checker.request(dl.approval(pid, digest)))]
        resps = race(cluster, shots)
        cancelled = only(verified(maker, shots[0][1], resps[0]))
        approved = only(verified(checker, shots[1][1], resps[1]))
        with cluster.engine.connect() as conn:
            end = conn.execute(select(payments.c.state).where(payments.c.id == pid)).scalar()
        approvals = count(cluster, payment_approvals, payment_approvals.c.payment_id == pid)
        debits = count(cluster, entries, entries.c.payment_id == pid, entries.c.account == debtor)
        if end == "CANCELLED":
            assert (cancelled[:2], approved[:2], approvals, debits) == \
                (("CANCELLED", "CANCELLED_BY_CLIENT"), ("CANCELLED", "CANCELLED_BY_CLIENT"), 0, 0)
        else:
            assert end == "SETTLED"
            assert (cancelled[:2], approved[:2], approvals, debits) == \
                (("SETTLED", "NOT_CANCELLABLE"), ("SETTLED", None), 1, 1)
        ends.append(end)
    assert booked(cluster, debtor)[0] == 100000_00 - ends.count("SETTLED") * 5000_00


# ---- fund-flow rules over two accounts -------------------------------------------------------------------------

@pytest.mark.parametrize("rule,params,amounts,caught", [
    ("duplicate", {"window_days": 7}, ("1000.00", "1000.00"), ("PENDING_APPROVAL", "RULE_PROBABLE_DUPLICATE")),
    ("payee_daily_cap", {"cap": "1500.00"}, ("1000.00", "900.00"), ("REJECTED", "RULE_CAP_EXCEEDED")),
])
def test_a_payee_paid_from_two_accounts_on_two_replicas_is_seen_by_its_rule(cluster, maker, rule, params, amounts,
                                                                           caught):
    """Two payments to one payee under different ClientRefs, from two accounts (different account locks),
    one to each replica, with the rule on both accounts: the second to commit sees the first (a probable
    duplicate held; the payee's daily cap not exceeded). No daily limit on these grants, so only the
    rules' own client lock orders the two. Would catch the payee's facts read before that lock."""
    a, b = open_account(cluster, "100000.00"), open_account(cluster, "100000.00")
    with cluster.engine.begin() as conn:
        for account in (a, b):
            rulebook.set_rule(conn, "DEMO", account, rule, params, now())
    for round_ in range(ROUNDS):
        payee = f"3200{a[-4:]}{round_}"
        shots = [(i, maker.request(dl.payment_order(dl.payment(f"PAYEE-{rule[:3]}-{round_}-{i}", debtor, amount,
                                                               "Vendor", payee, **CNAPS))))
                 for i, (debtor, amount) in enumerate(((a, amounts[0]), (b, amounts[1])))]
        got = sorted(only(g)[:2] for g in answers(maker, shots, race(cluster, shots)))
        assert got == sorted([("ACCEPTED", None), caught]), (rule, round_, got)


def test_the_audit_chains_verify_from_the_command_line_after_the_races(cluster):
    """`directlink audit verify`, an independent process, over everything the races wrote."""
    done = cli("audit", "verify", "--home", str(cluster.settings.home))
    assert done.returncode == 0, done.stdout + done.stderr
