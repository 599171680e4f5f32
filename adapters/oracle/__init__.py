"""Oracle: payment files of Oracle Payments' seeded ISO 20022 CGI credit-transfer format (BI Publisher
template, pain.001.001.03). Oracle's pain.002 status reports and camt statements come from the iso20022
adapter."""
from adapters.base import Adapter, Limits
from adapters.iso20022.pain001 import make_reader

LIMITS = Limits(max_transactions=10_000, amount_unit="major", encodings=("utf-8",))

ADAPTER = Adapter(
    name="oracle",
    description="Oracle Payments ISO 20022 CGI credit transfers: pain.001.001.03",
    payment_readers={"oracle.pain.001.001.03": make_reader("oracle", "pain.001.001.03", LIMITS)},
    limits=LIMITS,
)
