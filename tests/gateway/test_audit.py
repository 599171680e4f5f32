"""The audit trail: every request with its bytes, every state change, hash-chained; tampering is found."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from conftest import OPERATING, SUPPLIER
from sqlalchemy import bindparam, delete, insert, select, update

from gateway import audit
from gateway.protocol import client as dl
from gateway.protocol.signing import fingerprint
from gateway.storage import chain_rows
from gateway.storage.tables import audit_head, audit_log
from gateway.storage.unit_of_work import UnitOfWork


def chain(gateway, name="DEMO"):
    with gateway.engine.connect() as conn:
        return conn.execute(select(audit_log).where(audit_log.c.chain == name).order_by(audit_log.c.seq)).all()


def findings(gateway):
    with gateway.engine.connect() as conn:
        return audit.verify(conn)[1]


def busy(maker):
    body = maker.request(dl.payment_order(dl.payment("AU-1", OPERATING, "10.00", "ACME", SUPPLIER)))
    answer = maker.post(body)
    maker.call(dl.balance_query())
    return body, answer


def test_requests_keep_their_exact_bytes_answer_and_signer(maker, gateway):
    body, answer = busy(maker)
    rows = [r for r in chain(gateway) if r.kind == "request"]
    first = rows[0]
    assert bytes(first.request) == body and bytes(first.response) == answer.raw
    assert first.cert_fingerprint == fingerprint(maker.signer.certificate)
    states = [(r.from_state, r.to_state) for r in chain(gateway) if r.kind == "payment"]
    assert states == [(None, "ACCEPTED"), ("ACCEPTED", "SETTLED")]
    assert findings(gateway) == []


def test_configuration_changes_are_audited(gateway):
    with gateway.engine.connect() as conn:
        codes = {r.code for r in conn.execute(select(audit_log).where(audit_log.c.chain == audit.SYSTEM))}
    assert {"ACCOUNT_OPENED", "GRANT_SET", "CERT_REGISTERED", "POLICY_SET"} <= codes


def test_rejections_before_identity_go_to_the_unverified_chain(http, gateway):
    http.post("/v1/messages", content=b"<Request>")
    rows = chain(gateway, audit.UNVERIFIED)
    assert rows[-1].code == "XML_MALFORMED" and bytes(rows[-1].request) == b"<Request>"


def test_an_edited_record_is_found(maker, gateway):
    busy(maker)
    with gateway.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.chain == "DEMO", audit_log.c.seq == 2)
                     .values(detail="nothing to see"))
    assert [(f.seq, "edited" in f.problem) for f in findings(gateway)] == [(2, True)]


def test_a_removed_record_is_found(maker, gateway):
    busy(maker)
    with gateway.engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.chain == "DEMO", audit_log.c.seq == 2))
    assert findings(gateway)


def test_reordered_records_are_found(maker, gateway):
    busy(maker)
    rows = chain(gateway)
    with gateway.engine.begin() as conn:   # swap the contents of records 1 and 2, keeping each hash
        for a, b in ((rows[0], rows[1]), (rows[1], rows[0])):
            conn.execute(update(audit_log).where(audit_log.c.id == a.id).values(
                seq=-a.seq, detail=b.detail, code=b.code, kind=b.kind))
        conn.execute(update(audit_log).where(audit_log.c.seq < 0).values(seq=-audit_log.c.seq))
    assert findings(gateway)


def test_a_cut_tail_is_found(maker, gateway):
    busy(maker)
    last = chain(gateway)[-1]
    with gateway.engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.id == last.id))
    assert any("end" in f.problem for f in findings(gateway))


def test_retention_purges_only_old_records_and_the_rest_still_verifies(maker, gateway, clock):
    busy(maker)
    before = len(chain(gateway))
    with gateway.engine.begin() as conn:
        assert audit.purge(conn, clock() - dt.timedelta(days=1)) == 0
    clock.offset = dt.timedelta(days=6 * 365)
    with gateway.engine.begin() as conn:
        removed = audit.purge(conn, clock() - dt.timedelta(days=5 * 365 + 2))
    assert removed >= before and chain(gateway) == [] and findings(gateway) == []


def test_the_cli_verifies(home, maker, gateway):
    busy(maker)
    cmd = [sys.executable, "-c", "from gateway.cli import main; main()", "audit", "verify", "--home", str(home.home)]
    ok = subprocess.run(cmd, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                                                                  "DIRECTLINK_DATABASE_URL": home.db_url})
    assert ok.returncode == 0 and "intact" in ok.stdout
    with gateway.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.chain == "DEMO", audit_log.c.seq == 1).values(code="OK2"))
    bad = subprocess.run(cmd, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                                                                   "DIRECTLINK_DATABASE_URL": home.db_url})
    assert bad.returncode == 1 and "BROKEN chain DEMO record 1" in bad.stdout


def rewrite_everything(gateway, seq_to_edit: int) -> None:
    """The attack a plain hash chain cannot see: edit a record and recompute every hash after it."""
    with gateway.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.chain == "DEMO", audit_log.c.seq == seq_to_edit)
                     .values(detail="rewritten"))
        prev = chain_rows.GENESIS
        for row in conn.execute(select(audit_log).where(audit_log.c.chain == "DEMO").order_by(audit_log.c.seq)):
            h = audit.record_hash(prev, row._asdict())
            conn.execute(update(audit_log).where(audit_log.c.id == row.id).values(prev_hash=prev, hash=h))
            prev = h
        conn.execute(update(audit.audit_head).where(audit.audit_head.c.chain == "DEMO").values(hash=prev))


def test_an_anchor_catches_a_rewrite_that_recomputed_every_hash(maker, gateway, clock):
    busy(maker)
    with gateway.engine.connect() as conn:
        anchor = audit.sign_anchor(gateway.signer.key, gateway.signer.cert_pem, audit.heads(conn), clock())
    busy_more = maker.call(dl.balance_query())            # the chain grows after the anchor: still fine
    assert busy_more.code == "OK"
    trusted = [gateway.signer.certificate]
    with gateway.engine.connect() as conn:
        assert audit.check_anchor(conn, audit.read_anchor(anchor, trusted)) == []
    rewrite_everything(gateway, 2)
    assert findings(gateway) == []                       # invisible to the chain alone ...
    with gateway.engine.connect() as conn:
        caught = audit.check_anchor(conn, audit.read_anchor(anchor, trusted))
    assert caught and "rewritten" in caught[0].problem   # ... but not to the anchor


def test_a_forged_anchor_is_refused(maker, gateway, clock):
    busy(maker)
    with gateway.engine.connect() as conn:
        anchor = audit.sign_anchor(gateway.signer.key, gateway.signer.cert_pem, audit.heads(conn), clock())
    forged = anchor.replace(b'\\"seq\\":', b'\\"seq\\": ', 1)
    with pytest.raises(ValueError, match="does not verify"):
        audit.read_anchor(forged, [gateway.signer.certificate])


def test_purges_are_themselves_on_the_record_and_loose_rows_are_reported(maker, gateway, clock):
    busy(maker)
    clock.offset = dt.timedelta(days=6 * 365)
    with gateway.engine.begin() as conn:
        audit.purge(conn, clock() - dt.timedelta(days=5 * 365 + 2))
    assert any(r.code == "AUDIT_PURGED" for r in chain(gateway, audit.SYSTEM))
    with gateway.engine.begin() as conn:
        conn.execute(insert(audit_log).values(at=clock(), kind="request", code="OK", detail="smuggled in"))
    assert any("no chain" in f.problem for f in findings(gateway))


def test_cli_anchor_then_verify_against_it(home, maker, gateway, tmp_path):
    busy(maker)
    env = {"PATH": "/usr/bin:/bin", "DIRECTLINK_DATABASE_URL": home.db_url}
    cli = [sys.executable, "-c", "from gateway.cli import main; main()"]
    anchor = tmp_path / "anchor.json"
    made = subprocess.run([*cli, "audit", "anchor", "--out", str(anchor), "--home", str(home.home)],
                          capture_output=True, text=True, env=env)
    assert made.returncode == 0, made.stderr
    check = [*cli, "audit", "verify", "--anchor", str(anchor), "--home", str(home.home)]
    assert subprocess.run(check, capture_output=True, text=True, env=env).returncode == 0
    rewrite_everything(gateway, 1)
    caught = subprocess.run(check, capture_output=True, text=True, env=env)
    assert caught.returncode == 1 and "rewritten" in caught.stdout


def test_appends_are_written_at_the_end_and_a_rolled_back_savepoint_takes_its_own(gateway, clock):
    """A unit of work: the records of a savepoint that rolled back go with it, those before and after it
    stay, in order, chained; a chain first locked inside the rolled-back savepoint starts again after it."""
    now = clock()

    def add(uow, chain_name, code):
        audit.append(uow, chain=chain_name, at=now, kind="config", code=code)

    with gateway.engine.begin() as conn:
        before = conn.execute(select(audit_log.c.chain)).all()
        with UnitOfWork(conn) as uow:
            add(uow, "DEMO", "A")
            with pytest.raises(ZeroDivisionError), uow.savepoint():
                add(uow, "DEMO", "B")
                add(uow, "T2", "B2")
                raise ZeroDivisionError
            with uow.savepoint():
                add(uow, "DEMO", "C")
            add(uow, "T2", "D2")
            add(uow, "DEMO", "D")
            assert conn.execute(select(audit_log.c.chain)).all() == before   # nothing written yet
    demo = [r.code for r in chain(gateway)]
    assert demo[-3:] == ["A", "C", "D"] and "B" not in demo
    assert [(r.seq, r.code) for r in chain(gateway, "T2")] == [(1, "D2")]
    assert findings(gateway) == []


def test_a_commit_with_records_still_pending_is_refused(gateway, clock):
    with gateway.engine.connect() as conn:
        with pytest.raises(RuntimeError, match="not written before the commit"), UnitOfWork(conn) as uow:
            audit.append(uow, chain="DEMO", at=clock(), kind="config", code="LOST")
            conn.commit()
        conn.rollback()
    assert "LOST" not in [r.code for r in chain(gateway)]


def test_a_payment_request_writes_its_records_in_order(maker, gateway):
    """The pipeline writes its audit records at the request's end: the payment's creation and settlement, a
    rule's refusal of the next payment, then the request itself, in that order, and the chain verifies."""
    from gateway import rulebook
    with gateway.engine.begin() as conn:
        rulebook.set_rule(conn, "DEMO", "", "velocity", {"window_minutes": 5, "max_count": 1,
                                                          "max_amount": "1000000.00"}, gateway.clock())
    maker.call(dl.payment_order(dl.payment("DF-1", OPERATING, "10.00", "ACME", SUPPLIER),
                                dl.payment("DF-2", OPERATING, "10.00", "ACME", SUPPLIER)))
    assert [(r.kind, r.code) for r in chain(gateway)][-4:] == [
        ("payment", "ACCEPTED"), ("payment", "SETTLED"), ("rule", "RULE_VELOCITY_EXCEEDED"), ("request", "OK")]
    assert findings(gateway) == []


