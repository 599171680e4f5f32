"""The pure parts of the rules stage: name keys (Chinese, pinyin, spelling noise) and rule decisions."""
from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from domain.cash import Expected, project
from domain.codes import ReasonCode
from domain.models import build_instruction
from domain.names import account_key, key, name_matches
from domain.rules import Earlier, Facts, Outcome, evaluate, outcome_of, parse_params

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def test_chinese_and_pinyin_spellings_share_a_key():
    assert key("华为技术有限公司") == key("Hua Wei Ji Shu You Xian Gong Si") == key("HUAWEI-JISHU youxian gongsi")
    assert key("重庆银行") == "chongqingyinhang"                        # a polyphonic character read in context
    assert key("ＡＣＭＥ　Ｃｏ．") == key("acme co")                     # full-width
    assert key("Lǚ Xíng") == key("lu xing")                               # tone marks
    assert account_key("6222 8888-0000 1234") == "6222888800001234"


def test_short_listed_names_must_match_whole():
    assert name_matches(key("Li"), key("Li")) and not name_matches(key("Li"), key("Oliver Trading"))
    assert name_matches(key("东方红贸易"), key("东方红贸易有限公司"))
    assert not name_matches(key("东方红贸易有限公司"), key("东方电子"))


@given(st.text(alphabet="东方红贸易有限公司abcXYZ123", min_size=1, max_size=12),
       st.lists(st.sampled_from([" ", "-", ".", ",", "　", "(", ")"]), max_size=4))
def test_punctuation_and_spacing_never_change_a_key(name, noise):
    noisy = "".join(noise) + name + "".join(reversed(noise))
    assert key(noisy) == key(name)


def instruction(amount="100.00", ref="R-1", account="31001234567890", name="上海某某科技有限公司", date=None):
    return build_instruction(client_ref=ref, end_to_end_id=None, debtor_account="6222000000000001", amount=amount,
                             currency="CNY", creditor_name=name, creditor_account=account, bank_scheme="CNAPS",
                             bank_code="102290012345", bank_name=None, purpose="货款", remark=None,
                             requested_date=date, urgency="NORMAL")


NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)


def test_a_known_account_passes_a_switched_one_names_the_old():
    rules = {"new_payee": parse_params("new_payee", {})}
    assert evaluate(rules, Facts(instruction(), NOW, known_account=True)) == []
    assert evaluate(rules, Facts(instruction(), NOW, registered=True)) == []
    [hit] = evaluate(rules, Facts(instruction(), NOW, name_accounts=("6217009999",)))
    assert hit.code == ReasonCode.RULE_PAYEE_ACCOUNT_CHANGED and "6217009999" in hit.detail
    [hit] = evaluate(rules, Facts(instruction(), NOW))
    assert hit.code == ReasonCode.RULE_NEW_PAYEE and hit.outcome == Outcome.HOLD


def test_the_most_severe_outcome_wins_and_every_hit_is_listed():
    rules = {"cash_floor": parse_params("cash_floor", {"floor": "500.00"}),
             "payee_daily_cap": parse_params("payee_daily_cap", {"cap": "50.00"})}
    hits = evaluate(rules, Facts(instruction(), NOW, available=550_00))
    assert [(h.rule, h.outcome) for h in hits] == [("payee_daily_cap", Outcome.REJECT), ("cash_floor", Outcome.HOLD)]
    assert outcome_of(hits) == Outcome.REJECT and outcome_of([]) is None


def test_duplicate_window_is_respected():
    rules = {"duplicate": parse_params("duplicate", {"window_days": 3})}
    old = Earlier("P1", "R-0", NOW - dt.timedelta(days=4))
    assert evaluate(rules, Facts(instruction(), NOW, duplicate_of=old)) == []
    recent = Earlier("P1", "R-0", NOW - dt.timedelta(days=2))
    [hit] = evaluate(rules, Facts(instruction(), NOW, duplicate_of=recent))
    assert hit.code == ReasonCode.RULE_PROBABLE_DUPLICATE and "P1" in hit.detail and "R-0" in hit.detail


def test_caps_velocity_and_anomaly_thresholds_are_inclusive():
    rules = {"payee_daily_cap": parse_params("payee_daily_cap", {"cap": "300.00"}),
             "velocity": parse_params("velocity", {"max_count": 3, "max_amount": "1000.00"}),
             "amount_anomaly": parse_params("amount_anomaly", {"factor": 2, "min_history": 3})}
    at_edge = Facts(instruction("100.00"), NOW, payee_today=200_00, recent_count=2, recent_amount=900_00,
                    payee_amounts=(50_00, 50_00, 90_00))
    assert evaluate(rules, at_edge) == []                               # exactly at each limit: allowed
    over = Facts(instruction("100.01"), NOW, payee_today=200_00, recent_count=3, recent_amount=900_00,
                 payee_amounts=(50_00, 50_00))
    assert [h.code for h in evaluate(rules, over)] == [ReasonCode.RULE_CAP_EXCEEDED,
                                                       ReasonCode.RULE_VELOCITY_EXCEEDED]   # 2 amounts: no median


def test_weekend_and_window_edges():
    rules = {"business_hours": parse_params("business_hours", {"windows": {"NORMAL": "09:00-17:00"},
                                                                 "weekdays_only": True})}
    at = lambda h, m, day=25: dt.datetime(2026, 11, day, h, m, tzinfo=SHANGHAI)  # noqa: E731 - 25th: Wednesday
    assert evaluate(rules, Facts(instruction(), at(9, 0))) == []
    assert evaluate(rules, Facts(instruction(), at(16, 59))) == []
    assert evaluate(rules, Facts(instruction(), at(17, 0)))[0].code == ReasonCode.RULE_OUTSIDE_WINDOW
    assert evaluate(rules, Facts(instruction(), at(10, 0, day=28)))[0].code == ReasonCode.RULE_OUTSIDE_WINDOW


def test_projection_is_booked_plus_everything_expected_up_to_each_day():
    today = dt.date(2026, 11, 25)
    pos = project("A", "CNY", 1000, 700, [(today - dt.timedelta(days=1), 100), (today + dt.timedelta(days=1), 200)],
                  [Expected("A", today + dt.timedelta(days=1), "CRDT", 50), Expected("B", today, "CRDT", 999)],
                  today, 3)
    assert pos.unsettled == 300
    assert [(d.outflows, d.expected_in, d.projected) for d in pos.days] == [(100, 0, 900), (200, 50, 750), (0, 0, 750)]
