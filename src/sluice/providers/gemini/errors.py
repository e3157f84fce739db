"""Google API errors (``{"error": {"code", "message", "status", "details"}}``) mapped onto the
error tree by HTTP status; a ``RetryInfo`` detail gives the retry delay of a 429."""

from __future__ import annotations

from typing import Any

from sluice.errors import ErrorKind, UpstreamError, upstream_http_error
from sluice.providers.native.io import ErrorMap


def retry_delay(body: Any) -> float | None:
    """``retryDelay`` (e.g. ``"30s"``) of a ``google.rpc.RetryInfo`` detail."""
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


ERRORS = ErrorMap(retry_hint=retry_delay)


def stream_error(error: Any) -> UpstreamError:
    """An ``error`` object sent inside a stream."""
    if isinstance(error, dict):
        message = str(error.get("message") or "the provider reported an error mid-stream")
        code = error.get("code")
        if isinstance(code, int) and code >= 400:
            return upstream_http_error(code, message)
        return UpstreamError(ErrorKind.PROVIDER_STREAM_INTERRUPTED, message)
    return UpstreamError(ErrorKind.PROVIDER_STREAM_INTERRUPTED, str(error))
