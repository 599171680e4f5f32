"""Ex-ante fund-flow rules (docs/rules.md): the judged scenarios, each caught with its rule named, on a
real gateway over SQLite and PostgreSQL; nothing legitimate held without a reason; dry runs keep nothing."""
from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from conftest import OPERATING, PAYROLL, SUPPLIER, snapshot
from sqlalchemy import select

from gateway import rulebook
from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q, text
from gateway.storage.tables import audit_log, payments

VENDOR, VENDOR_ACCOUNT, VENDOR_BANK = "上海某某科技有限公司", "31001234567890", "102290012345"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def configure(gateway, rule: str, account: str = "", **params) -> None:
    with gateway.engine.begin() as conn:
        rulebook.set_rule(conn, "DEMO", account, rule, params, now())


def pay(client, ref, amount="1000.00", name=VENDOR, account=VENDOR_ACCOUNT, debtor=OPERATING, dry_run=False, **kw):
    """One external payment; returns its PaymentStatus element."""
    answer = client.call(dl.payment_order(dl.payment(ref, debtor, amount, name, account, scheme="CNAPS",
                                                     bank_code=VENDOR_BANK, **kw), dry_run=dry_run))
    assert answer.status == 200, answer.code
    return answer.body.find(q("PaymentStatus"))


def state(st) -> tuple[str, str | None]:
    reason = st.find(q("Reason"))
    return text(st.find(q("State"))), (reason.get("code") if reason is not None else None)


def fired(st) -> list[tuple[str, str, str]]:
    """(rule, outcome, code) of every rule that fired, as the PaymentStatus reports them."""
    found = st.find(q("Rules"))
    return [] if found is None else [(r.get("name"), r.get("outcome"), r.get("code")) for r in found]


def approve(checker, st):
    answer = checker.call(dl.approval(text(st.find(q("PaymentId"))), text(st.find(q("OrderDigest")))))
    return answer.body.find(q("PaymentStatus"))


# ---- the judged scenarios ------------------------------------------------------------------------------------

def test_duplicate_invoice_paid_twice_under_a_new_reference_is_held_naming_the_first(maker, checker, gateway):
    configure(gateway, "duplicate", window_days=7)
    first = pay(maker, "INV-7781-A", "48250.00")
    assert state(first) == ("ACCEPTED", None) and fired(first) == []
    second = pay(maker, "INV-7781-B", "48250.00")
    assert state(second) == ("PENDING_APPROVAL", "RULE_PROBABLE_DUPLICATE")
    assert fired(second) == [("duplicate", "HOLD", "RULE_PROBABLE_DUPLICATE")]
    why = text(second.find(q("Rules"))[0])
    assert text(first.find(q("PaymentId"))) in why and "INV-7781-A" in why
    # the approver sees the same when asking, and may release it
    asked = maker.call(dl.status_query("INV-7781-B")).body.find(q("PaymentStatus"))
    assert fired(asked) == fired(second)
    released = approve(checker, second)
    assert state(released) == ("ACCEPTED", None)
    assert fired(released) == [("duplicate", "HOLD", "RULE_PROBABLE_DUPLICATE")]   # history stays visible
    # a retry of the first reference is a retry, not a duplicate; another amount is not a duplicate
    assert state(pay(maker, "INV-7781-A", "48250.00")) == ("ACCEPTED", None)
    assert state(pay(maker, "INV-7782", "48250.01")) == ("ACCEPTED", None)