@pytest.mark.parametrize("count", [1, 3, chain_rows.AT_ONCE + 5])
def test_records_written_together_keep_every_field_and_move_the_head(gateway, clock, count):
    """A request's records go in with the head's move (one statement on PostgreSQL, for up to AT_ONCE of
    them; two beyond, and on SQLite): each field as given, bytes or none, and the head on the last."""
    now = clock()
    records = [dict(at=now, kind="config", code=f"W{i}", detail=f"第{i}条 ✓", request=bytes([i]) * i or None,
                    response=None if i % 2 else b"\x00answer", operator_id=f"op{i}") for i in range(count)]
    with gateway.engine.begin() as conn, UnitOfWork(conn) as uow:
        for fields in records:
            audit.append(uow, chain="W", **fields)
    stored = chain(gateway, "W")
    assert [(r.code, r.detail, r.request, r.response, r.operator_id, r.seq) for r in stored] == \
           [(f["code"], f["detail"], f["request"], f["response"], f["operator_id"], i + 1)
            for i, f in enumerate(records)]
    with gateway.engine.connect() as conn:
        head = conn.execute(select(audit_head).where(audit_head.c.chain == "W")).one()
    assert (head.seq, head.hash) == (count, stored[-1].hash)
    assert findings(gateway) == []


