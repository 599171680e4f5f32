"""Amounts in Chinese capital numerals (大写金额), judged against the examples of the People's Bank of China's
rules for filling in vouchers (《支付结算办法》附件一《正确填写票据和结算凭证的基本规定》, 1997), which name
the cases: a zero inside the number, a run of zeros, a zero at 万 or 元, a zero at 角 before 分, and an amount
that ends at 元 (整) or at 角 (整 allowed; bank receipts write it). Where the rules allow two forms, the
shorter one (the rules' first) is the one written."""
from __future__ import annotations

from decimal import Decimal

import pytest

from domain.money import Money
from domain.receipts import capital_amount, entry_row_id, figures, receipt_number, verification_code


@pytest.mark.parametrize(("amount", "words"), [
    # the cases
    ("1004.05", "壹仟零肆元零伍分"),
    ("10000.00", "壹万元整"),
    ("0.50", "伍角整"),
    ("1234.56", "壹仟贰佰叁拾肆元伍角陆分"),
    # the rules' own examples, (一) to (四)
    ("1409.50", "壹仟肆佰零玖元伍角整"),
    ("6007.14", "陆仟零柒元壹角肆分"),
    ("1680.32", "壹仟陆佰捌拾元叁角贰分"),
    ("107000.53", "壹拾万柒仟元伍角叁分"),   # (三): one 零 "或者" none: "也可以不写零字"
    ("16409.02", "壹万陆仟肆佰零玖元零贰分"),
    ("325.04", "叁佰贰拾伍元零肆分"),
    # 壹拾 keeps its 壹 (the rules' 壹拾万); tens, round amounts, only fen, the largest the ledger holds
    ("10.00", "壹拾元整"),
    ("100010.00", "壹拾万零壹拾元整"),
    ("1000000.01", "壹佰万元零壹分"),
    ("0.05", "伍分"),
    ("100000000.00", "壹亿元整"),
    ("9999999999999.99", "玖万玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
])
def test_capital_amount_follows_the_rules(amount, words):
    assert capital_amount(Money(Decimal(amount), "CNY")) == words


def test_a_negative_amount_has_no_capital_form():
    with pytest.raises(ValueError):
        capital_amount(Money(Decimal("-1.00"), "CNY"))


def test_figures_group_thousands():
    assert [figures(Money(Decimal(a), "CNY")) for a in ("1004.05", "0.50", "1234567.00")] == \
        ["1,004.05", "0.50", "1,234,567.00"]


def test_receipt_numbers_round_trip_and_refuse_other_text():
    assert receipt_number(12) == "R000000000012" and entry_row_id("R000000000012") == 12
    assert entry_row_id(receipt_number(10**13)) == 10**13
    assert [entry_row_id(x) for x in ("R12", "X000000000012", "R00000000001２", "R-00000000001")] == [None] * 4


def test_the_verification_code_names_the_content():
    a, b = verification_code(b"<Receipt>1</Receipt>"), verification_code(b"<Receipt>2</Receipt>")
    assert a != b and len(a) == 19 and a.count("-") == 3 and a == verification_code(b"<Receipt>1</Receipt>")