def test_payee_whose_account_was_switched_is_held_naming_the_old_account(maker, checker, gateway):
    configure(gateway, "new_payee")
    first = pay(maker, "SW-1")
    assert state(first) == ("PENDING_APPROVAL", "RULE_NEW_PAYEE")
    assert state(approve(checker, first))[0] == "ACCEPTED"
    assert state(pay(maker, "SW-2")) == ("ACCEPTED", None)            # a known payee and account: no hold
    switched = pay(maker, "SW-3", account="6217001234000999")
    assert state(switched) == ("PENDING_APPROVAL", "RULE_PAYEE_ACCOUNT_CHANGED")
    assert VENDOR_ACCOUNT in text(switched.find(q("Rules"))[0])
    # the same payee written in pinyin with the new account is the same switch
    pinyin = pay(maker, "SW-4", name="Shanghai Moumou Keji Youxian Gongsi", account="6217001234000999")
    assert state(pinyin) == ("PENDING_APPROVAL", "RULE_PAYEE_ACCOUNT_CHANGED")


def test_a_burst_of_small_payments_is_stopped_by_velocity_and_the_payee_cap(maker, gateway):
    configure(gateway, "velocity", window_minutes=60, max_count=5)
    configure(gateway, "payee_daily_cap", cap="2000.00")
    answers = [state(pay(maker, f"BURST-{i}", "450.00")) for i in range(4)]
    assert answers == [("ACCEPTED", None)] * 4                     # 1,800.00 so far
    before = snapshot(gateway.engine)
    over_cap = pay(maker, "BURST-4", "450.00")
    assert state(over_cap) == ("REJECTED", "RULE_CAP_EXCEEDED")
    assert "2250.00" in text(over_cap.find(q("Reason"))) and text(over_cap.find(q("PaymentId"))) is None
    assert snapshot(gateway.engine)["payments"] == before["payments"]   # refused: nothing stored, no hold
    assert snapshot(gateway.engine)["accounts"] == before["accounts"]
    # other payees are under their own cap, but the account's velocity counts them all
    assert state(pay(maker, "BURST-5", "10.00", name="ACME Trading", account="6222999900001111")) == ("ACCEPTED", None)
    sixth = pay(maker, "BURST-6", "10.00", name="Other Co", account="6222999900002222")
    assert state(sixth) == ("REJECTED", "RULE_VELOCITY_EXCEEDED")


def test_blocked_name_in_chinese_and_in_pinyin_and_a_blocked_account(maker, gateway, tmp_path):
    listing = tmp_path / "blocked.csv"
    listing.write_text("name,account\n东方红贸易有限公司,\nHEI SHAN KUANG YE,\n,6222 8888 0000 1234\n", "utf-8")
    with gateway.engine.begin() as conn:
        assert rulebook.load_block_list(conn, listing, "watch", "", now()) == 3
    before = snapshot(gateway.engine)
    cases = [("BL-1", "东方红贸易有限公司", "6217000000000001"),
             ("BL-2", "Dong Fang Hong Mao Yi You Xian Gong Si", "6217000000000002"),   # pinyin of a Chinese entry
             ("BL-3", "黑山矿业集团", "6217000000000003"),                              # Chinese of a pinyin entry
             ("BL-4", "Any Name Ltd", "6222888800001234")]                             # the account, spaced otherwise
    for ref, name, account in cases:
        st = pay(maker, ref, name=name, account=account)
        assert state(st) == ("REJECTED", "RULE_BLOCKED_COUNTERPARTY"), ref
        assert fired(st) == [("block_list", "REJECT", "RULE_BLOCKED_COUNTERPARTY")]
    assert snapshot(gateway.engine)["payments"] == before["payments"]
    # a name that merely shares a short syllable is not blocked
    assert state(pay(maker, "BL-5", name="东方电子", account="6217000000000005")) == ("ACCEPTED", None)
    # every refusal is in the client's audit chain with the rule's code
    with gateway.engine.connect() as conn:
        codes = conn.execute(select(audit_log.c.code, audit_log.c.detail).where(audit_log.c.kind == "rule")).all()
    assert [c for c, _ in codes] == ["RULE_BLOCKED_COUNTERPARTY"] * 4
    assert "BL-2" in codes[1][1] and "watch" in codes[1][1]


