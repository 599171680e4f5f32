"""A real gateway process and a simulated ERP drop folder for tests/agent/test_agent.py.

The gateway is `directlink serve` on SQLite (one backend is enough for the agent, which only talks HTTP);
the ERP writes pain.001 with sepaxml and Kingdee JSON, and reads what lands in its inbox with the
independent readers (mt-940, bai2, pycamt, the official pain.002 XSD)."""
from __future__ import annotations

import datetime as dt
import secrets
import subprocess
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import mt940
from bai2 import bai2
from conftest import OPERATING, SUPPLIER
from iso20022_helpers import (
    CREDITOR_IBAN,
    DEBTOR_IBAN,
    FOREIGN_BIC,
    FOREIGN_IBAN,
    OWN_BIC,
    assert_xsd_valid,
    sepa_file,
    tx_statuses,
)
from kingdee_files import as_json, batch, bill
from processes import CLI, ROOT, env_with
from pycamt.parser import Camt053Parser
from sqlalchemy import func, select

from gateway.clearing import Clearing
from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q, text
from gateway.settings import Settings
from gateway.setup import directory_toml, toml_value
from gateway.storage.engine import make_engine
from gateway.storage.tables import payments

KILLED = -9
EXTERNAL_ACCOUNT, EXTERNAL_CNAPS = "31001234567890", "102290012345"

# EUR accounts whose numbers are the IBANs sepaxml writes (it can write nothing else).
EUR_DIRECTORY = directory_toml({
    "accounts": [{"number": DEBTOR_IBAN, "client": "DEMO", "name": "Demo Trading EUR", "currency": "EUR",
                  "opening_balance": "100000.00"},
                 {"number": CREDITOR_IBAN, "client": "ACME", "name": "ACME EUR", "currency": "EUR"}],
    "grants": [{"client": "DEMO", "operator": "maker", "account": DEBTOR_IBAN,
                "permissions": ["query", "pay"]}]})


def token() -> str:
    return secrets.token_hex(4).upper()


# ---- the gateway -------------------------------------------------------------------------------------------

@dataclass
class Gateway:
    settings: Settings
    base: str

    @property
    def home(self) -> Path:
        return self.settings.home

    def client(self) -> dl.Client:
        demo = self.home / "demo"
        return dl.Client(self.base, "DEMO", "maker", (demo / "maker.key.pem").read_bytes(),
                         (demo / "maker.cert.pem").read_bytes(),
                         self.settings.path(self.settings.gateway_cert).read_bytes(),
                         http=httpx.Client(timeout=30))

    def clear(self) -> None:
        """One clearing pass (the server's own job runs hourly here, so tests decide when payments settle)."""
        engine = make_engine(self.settings.db_url)
        Clearing(engine, self.settings, lambda: dt.datetime.now(dt.UTC)).run_once()
        engine.dispose()

    def payment_rows(self, *refs: str) -> dict[str, int]:
        """ClientRef -> how many payments the gateway's database holds under it."""
        engine = make_engine(self.settings.db_url)
        with engine.connect() as conn:
            found = dict(conn.execute(select(payments.c.client_ref, func.count()).where(
                payments.c.client_ref.in_(refs)).group_by(payments.c.client_ref)).all())
        engine.dispose()
        return {r: found.get(r, 0) for r in refs}

    def states(self, *refs: str) -> dict[str, str]:
        answer = self.client().call(dl.status_query(*refs))
        assert answer.code == "OK", answer.detail
        return {text(s.find(q("ClientRef"))): text(s.find(q("State")))
                for s in answer.body.iterfind(q("PaymentStatus"))}

    def pay_internal(self, ref: str, amount: str, debtor: str = OPERATING) -> None:
        """A booking between two agent passes (a payment made outside the agent, settled at once)."""
        answer = self.client().call(dl.payment_order(dl.payment(ref, debtor, amount, "ACME", SUPPLIER)))
        assert answer.code == "OK", answer.detail
        assert text(answer.body.find(f"{q('PaymentStatus')}/{q('State')}")) == "SETTLED"

    def statement(self, account: str) -> list[tuple[str, Decimal]]:
        """The account's whole statement as (BankRef, signed amount), in EntryId order, page by page."""
        client, after, out = self.client(), "", []
        while True:
            answer = client.call(dl.statement_query(account, after, 1000))
            assert answer.code == "OK", answer.detail
            for e in answer.body.iterfind(q("Entry")):
                amount = Decimal(text(e.find(q("Amount"))))
                credit = text(e.find(q("Direction"))) == "CRDT"
                out.append((text(e.find(q("BankRef"))), amount if credit else -amount))
            after = text(answer.body.find(q("NextCursor")))
            if text(answer.body.find(q("Complete"))) == "true":
                return out


# ---- the ERP side ------------------------------------------------------------------------------------------

