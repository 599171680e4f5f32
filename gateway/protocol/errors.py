"""THE table: every protocol result code and the HTTP status it travels with (spec section 6).

Domain errors carry codes only; this is the one place that knows HTTP.
"""
from __future__ import annotations

from domain.codes import ResultCode

HTTP_STATUS: dict[ResultCode, int] = {
    ResultCode.OK: 200,
    ResultCode.XML_MALFORMED: 400,
    ResultCode.XML_SCHEMA_INVALID: 400,
    ResultCode.XML_FORBIDDEN_CONSTRUCT: 400,
    ResultCode.XML_ENCODING_INVALID: 400,
    ResultCode.XML_TOO_LARGE: 413,
    ResultCode.UNSUPPORTED_VERSION: 400,
    ResultCode.UNSUPPORTED_FORMAT: 400,
    ResultCode.DOCUMENT_INVALID: 400,
    ResultCode.SIG_MISSING: 401,
    ResultCode.SIG_INVALID: 401,
    ResultCode.SIG_ALGORITHM_FORBIDDEN: 401,
    ResultCode.CERT_UNKNOWN: 401,
    ResultCode.CERT_EXPIRED: 401,
    ResultCode.CERT_NOT_YET_VALID: 401,
    ResultCode.CERT_REVOKED: 401,
    ResultCode.REPLAY: 401,
    ResultCode.TIMESTAMP_OUT_OF_WINDOW: 401,
    ResultCode.PERMISSION_DENIED: 403,
    ResultCode.NOT_FOUND: 404,
    ResultCode.RATE_LIMITED: 429,
    ResultCode.OVERLOADED: 503,
    ResultCode.INTERNAL: 500,
}

# Codes that tell the client to come back later, with a Retry-After header (seconds).
RETRY_AFTER: dict[ResultCode, int] = {ResultCode.RATE_LIMITED: 1, ResultCode.OVERLOADED: 5}


def http_status(code: ResultCode) -> int:
    """The HTTP status for a result code (every code has one; a test asserts it)."""
    return HTTP_STATUS[code]
