"""The typed payment record (gateway/payment_record.py) against the table it mirrors, without a database."""
from __future__ import annotations

from gateway.payment_record import COLUMNS, PaymentRecord
from gateway.storage.tables import payments


def test_the_fields_are_the_tables_columns_in_order():
    # from_row reads a row of select(payments) by position: a column added or moved must be added here too.
    assert tuple(payments.c.keys()) == COLUMNS


def test_a_row_read_back_gives_the_values_it_was_inserted_with():
    row = tuple(f"v{i}" for i in range(len(COLUMNS)))   # a row of select(payments): a tuple in column order
    record = PaymentRecord.from_row(row)
    assert (record.id, record.payment_info_id) == ("v0", row[-1])
    assert record.values() == dict(zip(payments.c.keys(), row))
    assert PaymentRecord.from_row(tuple(record.values().values())) == record
