"""Rate limits on MCP tool calls: ``mcp_rpm`` at every level (key, user, team, org).

Tool calls are counted in their own buckets (``key:ID:mcp``, ``team:ID:mcp`` ...) through the
same limiter as model requests (memory or Redis), so a burst of tool calls never eats the
model ``rpm`` and the reverse. A refused call counts nothing.
"""

from __future__ import annotations

from dataclasses import replace

from sluice.auth.principal import Principal
from sluice.limits.base import Limiter
from sluice.limits.errors import LimitExceeded

MCP_LIMIT = "mcp_rpm"


async def admit_call(limiter: Limiter, principal: Principal) -> None:
    """Count one tool call against every ``mcp_rpm`` of ``principal``.

    Raises :class:`~sluice.limits.errors.LimitExceeded` (the gateway's 429
    ``rate_limit_exceeded``, ``policy_rate_limited``, with ``retry_after_s`` and a
    ``retry-after-ms`` header) naming each exhausted ``mcp_rpm``; then nothing was counted.
    A principal without such limits costs no limiter call.
    """
    checks = principal.mcp_limit_checks
    if not checks:
        return
    try:
        reservation = await limiter.reserve(checks, input_estimate=0, output_estimate=0)
    except LimitExceeded as exc:
        renamed = tuple(replace(item, limit=MCP_LIMIT) for item in exc.exceeded)
        raise LimitExceeded(renamed, exc.rate_status) from None
    # The call is counted in the minute window; nothing else (no tokens, no slot) is held.
    await limiter.release(reservation)