class Erp:
    """An ERP drop folder with an agent configured for it."""

    def __init__(self, root: Path, gateway: Gateway):
        self.root, self.gateway = root, gateway
        self.config = root / "agent.toml"
        self.outbox, self.inbox = root / "erp" / "out", root / "erp" / "in"
        self.outbox.mkdir(parents=True)
        self.write_config()

    def write_config(self, **overrides) -> None:
        home = self.gateway.home
        values = {
            "gateway": self.gateway.base, "gateway_certificate": str(home / "certs" / "gateway.cert.pem"),
            "client": "DEMO", "operator": "maker", "key": str(home / "demo" / "maker.key.pem"),
            "certificate": str(home / "demo" / "maker.cert.pem"), "outbox": "erp/out", "inbox": "erp/in",
            "state": "erp/agent.db", "payment_format": "kingdee.json", "status_format": "pain.002.001.03",
            "statement_format": "mt940", "accounts": [OPERATING], "schedule": "*/5 * * * *",
            "log_file": "erp/agent.log", "poll_backoff_seconds": 0} | overrides
        lines = [f"{k} = {toml_value(v)}" for k, v in values.items() if not isinstance(v, dict)]
        for k, v in values.items():
            if isinstance(v, dict):
                lines += [f"[{k}]", *(f"{toml_value(p)} = {toml_value(f)}" for p, f in v.items())]
        self.config.write_text("\n".join(lines) + "\n", "utf-8")

    def run(self, crash: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """`directlink agent --config ... --once` as a process of its own, crashing at `crash` if named."""
        env = {"DIRECTLINK_AGENT_CRASH_AT": crash} if crash else {}
        return subprocess.run([*CLI, "agent", "--config", str(self.config), "--once"],
                              cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env_with(**env))

    def drop(self, name: str, data: bytes) -> Path:
        """The ERP writes a file the way it should: under a temporary name, then renamed into place."""
        temp = self.outbox / f"{name}.part"
        temp.write_bytes(data)
        return temp.rename(self.outbox / name)

    def kingdee(self, name: str, *bills: dict) -> tuple[Path, list[str]]:
        return self.drop(name, as_json(batch(f"KD-{token()}", *bills))), [b["fpayunique"] for b in bills]

    def sepa(self, name: str, amounts: tuple[int, int] = (1234, 500)) -> tuple[Path, list[str]]:
        """A sepaxml pain.001: one payment inside this bank (settles at once), one abroad (for clearing)."""
        refs = [f"SEPA-{token()}-IN", f"SEPA-{token()}-EX"]
        data = sepa_file("pain.001.001.03", [
            {"name": "ACME GmbH", "IBAN": CREDITOR_IBAN, "BIC": OWN_BIC, "amount": amounts[0],
             "endtoend_id": refs[0]},
            {"name": "Foreign Ltd", "IBAN": FOREIGN_IBAN, "BIC": FOREIGN_BIC, "amount": amounts[1],
             "endtoend_id": refs[1]}])
        return self.drop(name, data), refs

    def files(self, folder: str, suffix: str = "") -> list[Path]:
        base = {"processed": self.outbox / "processed", "failed": self.outbox / "failed", "inbox": self.inbox,
                "outbox": self.outbox}[folder]
        if not base.exists():
            return []
        # (the agent's lock, .directlink-agent.lock, is not one of the ERP's files)
        return sorted(p for p in base.iterdir() if p.is_file() and p.name.endswith(suffix) and p.name[0] != ".")

    def status_reports(self) -> list[tuple[str, str, str | None]]:
        """Every (OrgnlEndToEndId, TxSts, reason) of every pain.002 in the inbox, each file XSD-checked."""
        found = []
        for path in self.files("inbox", ".xml"):
            if "-status-" in path.name:
                assert_xsd_valid(path.read_bytes(), "pain.002.001.03")
                found += tx_statuses(path.read_bytes(), "pain.002.001.03")
        return found

    def mt940_entries(self, account: str = OPERATING) -> list[tuple[str, Decimal]]:
        """The union of the inbox's MT940 statements, in file order, as (BankRef, signed amount), after
        checking that each file opens where the one before it closed."""
        out, closing = [], None
        for path in self.files("inbox", f"-statement-{account}.mt940"):
            parsed = mt940.parse(path.read_text("ascii"), options=mt940.Options(reversal_sign=True))
            opening = parsed.data["final_opening_balance"].amount.amount
            assert closing is None or opening == closing, f"{path.name} opens at {opening}, not {closing}"
            closing = parsed.data["final_closing_balance"].amount.amount
            assert opening + sum(t.data["amount"].amount for t in parsed) == closing
            for t in parsed:
                # MT940 cuts a reference to 16 characters; the full bank reference follows as extra details
                out.append((t.data.get("extra_details") or t.data["bank_reference"], t.data["amount"].amount))
        return out

    def bai2_entries(self, account: str) -> list[Decimal]:
        out = []
        for path in self.files("inbox", f"-statement-{account}.bai2"):
            parsed = bai2.parse_from_string(path.read_text("ascii"), check_integrity=True)
            for group in parsed.children:
                for acct in group.children:
                    assert acct.header.customer_account_number == account
                    out += [Decimal(t.amount) / 100 * (1 if t.type_code.transaction.value == "credit" else -1)
                            for t in acct.children]
        return out

    def camt_entries(self, account: str) -> list[tuple[str, Decimal]]:
        out = []
        for path in self.files("inbox", f"-statement-{account}.xml"):
            assert_xsd_valid(path.read_bytes(), "camt.053.001.08")
            for t in Camt053Parser(path.read_bytes()).get_transactions():
                amount = Decimal(t["Amount"])
                out.append((t["TransactionID"], amount if t["CreditDebitIndicator"] == "CRDT" else -amount))
        return out


def kingdee_bills(internal: str = "10.00", external: str = "20.00") -> list[dict]:
    """Two Kingdee bills: one to an account of this bank (settles at once), one to another bank (clearing)."""
    return [bill(f"KD-{token()}-IN", internal),
            bill(f"KD-{token()}-EX", external, fpayeename="外部供应商", fpayeeacct=EXTERNAL_ACCOUNT,
                 frecbanknumber=EXTERNAL_CNAPS)]
