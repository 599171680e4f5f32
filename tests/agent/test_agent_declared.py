"""The agent with a Yonyou drop folder, and with a declared treasury format added to a gateway that is
already running (`directlink adapters add`, no restart): the payments are made once, and the status and
statement files the agent writes are read back by the format's own readers, equal to the gateway's state."""
from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from agent_helpers import EXTERNAL_ACCOUNT, EXTERNAL_CNAPS, Erp, Gateway, token
from conftest import OPERATING, SUPPLIER
from processes import CLI, ROOT, Servers, env_with

from adapters.base import PaymentFile
from adapters.declared import Declared, load
from domain.models import SubmittedPayment, build_instruction
from gateway.setup import init_home

pytestmark = pytest.mark.slow
EXAMPLES = ROOT / "config" / "formats"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    root = tmp_path_factory.mktemp("agent-declared")
    settings = init_home(root / "home")                   # SQLite
    servers = Servers(settings.home, root)
    try:
        _, base = servers.start(DIRECTLINK_CLEARING_INTERVAL_SECONDS="3600")
        yield Gateway(settings, base)
    finally:
        servers.stop_all()


def batch(prefix: str) -> PaymentFile:
    """Two payments from the operating account: one inside this bank (settles at once), one to another bank."""
    def one(ref: str, amount: str, name: str, account: str, scheme: str, code: str) -> SubmittedPayment:
        return SubmittedPayment(ref, build_instruction(
            client_ref=ref, debtor_account=OPERATING, amount=amount, currency="CNY", creditor_name=name,
            creditor_account=account, bank_scheme=scheme, bank_code=code, bank_name=None, purpose="货款"), where="t")
    return PaymentFile(f"{prefix}-{token()}", (one(f"{prefix}-{token()}-IN", "10.00", "王堃", SUPPLIER, "INTERNAL", ""),
                                              one(f"{prefix}-{token()}-EX", "20.00", "陶喆贸易", EXTERNAL_ACCOUNT,
                                                  "CNAPS", EXTERNAL_CNAPS)), dt.datetime.now(dt.UTC))


def run_and_read_back(erp: Erp, gateway: Gateway, declared: Declared, pay_fmt: str, status_fmt: str,
                      statement_fmt: str, **config) -> None:
    erp.write_config(payment_format=pay_fmt, status_format=status_fmt, statement_format=statement_fmt, **config)
    payments = batch(pay_fmt.split(".")[0].upper())
    refs = [t.client_ref for t in payments.transactions]
    erp.drop(f"run1.{pay_fmt.rsplit('.', 1)[-1]}", declared.payment_writers[pay_fmt](payments))
    done = erp.run()
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert gateway.payment_rows(*refs) == dict.fromkeys(refs, 1)
    assert erp.files("failed") == []

    (status_file,) = [p for p in erp.files("inbox") if "-status-" in p.name]
    rows = declared.status_readers[status_fmt](status_file.read_bytes())
    assert {r["client_ref"]: r["state"] for r in rows} == gateway.states(*refs)

    statements = [p for p in erp.files("inbox") if f"-statement-{OPERATING}." in p.name]
    entries = [e for p in statements for e in declared.adapter.statement_readers[statement_fmt](p.read_bytes()).entries]
    assert [(e.bank_ref, e.amount.amount if e.direction == "CRDT" else -e.amount.amount) for e in entries] == \
           gateway.statement(OPERATING)


def test_a_yonyou_drop_folder_through_the_agent(tmp_path, gateway):
    yonyou = load(ROOT / "adapters" / "yonyou" / "yonyou.toml")
    run_and_read_back(Erp(tmp_path, gateway), gateway, yonyou, "yonyou.json", "yonyou.status.json",
                      "yonyou.statement.json")


def test_a_format_added_to_the_running_gateway_works_through_the_agent(tmp_path, gateway):
    mapping = EXAMPLES / "treasury-fixed.toml"
    added = subprocess.run([*CLI, "adapters", "add", str(mapping), "--home", str(gateway.home)], cwd=ROOT,
                           capture_output=True, text=True, timeout=120, env=env_with())
    assert added.returncode == 0, added.stderr
    erp = Erp(tmp_path, gateway)
    (tmp_path / "formats").mkdir()
    shutil.copy(mapping, tmp_path / "formats")             # the agent writes the status files itself
    run_and_read_back(erp, gateway, load(mapping), "treasury.fixed", "treasury.status.fixed",
                      "treasury.statement.fixed", formats="formats")
    assert Path(gateway.home / "formats" / "treasury-fixed.toml").read_bytes() == mapping.read_bytes()


def test_a_formats_folder_that_is_not_there_names_the_key(tmp_path):
    from agent.config import ConfigError
    from agent.config import load as load_config
    config = tmp_path / "agent.toml"
    erp = {"gateway": "http://127.0.0.1:1", "gateway_certificate": "g.pem", "client": "DEMO", "operator": "maker",
           "key": "k.pem", "certificate": "c.pem", "outbox": "out", "inbox": "in", "state": "s.db",
           "payment_format": "treasury.fixed", "status_format": "treasury.status.fixed",
           "statement_format": "treasury.statement.fixed", "schedule": "*/5 * * * *", "formats": "nowhere"}
    config.write_text("\n".join(f'{k} = "{v}"' for k, v in erp.items()) + '\naccounts = ["1"]\n', "utf-8")
    with pytest.raises(ConfigError, match=r"formats: no such folder: .*nowhere"):
        load_config(config)