def test_month_end_payroll_that_would_breach_the_floor_is_held(maker, checker, gateway):
    configure(gateway, "cash_floor", account=PAYROLL, floor="200000.00")   # payroll holds 400,000.00
    batch = [dl.payment(f"SAL-{i:02d}", PAYROLL, "55000.00", f"员工{i:02d}", f"62170000000001{i:02d}",
                        scheme="CNAPS", bank_code=VENDOR_BANK) for i in range(5)]
    answer = maker.call(dl.payment_order(*batch, batch_id="PAYROLL-2026-11"))
    results = [state(s) for s in answer.body.iterfind(q("PaymentStatus"))]
    assert results[:3] == [("ACCEPTED", None)] * 3                   # 235,000.00 left, over the floor
    assert results[3:] == [("PENDING_APPROVAL", "RULE_CASH_FLOOR")] * 2
    held = list(answer.body.iterfind(q("PaymentStatus")))[3]
    assert "180000.00" in text(held.find(q("Rules"))[0]) and "200000.00" in text(held.find(q("Rules"))[0])
    # the operating account has no floor: the same payment goes through there
    assert state(pay(maker, "OP-1", "60000.00")) == ("ACCEPTED", None)


def test_amount_far_above_the_payees_history_is_held(maker, gateway):
    configure(gateway, "amount_anomaly", factor=5, min_history=3)
    for i, amount in enumerate(["1000.00", "1200.00", "900.00"]):
        assert state(pay(maker, f"AN-{i}", amount)) == ("ACCEPTED", None)
    assert state(pay(maker, "AN-3", "5000.00")) == ("ACCEPTED", None)      # 5 x median (1,000.00) is allowed
    odd = pay(maker, "AN-4", "9000.00")                                     # 5 x median is now 5,500.00
    assert state(odd) == ("PENDING_APPROVAL", "RULE_AMOUNT_ANOMALY")


def test_outside_business_hours_same_day_is_refused_and_a_later_date_is_not(maker, gateway):
    local = now().astimezone(ZoneInfo("Asia/Shanghai"))
    closed = "00:00-00:01" if local.hour >= 1 else "23:00-24:00"
    configure(gateway, "business_hours", windows={"NORMAL": closed, "URGENT": closed})
    st = pay(maker, "BH-1")
    assert state(st) == ("REJECTED", "RULE_OUTSIDE_WINDOW")
    tomorrow = local.date() + dt.timedelta(days=1)
    assert state(pay(maker, "BH-2", requested_date=tomorrow))[0] == "ACCEPTED"


def test_allow_list_refuses_unregistered_payees_until_registered(maker, gateway):
    configure(gateway, "allow_list")
    assert state(pay(maker, "AL-1")) == ("REJECTED", "RULE_PAYEE_NOT_ALLOWED")
    with gateway.engine.begin() as conn:
        rulebook.add_counterparty(conn, "DEMO", VENDOR, VENDOR_ACCOUNT, now())
    assert state(pay(maker, "AL-2")) == ("ACCEPTED", None)


def test_legitimate_payments_pass_every_rule_untouched(maker, gateway, tmp_path):
    listing = tmp_path / "blocked.json"
    listing.write_text(json.dumps([{"name": "东方红贸易有限公司", "aliases": ["Dongfanghong Trading"]}]), "utf-8")
    with gateway.engine.begin() as conn:
        rulebook.load_block_list(conn, listing, "watch", "", now())
        rulebook.add_counterparty(conn, "DEMO", VENDOR, VENDOR_ACCOUNT, now())
    for rule, params in [("allow_list", {}), ("new_payee", {}), ("duplicate", {}), ("payee_daily_cap",
                         {"cap": "100000.00"}), ("velocity", {"max_count": 50}), ("amount_anomaly", {}),
                         ("business_hours", {}), ("cash_floor", {"floor": "10000.00"})]:
        configure(gateway, rule, **params)
    for i, amount in enumerate(["1000.00", "1100.00", "950.00", "1020.00"]):
        st = pay(maker, f"OK-{i}", amount)
        assert state(st) == ("ACCEPTED", None) and fired(st) == [], (i, fired(st))


