"""Smaller checks: the error table, money, XSDs, migrations, key registration, MessageId retention."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from conftest import snapshot
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import inspect

from domain.codes import ResultCode
from domain.money import Money, parse_amount
from gateway import directory, jobs
from gateway.keys import cert_pem, self_signed
from gateway.protocol import client as dl
from gateway.protocol import errors, xmlsafe
from gateway.storage.engine import make_engine, migrate
from gateway.storage.tables import metadata


def test_every_result_code_has_an_http_status():
    assert set(errors.HTTP_STATUS) == set(ResultCode)
    assert errors.http_status(ResultCode.XML_TOO_LARGE) == 413
    assert errors.http_status(ResultCode.PERMISSION_DENIED) == 403


@pytest.mark.parametrize("text,currency,minor", [("0.01", "CNY", 1), ("12.5", "CNY", 1250), ("7", "JPY", 7),
                                                  ("999999999.99", "CNY", 99999999999)])
def test_amounts_convert_to_minor_units_exactly(text, currency, minor):
    money = parse_amount(text, currency)
    assert money.minor == minor
    assert Money.from_minor(minor, currency) == money


def test_yen_has_no_decimals():
    with pytest.raises(Exception, match="more than 0 decimals"):
        parse_amount("1.5", "JPY")
    assert Money.from_minor(150, "JPY").text() == "150"
    assert Money.from_minor(5, "CNY").amount == Decimal("0.05")


def test_migrations_produce_exactly_the_declared_schema(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    migrate(engine)
    migrate(engine)   # idempotent
    found = inspect(engine)
    for table in metadata.sorted_tables:
        assert {c["name"] for c in found.get_columns(table.name)} == {c.name for c in table.columns}
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2   # FULL


def test_the_schema_accepts_a_sample_request():
    body = (b'<Request xmlns="urn:directlink:v1" version="1"><Header><MessageId>M-1</MessageId>'
            b'<Created>2026-11-22T20:00:00+08:00</Created><Client>C001</Client><Operator>maker1</Operator>'
            b'</Header><BalanceQuery><Account>6222000000000001</Account></BalanceQuery></Request>')
    xmlsafe.validate(xmlsafe.parse(body, 1 << 20))


def test_a_zone_less_created_fails_the_schema():
    body = (b'<Request xmlns="urn:directlink:v1" version="1"><Header><MessageId>M-1</MessageId>'
            b'<Created>2026-11-22T20:00:00</Created><Client>C001</Client><Operator>maker1</Operator>'
            b'</Header><AccountQuery/></Request>')
    with pytest.raises(Exception) as err:
        xmlsafe.validate(xmlsafe.parse(body, 1 << 20))
    assert err.value.code == ResultCode.XML_SCHEMA_INVALID


def test_purge_forgets_only_message_ids_past_the_retention(gateway, maker, clock):
    body = maker.request(dl.balance_query())
    assert maker.post(body).code == "OK"
    assert jobs.purge_messages(gateway) == 0
    clock.offset = dt.timedelta(hours=49)
    assert jobs.purge_messages(gateway) == 1
    assert snapshot(gateway.engine)["messages"] == 0
    # the purged message cannot be replayed: it is far outside the freshness window now
    assert maker.post(body).code == "TIMESTAMP_OUT_OF_WINDOW"


@pytest.mark.parametrize("key", [rsa.generate_private_key(65537, 1024), ec.generate_private_key(ec.SECP384R1())],
                         ids=["rsa1024", "p384"])
def test_keys_outside_the_profile_cannot_be_registered(gateway, clock, key):
    pem = cert_pem(self_signed(key, "DEMO/weak", "Demo"))
    with pytest.raises(ValueError, match="RSA-2048"), gateway.engine.begin() as conn:
        directory.register_certificate(conn, "DEMO", "maker", pem, clock())


def test_upgrade_from_the_first_schema_keeps_data(tmp_path):
    """An existing database at revision 0001, with data in it, upgrades through every revision."""
    from sqlalchemy import text

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(engine, to="0001")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO clients (id, name) VALUES ('OLD', 'Old Co')"))
        conn.execute(text("INSERT INTO audit_log (at, kind, code) VALUES ('2026-01-01 00:00:00', 'config', 'X')"))
    migrate(engine, to="0002")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO approval_policies VALUES ('OLD', '', 10000, 1)"))
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM clients")).scalar() == "Old Co"
        assert conn.execute(text("SELECT currency, threshold FROM approval_policies")).one() == ("CNY", 10000)
        assert conn.execute(text("SELECT count(*) FROM audit_head")).scalar() == 0


def test_schema_validation_is_safe_across_threads():
    """One XMLSchema shared by threads lost its error log to another thread (an IndexError, a 500)."""
    import concurrent.futures as cf

    from domain.errors import XmlRejected
    good = (b'<Request xmlns="urn:directlink:v1" version="1"><Header><MessageId>M-1</MessageId>'
            b'<Created>2026-11-22T20:00:00+08:00</Created><Client>C</Client><Operator>O</Operator>'
            b'</Header><AccountQuery/></Request>')
    bad = good.replace(b"<AccountQuery/>", b"<Nonsense/>")

    def check(i):
        body = good if i % 2 else bad
        try:
            xmlsafe.validate(xmlsafe.parse(body, 1 << 20))
            return "ok"
        except XmlRejected as err:
            return err.code
    with cf.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(check, range(4000)))
    assert outcomes.count("ok") == 2000 and outcomes.count(ResultCode.XML_SCHEMA_INVALID) == 2000


def test_threads_compiling_schemas_at_a_fresh_start_do_not_break_them():
    """Sixteen threads compiling the protocol schema at once in a fresh process (a gateway's first burst of
    requests) broke libxml2's built-in types: every later request was refused, or the process aborted.
    Each run is a new interpreter; without the lock this test failed about every other time."""
    import subprocess
    import sys
    script = ("import threading\n"
              "from gateway.protocol import xmlsafe\n"
              "from adapters.iso20022 import xsd\n"
              "gate, failed = threading.Barrier(16), []\n"
              "def build(i):\n"
              "    gate.wait()\n"
              "    try:\n"
              "        xmlsafe.schema() if i % 4 else xsd.schema('pain.001.001.03')\n"
              "    except Exception as e:\n"
              "        failed.append(e)\n"
              "threads = [threading.Thread(target=build, args=(i,)) for i in range(16)]\n"
              "[t.start() for t in threads]\n"
              "[t.join() for t in threads]\n"
              "assert not failed, failed\n"
              "xmlsafe.validate(xmlsafe.parse(b'<Request xmlns=\"urn:directlink:v1\" version=\"1\"><Header>"
              "<MessageId>M-1</MessageId><Created>2026-11-22T20:00:00+08:00</Created><Client>C</Client>"
              "<Operator>O</Operator></Header><AccountQuery/></Request>', 1 << 20))\n"
              "print('ok')\n")
    for _ in range(10):   # one after the other: each start gets both cores, as a server's does
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
        assert run.returncode == 0 and run.stdout.strip() == b"ok", (run.stdout + run.stderr).decode()[-400:]


def test_rejection_echoes_only_a_well_formed_message_id(http):
    """A malformed MessageId is not echoed in InReplyTo, so our own answer stays schema-valid."""
    from lxml import etree
    body = (b'<Request xmlns="urn:directlink:v1" version="1"><Header><MessageId>bad id with blanks'
            + b"x" * 40 + b'</MessageId></Header></Request>')
    resp = http.post("/v1/messages", content=body)
    answer = etree.fromstring(resp.content)
    assert resp.status_code == 400 and answer.find(xmlsafe.q("Header")).find(xmlsafe.q("InReplyTo")) is None
    xmlsafe.validate(answer)


def test_account_names_must_fit_the_protocol(gateway, clock):
    """An account name travels as a protocol Name (1-70 characters); longer ones are refused at opening."""
    today = clock().date()
    with pytest.raises(ValueError, match="1-70"), gateway.engine.begin() as conn:
        directory.open_account(conn, "6222000000000077", "DEMO", "名" * 71, "CNY", "1.00", clock(), today)


def test_each_due_time_of_a_job_runs_in_one_replica_only(home, gateway):
    """Two gateway processes on one database (here two Gateway objects): one claim wins per due time."""
    from gateway.app import build_gateway
    other = build_gateway(home)
    # A clock that stands still between the two runs: on the real one, a due time may begin between them.
    now = [dt.datetime(2026, 11, 26, 12, 0, 2, tzinfo=dt.UTC)]
    gateway.clock = other.clock = lambda: now[0]
    every = dt.timedelta(seconds=5)
    ran = []
    runs = [jobs.once_per_due_time(g, "clearing", every, lambda g=g: ran.append(g)) for g in (gateway, other)]
    for run in runs:
        run()
    assert ran == [gateway]                      # the second replica found the due time taken
    now[0] += every
    for run in reversed(runs):
        run()
    assert ran == [gateway, other]               # next due time: whoever comes first
    other.engine.dispose()


def test_replicas_starting_together_migrate_once(pg_url):
    """Several processes migrating one PostgreSQL database at the same moment: all succeed."""
    import concurrent.futures as cf
    engines = [make_engine(pg_url) for _ in range(4)]
    with cf.ThreadPoolExecutor(4) as pool:
        list(pool.map(migrate, engines))
    from alembic.script import ScriptDirectory

    from gateway.storage.engine import MIGRATIONS
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    with engines[0].connect() as conn:
        from sqlalchemy import text
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
    for e in engines:
        e.dispose()


@given(st.text(alphabet="ABCXYZ0123456789-", min_size=1, max_size=30), st.sampled_from(["1.00", "12345.67", "0.01"]),
       st.one_of(st.none(), st.text(alphabet="货款 invoice，第期0123", min_size=1, max_size=20)),
       st.one_of(st.none(), st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 1, 1))),
       st.sampled_from(["NORMAL", "URGENT"]), st.sampled_from([("INTERNAL", ""), ("CNAPS", "102290012345")]))
def test_content_hash_is_the_same_as_ever(ref, amount, remark, date, urgency, bank):
    """Stored content hashes are compared with retries for ever: the hashed JSON is the one
    dataclasses.asdict gave when they were first written."""
    import dataclasses
    import hashlib
    import json

    from domain.models import build_instruction
    ins = build_instruction(client_ref="R" + ref, end_to_end_id=None, debtor_account="6222000000000001",
                            amount=amount, currency="CNY", creditor_name="上海某某", creditor_account="31001234567890",
                            bank_scheme=bank[0], bank_code=bank[1], bank_name=None, purpose="货款", remark=remark,
                            requested_date=date, urgency=urgency)
    data = dataclasses.asdict(ins)
    data["amount"] = [ins.amount.text(), ins.amount.currency]
    data["requested_date"] = ins.requested_date.isoformat() if ins.requested_date else None
    blob = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert ins.content_hash() == hashlib.sha256(blob.encode("utf-8")).hexdigest()


@given(st.one_of(st.none(), st.text(alphabet="货款 invoice，第期0123", min_size=1, max_size=20)),
       st.one_of(st.none(), st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 1, 1))),
       st.sampled_from(["NORMAL", "URGENT"]), st.one_of(st.none(), st.sampled_from(["工商银行上海分行", "ICBC"])),
       st.sampled_from([("INTERNAL", ""), ("CNAPS", "102290012345"), ("BIC", "ICBKCNBJSHI")]))
def test_a_file_payment_has_the_order_digest_of_the_same_payment_sent_as_a_payment_order(
        remark, date, urgency, bank_name, bank):
    """An approver of a DocumentSubmit payment signs the OrderDigest of its Payment element as the gateway
    renders it: the same digest a client computes over that payment written in a PaymentOrder."""
    import base64
    import hashlib

    from lxml import etree

    from domain.models import build_instruction
    from gateway.protocol import messages
    ins = build_instruction(client_ref="R-1", end_to_end_id=None, debtor_account="6222000000000001",
                            amount="1234.50", currency="CNY", creditor_name="上海某某", creditor_account="31001234567890",
                            bank_scheme=bank[0], bank_code=bank[1], bank_name=bank_name, purpose="货款", remark=remark,
                            requested_date=date, urgency=urgency)
    sent = dl.payment("R-1", "6222000000000001", "1234.50", "上海某某", "31001234567890", scheme=bank[0],
                      bank_code=bank[1], bank_name=bank_name, remark=remark, urgency=urgency, requested_date=date)
    c14n = etree.tostring(sent, method="c14n", exclusive=True, with_comments=False)
    assert messages.order_digest(messages.render_payment(ins)) == base64.b64encode(hashlib.sha256(c14n).digest()).decode()


@pytest.mark.parametrize("xml, expected", [
    ("<a/>", ""), ("<a>x</a>", "x"), ("<a><![CDATA[1<2]]></a>", "1<2"), ("<a>12<!-- 3 -->4.00</a>", "124.00"),
    ("<a><!-- c -->5</a>", "5"), ("<a>6<?pi x?>7</a>", "67"), ("<a>8<b>9</b>0</a>", "890")])
def test_text_reads_every_text_node_of_a_value_and_never_a_comment(xml, expected):
    from lxml import etree
    assert xmlsafe.text(etree.fromstring(xml)) == expected
