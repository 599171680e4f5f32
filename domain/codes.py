"""The protocol's vocabulary: result codes and payment states (spec section 6).

Business code never writes these as string literals; it names the enum member.
"""
from enum import StrEnum


class ResultCode(StrEnum):
    """Every result code of protocol v1. The HTTP status of each lives in gateway/errors.py only."""

    OK = "OK"
    XML_MALFORMED = "XML_MALFORMED"
    XML_SCHEMA_INVALID = "XML_SCHEMA_INVALID"
    XML_FORBIDDEN_CONSTRUCT = "XML_FORBIDDEN_CONSTRUCT"
    XML_ENCODING_INVALID = "XML_ENCODING_INVALID"
    XML_TOO_LARGE = "XML_TOO_LARGE"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    # Added by this gateway (additive): an ERP file broke its format's rules (official XSD, control sums,
    # duplicate EndToEndIds, currencies); nothing in it was accepted.
    DOCUMENT_INVALID = "DOCUMENT_INVALID"
    SIG_MISSING = "SIG_MISSING"
    SIG_INVALID = "SIG_INVALID"
    SIG_ALGORITHM_FORBIDDEN = "SIG_ALGORITHM_FORBIDDEN"
    CERT_UNKNOWN = "CERT_UNKNOWN"
    CERT_EXPIRED = "CERT_EXPIRED"
    CERT_NOT_YET_VALID = "CERT_NOT_YET_VALID"
    CERT_REVOKED = "CERT_REVOKED"
    REPLAY = "REPLAY"
    TIMESTAMP_OUT_OF_WINDOW = "TIMESTAMP_OUT_OF_WINDOW"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    RATE_LIMITED = "RATE_LIMITED"
    OVERLOADED = "OVERLOADED"
    INTERNAL = "INTERNAL"


class ReasonCode(StrEnum):
    """Per-payment reason codes: the payment is REJECTED, the message itself is OK."""

    DUPLICATE_REFERENCE = "DUPLICATE_REFERENCE"
    LIMIT_SINGLE = "LIMIT_SINGLE"
    LIMIT_DAILY = "LIMIT_DAILY"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    AMOUNT_INVALID = "AMOUNT_INVALID"
    CURRENCY_NOT_ALLOWED = "CURRENCY_NOT_ALLOWED"
    ACCOUNT_INVALID = "ACCOUNT_INVALID"
    BANK_CODE_INVALID = "BANK_CODE_INVALID"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    APPROVAL_BY_MAKER = "APPROVAL_BY_MAKER"
    APPROVAL_DIGEST_MISMATCH = "APPROVAL_DIGEST_MISMATCH"
    NOT_CANCELLABLE = "NOT_CANCELLABLE"
    # Added by this gateway (additive, spec section 0): why a payment ended the way it did.
    APPROVAL_REJECTED = "APPROVAL_REJECTED"    # an approver said REJECT
    CLEARING_FAILED = "CLEARING_FAILED"        # the clearing system refused it (funds released)
    CLEARING_RETURNED = "CLEARING_RETURNED"    # the creditor's bank sent it back after settlement
    CANCELLED_BY_CLIENT = "CANCELLED_BY_CLIENT"  # its maker or an approver cancelled it (PaymentCancel)
    # Fund-flow rules (domain/rules.py): the payment is REJECTED with these, or waits in PENDING_APPROVAL
    # with them as its reason (the rule's configured action decides which).
    RULE_BLOCKED_COUNTERPARTY = "RULE_BLOCKED_COUNTERPARTY"    # payee name or account on a block list
    RULE_PAYEE_NOT_ALLOWED = "RULE_PAYEE_NOT_ALLOWED"          # not a registered counterparty (allow-list)
    RULE_NEW_PAYEE = "RULE_NEW_PAYEE"                          # first payment to this account
    RULE_PAYEE_ACCOUNT_CHANGED = "RULE_PAYEE_ACCOUNT_CHANGED"  # known payee name, another account
    RULE_PROBABLE_DUPLICATE = "RULE_PROBABLE_DUPLICATE"        # same payee and amount under another ClientRef
    RULE_CAP_EXCEEDED = "RULE_CAP_EXCEEDED"                    # over the cap per payee per day
    RULE_VELOCITY_EXCEEDED = "RULE_VELOCITY_EXCEEDED"          # too many / too much within a time window
    RULE_AMOUNT_ANOMALY = "RULE_AMOUNT_ANOMALY"                # far above this payee's usual amount
    RULE_OUTSIDE_WINDOW = "RULE_OUTSIDE_WINDOW"                # outside the business hours of its urgency
    RULE_CASH_FLOOR = "RULE_CASH_FLOOR"                        # would take the account below its floor


class PaymentState(StrEnum):
    PENDING_APPROVAL = "PENDING_APPROVAL"
    ACCEPTED = "ACCEPTED"          # validated, funds held
    PROCESSING = "PROCESSING"      # sent for clearing
    UNKNOWN = "UNKNOWN"            # outcome not known: query, never resend
    SETTLED = "SETTLED"
    RETURNED = "RETURNED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class Grant(StrEnum):
    QUERY = "query"
    PAY = "pay"
    APPROVE = "approve"
