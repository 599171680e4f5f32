"""ISO 20022 for every ERP: pain.002 status reports and camt.052/053 statements.

The vendor-flavoured pain.001 readers live in adapters/sap and adapters/oracle and share
adapters/iso20022/pain001.py; each format name is claimed by exactly one adapter, so the formats every
ERP reads the same way (SAP BCM and Oracle Payments both take pain.002; both import camt.053) are here.
"""
from adapters.base import Adapter
from adapters.iso20022 import camt, camt_read, pain002

ADAPTER = Adapter(
    name="iso20022",
    description="ISO 20022: pain.002 payment status reports, camt.053 statements, camt.052 intraday reports",
    statement_writers={
        "camt.053.001.02": camt.writer(camt.CAMT053_02),
        "camt.053.001.08": camt.writer(camt.CAMT053_08),
        "camt.052.001.08": camt.writer(camt.CAMT052_08),
    },
    status_writers={
        "pain.002.001.03": pain002.writer(pain002.V03),
        "pain.002.001.10": pain002.writer(pain002.V10),
    },
    statement_readers=dict.fromkeys(("camt.053.001.02", "camt.053.001.08", "camt.052.001.08"),
                                    camt_read.read_camt),
)

# The kit's hook: the statement writers' output must read back balanced (docs/adapters.md section 4).
STATEMENT_READERS = ADAPTER.statement_readers
