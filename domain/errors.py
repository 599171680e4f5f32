"""The typed error tree. Each error carries its protocol code, never an HTTP status.

Message-level errors (GatewayError) end the whole request with a signed rejection.
Payment-level problems (PaymentRejected) reject one payment of a batch and leave the others alone.
"""
from __future__ import annotations

from domain.codes import ReasonCode, ResultCode


class GatewayError(Exception):
    """A request the gateway refuses as a whole; `code` is its protocol result code."""

    code: ResultCode = ResultCode.INTERNAL

    def __init__(self, detail: str, *, code: ResultCode | None = None):
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class XmlRejected(GatewayError):
    """The bytes are not acceptable XML (malformed, forbidden construct, encoding, size, schema)."""

    code = ResultCode.XML_MALFORMED


class SignatureRejected(GatewayError):
    """Signature missing, invalid or using a forbidden algorithm."""

    code = ResultCode.SIG_INVALID


class CertificateRejected(GatewayError):
    """The signing certificate is unknown, expired, not yet valid or revoked."""

    code = ResultCode.CERT_UNKNOWN


class FreshnessRejected(GatewayError):
    """Replayed MessageId or a Created timestamp outside the window."""

    code = ResultCode.REPLAY


class PermissionDenied(GatewayError):
    code = ResultCode.PERMISSION_DENIED


class NotFound(GatewayError):
    code = ResultCode.NOT_FOUND


class UnsupportedVersion(GatewayError):
    code = ResultCode.UNSUPPORTED_VERSION


class UnsupportedFormat(GatewayError):
    code = ResultCode.UNSUPPORTED_FORMAT


class PaymentRejected(Exception):
    """One payment is refused with a per-payment reason code; its siblings are unaffected."""

    def __init__(self, reason: ReasonCode, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