# ---- dry run, cash position, configuration -------------------------------------------------------------------

def test_dry_run_decides_every_payment_and_keeps_nothing(maker, gateway):
    configure(gateway, "duplicate")
    real = pay(maker, "DR-0", "700.00")
    before = snapshot(gateway.engine)
    batch = [dl.payment("DR-0", OPERATING, "700.00", VENDOR, VENDOR_ACCOUNT, scheme="CNAPS", bank_code=VENDOR_BANK),
             dl.payment("DR-1", OPERATING, "700.00", VENDOR, VENDOR_ACCOUNT, scheme="CNAPS", bank_code=VENDOR_BANK),
             dl.payment("DR-2", OPERATING, "99999999.00", VENDOR, VENDOR_ACCOUNT, scheme="CNAPS",
                        bank_code=VENDOR_BANK),
             dl.payment("DR-3", OPERATING, "12.00", "ACME", SUPPLIER)]
    answer = maker.call(dl.payment_order(*batch, dry_run=True))
    assert answer.body.find(q("PaymentReport")) is None and answer.body.get("dryRun") == "true"
    got = [(state(s), text(s.find(q("PaymentId")))) for s in answer.body.iterfind(q("PaymentStatus"))]
    assert got == [(("ACCEPTED", None), text(real.find(q("PaymentId")))),      # a retry: the real payment
                   (("PENDING_APPROVAL", "RULE_PROBABLE_DUPLICATE"), None),
                   (("REJECTED", "LIMIT_SINGLE"), None),
                   (("SETTLED", None), None)]                                  # would settle at once
    after = snapshot(gateway.engine)
    assert {k: v for k, v in after.items() if k != "messages"} == {k: v for k, v in before.items() if k != "messages"}
    # and a real submission afterwards decides the same
    assert state(pay(maker, "DR-1", "700.00")) == ("PENDING_APPROVAL", "RULE_PROBABLE_DUPLICATE")


@pytest.mark.parametrize("flag", [" true ", "1", "\ttrue\n"])
def test_dry_run_flag_is_read_as_the_schema_reads_it(maker, gateway, flag):
    before = snapshot(gateway.engine)
    op = dl.payment_order(dl.payment("DRF-1", OPERATING, "7.00", "ACME", SUPPLIER))
    op.set("dryRun", flag)
    answer = maker.call(op)
    assert answer.code == "OK" and answer.body.get("dryRun") == "true"
    assert snapshot(gateway.engine)["payments"] == before["payments"]


def test_dry_run_of_an_erp_file(maker, gateway):
    data = json.dumps({"formid": "bei_bankpaybill", "fbatchseqid": "KD-DRY-1", "ftotalcount": 1,
                       "ftotalamount": "12.00", "data": [
        {"fpayunique": "KD-1", "fpayeracct": OPERATING, "fpayeename": "ACME", "fpayeeacct": SUPPLIER,
         "frecbanknumber": "本行", "famount": "12.00", "fcurrency": "CNY", "fusage": "货款"}]}, ensure_ascii=False)
    before = snapshot(gateway.engine)
    op = dl.document_submit(data.encode(), "kingdee.json")
    op.set("dryRun", "true")
    answer = maker.call(op)
    assert answer.code == "OK" and answer.body.get("dryRun") == "true", answer.detail
    assert [state(s) for s in answer.body.iterfind(q("PaymentStatus"))] == [("SETTLED", None)]
    assert snapshot(gateway.engine)["payments"] == before["payments"]


