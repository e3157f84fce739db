"""Rate limits per scope: requests, input and output tokens per minute and per day, and
requests in flight. The pipeline reserves before the upstream call and settles (or
releases) after it, in ``finally``.

Backends: :mod:`sluice.limits.memory` (one process) and :mod:`sluice.limits.redis`
(replicas); only the composition root imports them. Semantics: ``docs/limits-and-budgets.md``.
"""

from sluice.limits.base import (
    Exceeded,
    Limiter,
    Quota,
    RateLimitStatus,
    Reservation,
    WindowHold,
)
from sluice.limits.errors import LimitExceeded
from sluice.limits.spec import LimitSpec, describe_scope, scope_id

__all__ = [
    "Exceeded",
    "LimitExceeded",
    "LimitSpec",
    "Limiter",
    "Quota",
    "RateLimitStatus",
    "Reservation",
    "WindowHold",
    "describe_scope",
    "scope_id",
]
