"""The typed error tree. Each error carries its protocol code, never an HTTP status.

Message-level errors (DirectLinkError) end the whole request with a signed rejection.
Payment-level problems (PaymentRejected) reject one payment of a batch and leave the others alone.
"""
from __future__ import annotations

from domain.codes import ReasonCode, ResultCode


class DirectLinkError(Exception):
    """The base of the error tree: a refusal with its protocol result code (`code`) and a detail for people.
    Raised anywhere below the server (domain checks, the wire layer, adapters); the server answers it with
    that code (gateway/protocol/errors.py maps the code to an HTTP status)."""

    code: ResultCode = ResultCode.INTERNAL

    def __init__(self, detail: str, *, code: ResultCode | None = None):
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class XmlRejected(DirectLinkError):
    """The bytes are not acceptable XML (malformed, forbidden construct, encoding, size, schema)."""

    code = ResultCode.XML_MALFORMED


class SignatureRejected(DirectLinkError):
    """Signature missing, invalid or using a forbidden algorithm."""

    code = ResultCode.SIG_INVALID


class CertificateRejected(DirectLinkError):
    """The signing certificate is unknown, expired, not yet valid or revoked."""

    code = ResultCode.CERT_UNKNOWN


class FreshnessRejected(DirectLinkError):
    """Replayed MessageId or a Created timestamp outside the window."""

    code = ResultCode.REPLAY


class PermissionDenied(DirectLinkError):
    code = ResultCode.PERMISSION_DENIED


class NotFound(DirectLinkError):
    code = ResultCode.NOT_FOUND


class UnsupportedVersion(DirectLinkError):
    code = ResultCode.UNSUPPORTED_VERSION


class UnsupportedFormat(DirectLinkError):
    code = ResultCode.UNSUPPORTED_FORMAT


class PaymentRejected(Exception):
    """One payment is refused with a per-payment reason code; its siblings are unaffected."""

    def __init__(self, reason: ReasonCode, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
