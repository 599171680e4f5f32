"""The unit of work (gateway/storage/unit_of_work.py): its own bookkeeping, no listeners on SQLAlchemy's
classes, and the checks that keep what it holds from being read back or lost."""
from __future__ import annotations

import importlib
import pkgutil

import pytest
from sqlalchemy import create_engine, select, text

import gateway
from gateway import audit
from gateway.storage.tables import audit_log
from gateway.storage.unit_of_work import UnitOfWork, transaction


def codes(gateway, name):
    with gateway.engine.connect() as conn:
        return [r.code for r in conn.execute(select(audit_log).where(audit_log.c.chain == name)
                                             .order_by(audit_log.c.seq))]


def test_no_listener_is_registered_on_sqlalchemys_classes_and_another_engine_is_left_alone():
    """Every module of the server imported: a plain engine made in the same process has no listener of ours
    on any transaction event, and its connections' info stays empty through a transaction with a savepoint."""
    for module in pkgutil.walk_packages(gateway.__path__, "gateway."):
        importlib.import_module(module.name)
    other = create_engine("sqlite://")
    for moment in ("begin", "commit", "rollback", "savepoint", "release_savepoint", "rollback_savepoint"):
        assert not getattr(other.dispatch, moment), moment   # its own listeners and its class's
    with other.begin() as conn:
        with conn.begin_nested() as nested:
            conn.execute(text("SELECT 1"))
            nested.rollback()
        assert dict(conn.info) == {}


def test_a_second_unit_of_work_on_one_connection_is_refused(gateway, clock):
    """A second one would read a chain's head before the first has written its records, and fork it."""
    with gateway.engine.begin() as conn, UnitOfWork(conn) as uow:
        audit.append(uow, chain="U1", at=clock(), kind="config", code="FIRST")
        with pytest.raises(RuntimeError, match="open on this connection already"), UnitOfWork(conn):
            pass
    with gateway.engine.begin() as conn, UnitOfWork(conn) as uow:   # the first one ended: a new one is fine
        audit.append(uow, chain="U1", at=clock(), kind="config", code="SECOND")
    assert codes(gateway, "U1") == ["FIRST", "SECOND"]


def test_a_unit_of_work_is_used_only_inside_its_block(gateway, clock):
    with transaction(gateway.engine) as uow:
        audit.append(uow, chain="U2", at=clock(), kind="config", code="IN")
    with pytest.raises(RuntimeError, match="has ended"):
        uow.flush()
    with pytest.raises(RuntimeError, match="between its `with` block's start and end"):
        audit.append(uow, chain="U2", at=clock(), kind="config", code="AFTER")
    with gateway.engine.connect() as conn, \
            pytest.raises(RuntimeError, match="between its `with` block's start and end"):
        UnitOfWork(conn).along_rows(audit_log, [])
    assert codes(gateway, "U2") == ["IN"]


def test_an_exception_drops_what_is_pending(gateway, clock):
    with pytest.raises(ZeroDivisionError), transaction(gateway.engine) as uow:
        audit.append(uow, chain="U3", at=clock(), kind="config", code="GONE")
        raise ZeroDivisionError
    assert codes(gateway, "U3") == []


def test_a_savepoint_rolled_back_by_hand_takes_its_records_and_no_flush_happens_inside_one(gateway, clock):
    """As a dry run uses it (gateway/operations.py): rollback() called inside, the records appended within
    go, the chain goes on from before them; a flush inside an open savepoint is refused."""
    with transaction(gateway.engine) as uow:
        audit.append(uow, chain="U4", at=clock(), kind="config", code="KEPT")
        trial = uow.savepoint()
        audit.append(uow, chain="U4", at=clock(), kind="config", code="TRIAL")
        with pytest.raises(RuntimeError, match="not inside one of its savepoints"):
            uow.flush()
        trial.rollback()
        with pytest.raises(RuntimeError, match="once each"):
            trial.rollback()
        audit.append(uow, chain="U4", at=clock(), kind="config", code="AFTER")
    assert codes(gateway, "U4") == ["KEPT", "AFTER"]
    with gateway.engine.connect() as conn:
        assert audit.verify(conn)[1] == []


def test_records_that_do_not_follow_the_head_are_refused(gateway, clock):
    with pytest.raises(RuntimeError, match="do not follow its head"), transaction(gateway.engine) as uow:
        seq, _ = uow.head("U5")
        uow.add_records("U5", [dict.fromkeys(c.name for c in audit_log.c if c.name != "id")
                               | dict(chain="U5", seq=seq + 1, prev_hash="f" * 64, hash="e" * 64)])
    assert codes(gateway, "U5") == []