def test_records_of_several_chains_written_together_move_each_head(gateway, clock):
    """Appends to two chains, interleaved, in one block: each chain gets its own records in order and its
    head moves to its own last one."""
    now = clock()
    with gateway.engine.begin() as conn, UnitOfWork(conn) as uow:
        for i in range(5):
            audit.append(uow, chain="X1" if i % 2 else "X2", at=now, kind="config", code=f"C{i}")
    assert [r.code for r in chain(gateway, "X2")] == ["C0", "C2", "C4"]
    assert [r.code for r in chain(gateway, "X1")] == ["C1", "C3"]
    with gateway.engine.connect() as conn:
        heads = {h.chain: h.seq for h in conn.execute(select(audit_head).where(audit_head.c.chain.in_(["X1", "X2"])))}
    assert heads == {"X1": 2, "X2": 3}
    assert findings(gateway) == []


@pytest.mark.parametrize("records", [2, 3])
def test_records_keep_every_value_exactly_as_given(gateway, clock, records):
    """On PostgreSQL a request's records go one field a parameter up to two, as one JSON document beyond
    (gateway/storage/chain_rows.py): either way every byte value, text with quotes, backslashes, control characters
    and CJK, a time with microseconds in another zone come back as given, and the chain verifies."""
    at = dt.datetime(2026, 11, 26, 20, 5, 6, 123456, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    awkward = 'a "quoted" \\ back\\slash, tab\t, newline\n, \u00e9 and 银企直联 \u2028 \U0001f4b0'
    body = bytes(range(256)) * 3
    with gateway.engine.begin() as conn, UnitOfWork(conn) as uow:
        audit.append(uow, chain="EXACT", at=at, kind="request", code="OK", detail=awkward, request=body,
                     response=b"", message_id="M-1")
        for i in range(1, records):
            audit.append(uow, chain="EXACT", at=clock(), kind="config", code=f"MORE{i}", detail=None)
    first, *others = chain(gateway, "EXACT")
    assert (first.detail, bytes(first.request), bytes(first.response), first.at) == (awkward, body, b"", at)
    assert [(r.seq, r.code, r.detail, r.request) for r in others] == [(i + 1, f"MORE{i}", None, None)
                                                                      for i in range(1, records)]
    assert others[0].prev_hash == first.hash
    assert findings(gateway) == []


def test_a_value_too_long_for_its_column_is_never_cut_short(gateway, clock):
    """PostgreSQL refuses it (and the request with it); SQLite keeps it whole. Cut short, it would break
    the chain's hash, which covers the value as given."""
    from sqlalchemy.exc import DataError
    long_id = "X" * 50   # operator_id holds 35
    try:
        with gateway.engine.begin() as conn, UnitOfWork(conn) as uow:
            audit.append(uow, chain="L", at=clock(), kind="config", code="LONG", operator_id=long_id)
    except DataError:
        assert gateway.engine.dialect.name == "postgresql"
        assert chain(gateway, "L") == []
    else:
        assert gateway.engine.dialect.name == "sqlite"
        assert [r.operator_id for r in chain(gateway, "L")] == [long_id]


def test_writes_along_the_records_land_with_them_unless_their_savepoint_rolls_back(gateway, clock):
    """UnitOfWork.along() and along_rows(): the writes go in with the unit's records (in their statement on
    PostgreSQL), rows given for one table in several calls all land, in order, a row with the key of one
    there gets its amounts added, and what was given inside a savepoint that rolls back goes with it."""
    from gateway.storage.tables import job_runs, maker_totals
    now = clock()
    mark = insert(job_runs).values(job="along-test", due=bindparam("when"), runner="r", started_at=bindparam("when"))
    other = insert(job_runs).values(job="along-other", due=bindparam("other_when"), runner="r",
                                    started_at=bindparam("other_when"))
    total = dict(client_id="C", maker="M", account="A", quarter=7)

    def runs():
        with gateway.engine.connect() as conn:
            return conn.execute(select(job_runs.c.job).where(job_runs.c.job.like("along-%"))
                                .order_by(job_runs.c.job)).scalars().all()

    def totals():
        with gateway.engine.connect() as conn:
            return conn.execute(select(maker_totals.c.account, maker_totals.c.amount)
                                .order_by(maker_totals.c.account)).all()

    with gateway.engine.begin() as conn, UnitOfWork(conn) as uow:
        audit.append(uow, chain="AL", at=now, kind="config", code="KEPT")
        uow.along(mark, {"when": now})
        uow.along(other, {"other_when": now})
        uow.along_rows(maker_totals, [{**total, "amount": 5}], adding=("amount",))
        uow.along_rows(maker_totals, [{**total, "account": "B", "amount": 1}], adding=("amount",))
        if conn.dialect.name == "postgresql":   # one statement: each write's parameters must be its own
            with pytest.raises(RuntimeError, match="given in this unit"):
                uow.along(mark, {"when": now})
    assert runs() == ["along-other", "along-test"] and [r.code for r in chain(gateway, "AL")] == ["KEPT"]
    assert totals() == [("A", 5), ("B", 1)]
    with gateway.engine.begin() as conn, UnitOfWork(conn) as uow:
        audit.append(uow, chain="AL", at=now, kind="config", code="KEPT2")
        uow.along_rows(maker_totals, [{**total, "amount": 10}], adding=("amount",))
        with pytest.raises(ZeroDivisionError), uow.savepoint():
            uow.along(mark, {"when": now + dt.timedelta(hours=1)})
            uow.along_rows(maker_totals, [{**total, "amount": 100}], adding=("amount",))
            raise ZeroDivisionError
    assert len(runs()) == 2 and [r.code for r in chain(gateway, "AL")] == ["KEPT", "KEPT2"]
    assert totals() == [("A", 15), ("B", 1)]
    assert findings(gateway) == []


def test_a_read_beside_the_heads_lock_gives_the_value_and_the_head(gateway, clock):
    """UnitOfWork.lock_client_reading: the scalar read in the statement that locks the client's head, on a
    chain with no head yet (made), one locked already in the transaction (read alone), and after an append."""
    from sqlalchemy import func, literal

    from gateway.storage.tables import job_runs
    read = select(func.count()).where(job_runs.c.job == bindparam("job")).scalar_subquery()
    with gateway.engine.begin() as conn, UnitOfWork(conn) as uow:
        assert uow.lock_client_reading("READ", read, {"job": "none"}) == 0
        assert uow.head("READ") == (0, chain_rows.GENESIS)
        audit.append(uow, chain="READ", at=clock(), kind="config", code="ONE")
        assert uow.lock_client_reading("READ", read, {"job": "none"}) == 0   # locked already: read alone
    with gateway.engine.begin() as conn:
        conn.execute(insert(job_runs).values(job="counted", due=clock(), runner="r", started_at=clock()))
    with gateway.engine.begin() as conn, UnitOfWork(conn) as uow:
        assert uow.lock_client_reading("READ", read, {"job": "counted"}) == 1
        assert uow.head("READ")[0] == 1
        assert uow.lock_client_reading("READ", select(literal(7)).scalar_subquery(), {}) == 7
    assert findings(gateway) == []


def test_rows_sent_along_must_name_every_column(gateway, clock):
    """A column left out would be read as NULL from the JSON rows on PostgreSQL, not as its default: refused
    there before anything is sent; SQLite inserts at once, and its NOT NULL refuses the row. Nothing lands."""
    from sqlalchemy.exc import IntegrityError

    from gateway.storage.tables import maker_totals
    expected = KeyError if gateway.engine.dialect.name == "postgresql" else IntegrityError
    with pytest.raises(expected), gateway.engine.begin() as conn, UnitOfWork(conn) as uow:
        audit.append(uow, chain="AL", at=clock(), kind="config", code="X")
        uow.along_rows(maker_totals, [dict(client_id="C", maker="M", account="A", quarter=7)])
    with gateway.engine.connect() as conn:
        assert conn.execute(select(maker_totals)).all() == []
    assert chain(gateway, "AL") == []


