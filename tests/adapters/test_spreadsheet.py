"""adapters/spreadsheet.py, the one CSV writer (issue 29, hole 2): no cell a spreadsheet would run as a
formula, numbers left as numbers, and every value read back exactly."""
from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from adapters.spreadsheet import cell, csv_bytes, plain

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def test_formula_cells_are_shown_as_text():
    assert cell('=HYPERLINK("http://evil.example","x")') == '\'=HYPERLINK("http://evil.example","x")'
    assert cell("=1+2+cmd|' /C calc'!A0") == "'=1+2+cmd|' /C calc'!A0"
    assert [cell(v) for v in ("+86 21 5555", "-x", "@SUM(A1)", "\t=1", "\r=1")] == \
        ["'+86 21 5555", "'-x", "'@SUM(A1)", "'\t=1", "'\r=1"]


def test_numbers_and_plain_text_are_untouched():
    assert [cell(v) for v in ("-12.50", "+3", "100", "上海某某科技", "2026-11-01", "")] == \
        ["-12.50", "+3", "100", "上海某某科技", "2026-11-01", ""]


def test_a_leading_apostrophe_is_kept_by_doubling():
    assert cell("'s-Hertogenbosch") == "''s-Hertogenbosch" and plain("''s-Hertogenbosch") == "'s-Hertogenbosch"


@given(st.lists(st.lists(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))), min_size=1, max_size=4), max_size=4))
def test_every_value_comes_back_and_no_written_cell_starts_a_formula(rows):
    data = csv_bytes(rows, excel_bom=True)
    assert data.startswith(b"\xef\xbb\xbf")
    written = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    for row in written:
        for value in row:
            assert not value.startswith(FORMULA_STARTS) or value.lstrip("+-").replace(".", "", 1).isdigit()
    assert [[plain(v) for v in row] for row in written] == rows
