"""SAP: payment files of the Payment Medium Workbench (DMEE/DMEEX tree CGI_XML_CT), pain.001.001.03 and
the CGI-MP pain.001.001.09. Status reports and statements for SAP BCM and FEB come from the iso20022
adapter (pain.002.001.03/.10, camt.053.001.02/.08, camt.052.001.08)."""
from adapters.base import Adapter, Limits
from adapters.iso20022.pain001 import make_reader

LIMITS = Limits(max_transactions=10_000, amount_unit="major", encodings=("utf-8",))

ADAPTER = Adapter(
    name="sap",
    description="SAP PMW/DMEE ISO 20022 credit transfers (CGI_XML_CT): pain.001.001.03 and .09",
    payment_readers={
        "sap.pain.001.001.03": make_reader("sap", "pain.001.001.03", LIMITS),
        "sap.pain.001.001.09": make_reader("sap", "pain.001.001.09", LIMITS),
    },
    limits=LIMITS,
)
