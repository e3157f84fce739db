"""Anthropic's errors mapped onto the error tree.

HTTP answers map by status (the gateway-wide table already sends 529 ``overloaded_error`` to
``provider_unavailable``). An ``error`` event inside a stream carries no status, only the
error ``type``; it maps through the status Anthropic documents for that type.
"""

from __future__ import annotations

from typing import Any

from sluice.errors import ErrorKind, UpstreamError, upstream_http_error
from sluice.providers.native.io import ErrorMap

ERRORS = ErrorMap()

STATUS_OF_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def stream_error(error: Any) -> UpstreamError:
    """The error an ``error`` event stands for."""
    if not isinstance(error, dict):
        return UpstreamError(
            ErrorKind.PROVIDER_STREAM_INTERRUPTED, "the provider reported an error mid-stream"
        )
    message = str(error.get("message") or "the provider reported an error mid-stream")
    status = STATUS_OF_TYPE.get(str(error.get("type")))
    if status is None:
        return UpstreamError(ErrorKind.PROVIDER_STREAM_INTERRUPTED, message)
    return upstream_http_error(status, message)
