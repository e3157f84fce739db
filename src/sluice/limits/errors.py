"""The 429 a rate-limited request gets: every exceeded limit named, Retry-After, headers."""

from __future__ import annotations

import math

from sluice.errors import ErrorKind, GatewayError
from sluice.limits.base import Exceeded, RateLimitStatus
from sluice.limits.spec import PARALLEL, describe_scope


def _reason(item: Exceeded) -> str:
    head = f"{describe_scope(item.scope)} {item.limit} {item.value}"
    if item.limit == PARALLEL:
        return f"{head} (retry when a request finishes)"
    if item.retry_after_ms is None:
        return f"{head} (this request alone needs {item.needed})"
    return f"{head} (retry in {max(1, math.ceil(item.retry_after_ms / 1000))} s)"


class LimitExceeded(GatewayError):
    """A request did not fit in one or more rate limits; nothing was counted for it.

    ``retry_after_s`` is the time until every exceeded limit would admit it, in whole
    seconds (at least 1), or ``None`` when some limit is smaller than the request itself
    (retrying cannot help). ``headers`` carry ``retry-after-ms`` (the precise wait, which
    the OpenAI SDKs honour) and the ``x-ratelimit-*`` status of the most constrained
    buckets.
    """

    def __init__(self, exceeded: tuple[Exceeded, ...], status: RateLimitStatus) -> None:
        self.exceeded = exceeded
        self.rate_status = status
        waits = [item.retry_after_ms for item in exceeded]
        retry_ms = None if None in waits else max(w for w in waits if w is not None)
        headers = status.headers()
        if retry_ms is not None:
            headers["retry-after-ms"] = str(retry_ms)
        message = "rate limit exceeded: " + "; ".join(_reason(item) for item in exceeded)
        super().__init__(
            ErrorKind.POLICY_RATE_LIMITED,
            message,
            code="rate_limit_exceeded",
            retry_after_s=None if retry_ms is None else float(max(1, math.ceil(retry_ms / 1000))),
            headers=headers,
        )
        self.retry_after_ms = retry_ms