def test_cash_position_projects_unsettled_outflows_and_expected_items(maker, viewer, gateway):
    local_today = now().astimezone(ZoneInfo("Asia/Shanghai")).date()
    in_two = local_today + dt.timedelta(days=2)
    pay(maker, "CP-1", "1000.00")                                  # accepted, due today
    pay(maker, "CP-2", "500.00", requested_date=in_two)           # accepted, due in two days
    expected = ((OPERATING, in_two.isoformat(), "CRDT", "20000.00", "CNY"),
                (OPERATING, (local_today - dt.timedelta(days=3)).isoformat(), "DBIT", "300.00", "CNY"))
    answer = viewer.call(dl.cash_position(OPERATING, days=4, expected=expected))
    assert answer.code == "OK", answer.detail
    pos = answer.body.find(q("AccountPosition"))
    assert [text(pos.find(q(t))) for t in ("Booked", "Available", "Unsettled")] == \
        ["1000000.00", "998500.00", "1500.00"]
    days = [(d.get("date"), *[text(d.find(q(t))) for t in ("Outflows", "ExpectedIn", "ExpectedOut", "Projected")])
            for d in pos.iterfind(q("Day"))]
    assert days == [(local_today.isoformat(), "1000.00", "0.00", "300.00", "998700.00"),   # overdue item: today
                    ((local_today + dt.timedelta(days=1)).isoformat(), "0.00", "0.00", "0.00", "998700.00"),
                    (in_two.isoformat(), "500.00", "20000.00", "0.00", "1018200.00"),
                    ((local_today + dt.timedelta(days=3)).isoformat(), "0.00", "0.00", "0.00", "1018200.00")]
    # an account the operator does not hold is not found; a bad expected amount refuses the query
    assert viewer.call(dl.cash_position("6222000000009999")).code == "NOT_FOUND"
    bad = viewer.call(dl.cash_position(OPERATING, expected=((OPERATING, in_two.isoformat(), "CRDT", "1.001", "CNY"),)))
    assert bad.code == "XML_SCHEMA_INVALID"
    other = viewer.call(dl.cash_position(OPERATING, expected=((OPERATING, in_two.isoformat(), "CRDT", "500000", "JPY"),)))
    assert other.code == "XML_SCHEMA_INVALID" and "JPY" in other.detail


@pytest.mark.parametrize("rule,params,fragment", [
    ("nope", {}, "unknown rule"),
    ("velocity", {"max_count": 0}, "max_count"),
    ("payee_daily_cap", {"cap": "1e5"}, "cap"),
    ("business_hours", {"windows": {"NORMAL": "18:00-09:00"}}, "ends before it starts"),
    ("duplicate", {"window": 3}, "window"),
])
def test_bad_rule_configuration_is_refused_and_changes_nothing(gateway, rule, params, fragment):
    with gateway.engine.begin() as conn:
        with pytest.raises(ValueError, match=fragment):
            rulebook.set_rule(conn, "DEMO", "", rule, params, now())
        assert rulebook.list_rules(conn, "DEMO") == []


def test_rule_changes_are_audited_and_the_account_overrides_the_client(maker, gateway):
    configure(gateway, "cash_floor", floor="999999.00")
    configure(gateway, "cash_floor", account=OPERATING, enabled=False, floor="0")
    assert state(pay(maker, "OV-1", "100.00")) == ("ACCEPTED", None)         # switched off for this account
    held = maker.call(dl.payment_order(dl.payment("OV-2", PAYROLL, "100.00", VENDOR, VENDOR_ACCOUNT, scheme="CNAPS",
                                                  bank_code=VENDOR_BANK))).body.find(q("PaymentStatus"))
    assert state(held) == ("PENDING_APPROVAL", "RULE_CASH_FLOOR")
    with gateway.engine.connect() as conn:
        details = conn.execute(select(audit_log.c.detail).where(audit_log.c.code == "RULE_SET")).scalars().all()
        stored = conn.execute(select(payments.c.rule_hits).where(payments.c.client_ref == "OV-2")).scalar()
    assert len(details) == 2 and OPERATING in details[1]
    assert json.loads(stored)[0]["code"] == "RULE_CASH_FLOOR"


