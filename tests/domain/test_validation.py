"""Input validation, property-based: each lexical trap of security.md VAL-01..07 against the domain checks."""
from __future__ import annotations

import contextlib
import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.codes import ReasonCode
from domain.errors import DirectLinkError, PaymentRejected
from domain.models import BankCode, build_instruction, check_account, check_text, has_control_or_format
from domain.money import check_currency, check_iso_currency, iso_minor_units, minor_units, parse_amount
from gateway.protocol.messages import parse_datetime

ACCOUNT = re.compile(r"[0-9A-Za-z]{1,34}", re.ASCII)
TRAPS = ["６２２２", "6222\u200b0000", " 6222", "6222 ", "٦٢٢٢", "6222-0001", "", "x" * 35]


def reason(call) -> ReasonCode | None:
    try:
        call()
    except PaymentRejected as err:
        return err.reason
    return None


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_account_numbers_are_ascii_alphanumerics_only(text):
    expected = None if ACCOUNT.fullmatch(text) else ReasonCode.ACCOUNT_INVALID
    assert reason(lambda: check_account(text, "debtor")) == expected


@pytest.mark.parametrize("text", TRAPS)
def test_account_traps(text):
    assert reason(lambda: check_account(text, "creditor")) == ReasonCode.ACCOUNT_INVALID


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=14))
def test_cnaps_is_exactly_twelve_ascii_digits(code):
    ok = len(code) == 12 and code.isascii() and code.isdigit()
    assert reason(lambda: BankCode("CNAPS", code)) == (None if ok else ReasonCode.BANK_CODE_INVALID)


@given(st.from_regex(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?", fullmatch=True))
def test_well_formed_bics_pass(code):
    assert reason(lambda: BankCode("BIC", code)) is None


@pytest.mark.parametrize("code", ["DEUTDEF", "DEUTDEFF5", "deutdeff", "DEUT1EFF", "ＤＥＵＴＤＥＦＦ", "DEUTDEFF500X"])
def test_malformed_bics_fail(code):
    assert reason(lambda: BankCode("BIC", code)) == ReasonCode.BANK_CODE_INVALID


@given(st.text(max_size=5))
def test_currencies_are_the_allowed_iso_codes(text):
    expected = None if text in minor_units() else ReasonCode.CURRENCY_NOT_ALLOWED
    assert reason(lambda: check_currency(text)) == expected


def test_statements_know_every_iso_currency_payments_only_the_gateways():
    """iso_minor_units (the iso4217 package) is for what other banks report; payments keep the gateway's list."""
    iso = iso_minor_units()
    assert (iso["CHF"], iso["JPY"], iso["KWD"], iso["CLF"], len(iso) > 150) == (2, 0, 3, 4, True)
    assert "XAU" not in iso and "XXX" not in iso                # no minor units: not an account's currency
    assert all(iso[code] == places for code, places in minor_units().items())     # the two lists agree
    assert reason(lambda: check_currency("CHF")) == ReasonCode.CURRENCY_NOT_ALLOWED
    assert reason(lambda: parse_amount("10.00", "CHF")) == ReasonCode.CURRENCY_NOT_ALLOWED
    assert parse_amount("1.250", "KWD", any_iso=True).minor == 1250
    assert reason(lambda: parse_amount("1.2501", "KWD", any_iso=True)) == ReasonCode.AMOUNT_INVALID
    for code in ("ZZZ", "XAU", "chf", ""):
        assert reason(lambda code=code: check_iso_currency(code)) == ReasonCode.CURRENCY_NOT_ALLOWED


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(codec="gb18030", exclude_categories=("Cc", "Cf", "Cs")), min_size=1,
               max_size=70))
def test_names_in_gb18030_count_characters_not_bytes(name):
    """Any printable GB18030 name of 1-70 characters is kept, NFC-normalised; 4-byte characters count as one."""
    nfc = unicodedata.normalize("NFC", name)
    if 1 <= len(nfc) <= 70:
        assert check_text(name, "name", 1, 70) == nfc


@pytest.mark.parametrize("name", ["张三\u202e", "Acme\u200b", "A\x00B", "tab\there"])
def test_names_with_control_or_format_characters_are_refused(name):
    assert reason(lambda: check_text(name, "name", 1, 70)) is not None


def test_a_name_of_seventy_supplementary_characters_is_fine():
    assert check_text("\U00020000" * 70, "name", 1, 70) == "\U00020000" * 70


@given(st.text(max_size=40))
def test_created_timestamps_parse_or_are_refused_with_a_code(text):
    with contextlib.suppress(DirectLinkError):
        parse_datetime(text)


def test_creditor_equal_to_debtor_is_refused():
    got = reason(lambda: build_instruction(
        client_ref="R", debtor_account="6222000000000001", amount="1.00", currency="CNY", creditor_name="Self",
        creditor_account="6222000000000001", bank_scheme="INTERNAL", bank_code="", bank_name=None, purpose="p"))
    assert got == ReasonCode.ACCOUNT_INVALID


@settings(max_examples=3000, derandomize=True, database=None)
@given(st.text(alphabet=st.characters(codec=None), max_size=12))
def test_the_fast_check_for_control_and_format_characters_agrees_with_reading_every_character(value):
    """has_control_or_format skips the character-by-character reading for printable texts: over any text
    (every category, surrogates, unassigned code points, no-break spaces), its answer is the full reading's."""
    exact = any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value)
    assert has_control_or_format(value) == exact


@pytest.mark.parametrize("value", ["\u00ad", "a\u200bb", "\ufeff", "x\u202e", "\x7f", "\x85", "名\u2066称", "\U000e0001"])
def test_format_and_control_characters_are_found_in_printable_company(value):
    assert has_control_or_format(value)
    assert not has_control_or_format("上海 某某\u00a0科技 (ACME) & Co.")
