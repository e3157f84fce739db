"""The gateway's error tree and its closed vocabulary of error kinds.

Every failure a client can see is a :class:`GatewayError` carrying an :class:`ErrorKind`.
The kind decides the HTTP status, the OpenAI ``type`` and whether a retry may help; it is
also the ``error_kind`` recorded on usage rows and used as a metrics label. Kinds are
grouped by who is at fault::

    caller_*    the request is wrong (4xx, never retried)
    policy_*    the request is refused by a limit, budget or access rule, or because the
                key's owner has not accepted the terms of service
    provider_*  the upstream failed or refused (5xx answers are 502 Bad Gateway, timeouts
                504; never 500, which means a bug in Sluice)
    gateway_*   Sluice itself failed, or cannot serve now (its database is not reachable
                yet: ``gateway_dependency_unavailable``; it is draining after SIGTERM:
                ``gateway_shutting_down``)
    client_*    the client went away
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KindInfo:
    status: int
    openai_type: str
    retriable: bool


class ErrorKind(enum.StrEnum):
    CALLER_BAD_REQUEST = "caller_bad_request"
    CALLER_UNAUTHENTICATED = "caller_unauthenticated"
    CALLER_FORBIDDEN = "caller_forbidden"
    CALLER_NOT_FOUND = "caller_not_found"
    CALLER_METHOD_NOT_ALLOWED = "caller_method_not_allowed"
    CALLER_PAYLOAD_TOO_LARGE = "caller_payload_too_large"
    CALLER_UNSUPPORTED = "caller_unsupported"
    CALLER_CACHE_MISS = "caller_cache_miss"
    POLICY_RATE_LIMITED = "policy_rate_limited"
    POLICY_BUDGET_EXCEEDED = "policy_budget_exceeded"
    POLICY_TERMS_NOT_ACCEPTED = "policy_terms_not_accepted"
    PROVIDER_BAD_REQUEST = "provider_bad_request"
    PROVIDER_AUTH = "provider_auth_error"
    PROVIDER_NOT_FOUND = "provider_not_found"
    PROVIDER_CONTEXT_WINDOW = "provider_context_window_exceeded"
    PROVIDER_CONTENT_POLICY = "provider_content_policy"
    PROVIDER_CONFLICT = "provider_conflict"
    PROVIDER_RATE_LIMITED = "provider_rate_limited"
    PROVIDER_ERROR = "provider_error"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_TIMEOUT = "provider_timeout"
    PROVIDER_UNREACHABLE = "provider_unreachable"
    PROVIDER_BAD_RESPONSE = "provider_bad_response"
    PROVIDER_STREAM_INTERRUPTED = "provider_stream_interrupted"
    GATEWAY_INTERNAL = "gateway_internal"
    GATEWAY_UNAVAILABLE = "gateway_unavailable"
    GATEWAY_DEPENDENCY_UNAVAILABLE = "gateway_dependency_unavailable"
    GATEWAY_SHUTTING_DOWN = "gateway_shutting_down"
    CLIENT_DISCONNECTED = "client_disconnected"

    @property
    def info(self) -> KindInfo:
        return _KINDS[self]


_KINDS: dict[ErrorKind, KindInfo] = {
    ErrorKind.CALLER_BAD_REQUEST: KindInfo(400, "invalid_request_error", False),
    ErrorKind.CALLER_UNAUTHENTICATED: KindInfo(401, "authentication_error", False),
    ErrorKind.CALLER_FORBIDDEN: KindInfo(403, "permission_error", False),
    ErrorKind.CALLER_NOT_FOUND: KindInfo(404, "invalid_request_error", False),
    ErrorKind.CALLER_METHOD_NOT_ALLOWED: KindInfo(405, "invalid_request_error", False),
    ErrorKind.CALLER_PAYLOAD_TOO_LARGE: KindInfo(413, "invalid_request_error", False),
    ErrorKind.CALLER_UNSUPPORTED: KindInfo(400, "invalid_request_error", False),
    # ``Cache-Control: only-if-cached`` and nothing stored: 504, as HTTP caches answer it.
    ErrorKind.CALLER_CACHE_MISS: KindInfo(504, "cache_miss", False),
    ErrorKind.POLICY_RATE_LIMITED: KindInfo(429, "rate_limit_error", False),
    ErrorKind.POLICY_BUDGET_EXCEEDED: KindInfo(429, "budget_exceeded", False),
    ErrorKind.POLICY_TERMS_NOT_ACCEPTED: KindInfo(403, "permission_error", False),
    ErrorKind.PROVIDER_BAD_REQUEST: KindInfo(400, "invalid_request_error", False),
    ErrorKind.PROVIDER_AUTH: KindInfo(502, "api_error", False),
    ErrorKind.PROVIDER_NOT_FOUND: KindInfo(404, "invalid_request_error", False),
    ErrorKind.PROVIDER_CONTEXT_WINDOW: KindInfo(400, "invalid_request_error", False),
    ErrorKind.PROVIDER_CONTENT_POLICY: KindInfo(400, "invalid_request_error", False),
    ErrorKind.PROVIDER_CONFLICT: KindInfo(409, "invalid_request_error", True),
    ErrorKind.PROVIDER_RATE_LIMITED: KindInfo(429, "rate_limit_error", True),
    ErrorKind.PROVIDER_ERROR: KindInfo(502, "api_error", True),
    ErrorKind.PROVIDER_UNAVAILABLE: KindInfo(502, "api_error", True),
    ErrorKind.PROVIDER_TIMEOUT: KindInfo(504, "timeout_error", True),
    ErrorKind.PROVIDER_UNREACHABLE: KindInfo(502, "api_error", True),
    ErrorKind.PROVIDER_BAD_RESPONSE: KindInfo(502, "api_error", True),
    ErrorKind.PROVIDER_STREAM_INTERRUPTED: KindInfo(502, "api_error", False),
    ErrorKind.GATEWAY_INTERNAL: KindInfo(500, "api_error", False),
    ErrorKind.GATEWAY_UNAVAILABLE: KindInfo(503, "api_error", True),
    ErrorKind.GATEWAY_DEPENDENCY_UNAVAILABLE: KindInfo(503, "api_error", True),
    ErrorKind.GATEWAY_SHUTTING_DOWN: KindInfo(503, "api_error", True),
    ErrorKind.CLIENT_DISCONNECTED: KindInfo(499, "client_disconnected", False),
}

# Upstream HTTP status → kind. Statuses not listed map by class (4xx / 5xx).
_UPSTREAM_STATUS: dict[int, ErrorKind] = {
    400: ErrorKind.PROVIDER_BAD_REQUEST,
    401: ErrorKind.PROVIDER_AUTH,
    403: ErrorKind.PROVIDER_AUTH,
    404: ErrorKind.PROVIDER_NOT_FOUND,
    408: ErrorKind.PROVIDER_TIMEOUT,
    409: ErrorKind.PROVIDER_CONFLICT,
    413: ErrorKind.PROVIDER_BAD_REQUEST,
    422: ErrorKind.PROVIDER_BAD_REQUEST,
    429: ErrorKind.PROVIDER_RATE_LIMITED,
    500: ErrorKind.PROVIDER_ERROR,
    502: ErrorKind.PROVIDER_UNAVAILABLE,
    503: ErrorKind.PROVIDER_UNAVAILABLE,
    504: ErrorKind.PROVIDER_TIMEOUT,
    529: ErrorKind.PROVIDER_UNAVAILABLE,
}


def kind_for_upstream_status(status: int) -> ErrorKind:
    """Classify an upstream HTTP error status; by code, never by message text."""
    kind = _UPSTREAM_STATUS.get(status)
    if kind is not None:
        return kind
    return ErrorKind.PROVIDER_BAD_REQUEST if status < 500 else ErrorKind.PROVIDER_ERROR


class GatewayError(Exception):
    """Base of every error a client can see.

    ``status`` defaults to the kind's; upstream 4xx that are the caller's to fix keep the
    provider's own status so the client sees what the provider said. ``upstream_status`` is
    the provider's HTTP status, when it answered one. ``detail`` is for the operator's log
    only, never sent to a client (e.g. the provider's text when it refused our credential).
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        retry_after_s: float | None = None,
        headers: dict[str, str] | None = None,
        upstream_status: int | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.param = param
        self.code = code
        self.status = status if status is not None else kind.info.status
        self.retry_after_s = retry_after_s
        self.headers = headers or {}
        self.upstream_status = upstream_status
        self.detail = detail

    @property
    def retriable(self) -> bool:
        return self.kind.info.retriable

    def to_openai(self) -> dict[str, object]:
        return {
            "error": {
                "message": self.message,
                "type": self.kind.info.openai_type,
                "param": self.param,
                "code": self.code or self.kind.value,
            }
        }


UNAVAILABLE_RETRY_AFTER_S = 2
"""``Retry-After`` of a 503 whose error has no better hint (shutting down, a dependency
away): long enough not to hammer, short enough for a rolling restart."""


def retry_after_value(exc: GatewayError) -> str | None:
    """The ``Retry-After`` header of an error answer, in whole seconds rounded up: the
    error's own hint, else a default for every 503 (a client must know when to come back)."""
    if exc.retry_after_s is not None:
        return str(max(0, math.ceil(exc.retry_after_s)))
    if exc.status == 503:
        return str(UNAVAILABLE_RETRY_AFTER_S)
    return None


DEPENDENCY_RETRY_AFTER_S = 5
"""``Retry-After`` of a 503 ``dependency_unavailable`` (the database is not reachable yet)."""
SHUTDOWN_RETRY_AFTER_S = 1
"""``Retry-After`` of a 503 ``shutting_down``: another replica can take the request now."""


def dependency_unavailable(message: str) -> GatewayError:
    """503 ``dependency_unavailable``: a service the gateway needs (the database) does not
    answer yet; the request was not attempted."""
    return GatewayError(
        ErrorKind.GATEWAY_DEPENDENCY_UNAVAILABLE,
        message,
        code="dependency_unavailable",
        retry_after_s=DEPENDENCY_RETRY_AFTER_S,
    )


def shutting_down(message: str) -> GatewayError:
    """503 ``shutting_down``: the process is draining after SIGTERM. The connection is closed
    after the answer, so the client's retry opens a new one (to another replica)."""
    return GatewayError(
        ErrorKind.GATEWAY_SHUTTING_DOWN,
        message,
        code="shutting_down",
        retry_after_s=SHUTDOWN_RETRY_AFTER_S,
        headers={"Connection": "close"},
    )


TERMS_NOT_ACCEPTED = "terms_not_accepted"


def terms_not_accepted(version: str) -> GatewayError:
    """403 ``terms_not_accepted``: the key's owner has not accepted the current terms of
    service; the message says where to accept them (the Anthropic shape has no ``code``, so
    the message names it too)."""
    return GatewayError(
        ErrorKind.POLICY_TERMS_NOT_ACCEPTED,
        f"terms_not_accepted: the owner of this key has not accepted the terms of service "
        f"(version {version}); sign in to the console (/ui) to read and accept them",
        code=TERMS_NOT_ACCEPTED,
    )


class BadRequest(GatewayError):
    """The caller sent something the gateway cannot accept; ``param`` names the field."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(ErrorKind.CALLER_BAD_REQUEST, message, param=param)


class UpstreamError(GatewayError):
    """The provider failed, refused or could not be reached."""


# A 400 whose structured error ``code`` says why (never the message text).
_UPSTREAM_CODES: dict[str, ErrorKind] = {
    "context_length_exceeded": ErrorKind.PROVIDER_CONTEXT_WINDOW,
    "string_above_max_length": ErrorKind.PROVIDER_CONTEXT_WINDOW,
    "content_filter": ErrorKind.PROVIDER_CONTENT_POLICY,
    "content_policy_violation": ErrorKind.PROVIDER_CONTENT_POLICY,
}


PROVIDER_AUTH_MESSAGE = "the provider rejected the gateway's credential; the operator has been told"


def provider_auth_error(detail: str, *, upstream_status: int | None = None) -> UpstreamError:
    """The provider refused *our* credential: a 502 with a generic message (the provider's
    text may quote key material, so it goes to ``detail``, for the operator's log only)."""
    return UpstreamError(
        ErrorKind.PROVIDER_AUTH,
        PROVIDER_AUTH_MESSAGE,
        upstream_status=upstream_status,
        detail=detail[:500],
    )


def upstream_http_error(
    status: int,
    message: str,
    *,
    retry_after_s: float | None = None,
    code: str | None = None,
    kind: ErrorKind | None = None,
) -> UpstreamError:
    """An error for an upstream HTTP error answer. ``code`` is the provider's structured
    error code, when it sent one; ``kind`` overrides the status table (a provider's own map).

    A 4xx that is the caller's to fix keeps the provider's status and message; everything
    else takes the kind's status (401/403 → 502 ``provider_auth_error``, 5xx → 502)."""
    if kind is None:
        kind = kind_for_upstream_status(status)
        if status == 400 and code in _UPSTREAM_CODES:
            kind = _UPSTREAM_CODES[code]
    if kind is ErrorKind.PROVIDER_AUTH:
        return provider_auth_error(message, upstream_status=status)
    passed = status if 400 <= status < 500 and kind.info.status < 500 else None
    return UpstreamError(
        kind, message, status=passed, retry_after_s=retry_after_s, upstream_status=status
    )