def test_a_cancelled_payment_makes_no_payee_known_and_no_duplicate(maker, gateway):
    configure(gateway, "new_payee")
    configure(gateway, "duplicate")
    first = pay(maker, "CX-1", "321.00")
    assert state(first) == ("PENDING_APPROVAL", "RULE_NEW_PAYEE")
    assert state(maker.call(dl.cancel(text(first.find(q("PaymentId"))))).body.find(q("PaymentStatus")))[0] == "CANCELLED"
    again = pay(maker, "CX-2", "321.00")
    assert fired(again) == [("new_payee", "HOLD", "RULE_NEW_PAYEE")]      # still new, and not a duplicate


def test_the_cli_declares_lists_and_removes_rules_and_refuses_bad_ones(tmp_path):
    import subprocess

    from processes import CLI

    def cli(*args):
        return subprocess.run([*CLI, *args, "--home", str(tmp_path / "h")], capture_output=True, text=True,
                              timeout=120)
    subprocess.run([*CLI, "init", str(tmp_path / "h")], capture_output=True, check=True, timeout=120)
    assert cli("rules", "set", "DEMO", "velocity", "--param", "max_count=0").returncode == 2
    unknown = cli("rules", "set", "NOBODY", "duplicate")
    assert unknown.returncode == 2 and "unknown client NOBODY" in unknown.stderr
    bad = cli("rules", "set", "DEMO", "business_hours", "--param", "windows={not json")
    assert bad.returncode == 2 and "windows" in bad.stderr
    done = cli("rules", "set", "DEMO", "duplicate", "--param", "window_days=3", "--account", OPERATING)
    assert done.returncode == 0, done.stderr
    listed = cli("rules", "list", "DEMO").stdout
    assert OPERATING in listed and '"window_days": 3' in listed and "velocity" not in listed
    (tmp_path / "b.csv").write_text("name,account\n东方红贸易有限公司,\n", "utf-8")
    assert "1 entries" in cli("rules", "block-list", str(tmp_path / "b.csv"), "--name", "watch").stdout
    assert cli("rules", "payee", "add", "DEMO", VENDOR, VENDOR_ACCOUNT).returncode == 0
    assert cli("rules", "remove", "DEMO", "duplicate", "--account", OPERATING).returncode == 0
    assert cli("rules", "remove", "DEMO", "duplicate", "--account", OPERATING).returncode == 2


def test_rules_counterparties_and_block_lists_apply_from_the_directory_file(gateway, tmp_path):
    from gateway import directory_file
    (tmp_path / "watch.json").write_text(json.dumps([{"name": "黑山矿业", "account": "6222000011112222"}]), "utf-8")
    (tmp_path / "directory.toml").write_text(f'''
[[rules]]
client = "DEMO"
rule = "payee_daily_cap"
cap = "5000.00"

[[rules]]
client = "DEMO"
account = "{PAYROLL}"
rule = "business_hours"
windows = {{ URGENT = "09:00-16:00" }}
weekdays_only = true

[[counterparties]]
client = "DEMO"
name = "{VENDOR}"
account = "{VENDOR_ACCOUNT}"

[[block_lists]]
name = "watch"
file = "watch.json"
''', "utf-8")
    with gateway.engine.begin() as conn:
        counts = directory_file.apply(conn, tmp_path / "directory.toml", now(), now().date())
        assert (counts["rules"], counts["counterparties"], counts["block_lists"]) == (2, 1, 1)
        assert [(a, r) for a, r, _ in rulebook.list_rules(conn, "DEMO")] == [("", "payee_daily_cap"),
                                                                         (PAYROLL, "business_hours")]
    (tmp_path / "bad.toml").write_text('[[rules]]\nclient = "DEMO"\nrule = "velocity"\nmax_count = -1\n', "utf-8")
    with pytest.raises(ValueError, match="max_count"), gateway.engine.begin() as conn:
        directory_file.apply(conn, tmp_path / "bad.toml", now(), now().date())
    with gateway.engine.connect() as conn:
        assert len(rulebook.list_rules(conn, "DEMO")) == 2
