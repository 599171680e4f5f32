"""Yonyou (用友 YonBIP/YonSuite 现金管理, NC, U8) adapter: 银企联 batch payments, statuses and 交易明细.

The adapter is a declared mapping (yonyou.toml, read by adapters.declared), the same kind an integrator
adds with `directlink adapters add`: the field table lives in one place, readable without Python, and
this adapter proves the declared formats can carry a real ERP. docs/yonyou.md has the fields, the
codes and the public sources of Yonyou's names.

Formats
    yonyou.json             reads   a batch payment (11B10P request_body) as JSON
    yonyou.xml              reads   the same batch in NC's <ufinterface> XML envelope
    yonyou.status.json      writes  payment statuses (40B10 records) for PaymentStatusQuery Format
    yonyou.statement.json   writes  a statement page (40T22 交易明细 records), and reads it back
"""
from pathlib import Path

from adapters.declared import load

DECLARED = load(Path(__file__).with_name("yonyou.toml"))
ADAPTER = DECLARED.adapter

# Hooks for adapters.kit: writers to round-trip the payment readers, readers to check the statement writer.
PAYMENT_WRITERS = DECLARED.payment_writers
STATEMENT_READERS = ADAPTER.statement_readers
