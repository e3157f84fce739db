"""``GET /v1/usage``: the calling key's usage this period, its budgets and its rate limits.

Key-authenticated and cheap: budgets come from the budget store, rate limits from the
limiter (neither touches the database), and requests/tokens per level from the daily
rollups, cached for a few seconds per scope. Writes no usage row (like ``/v1/models``).
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, cast, get_args
from urllib.parse import parse_qs

from sluice.analytics.base import AnalyticsStore
from sluice.analytics.model import Narrow, RollupQuery, Visibility
from sluice.api.dataplane import new_request_id
from sluice.api.render import Receive, Scope, Send, answer_json
from sluice.auth.principal import Principal
from sluice.budgets.base import BudgetStore
from sluice.budgets.spec import Period, period_bounds
from sluice.clock import Clock
from sluice.errors import BadRequest
from sluice.limits.base import Limiter
from sluice.limits.spec import PARALLEL, LimitSpec
from sluice.usage.rollup import DAY_S, Sums

CACHE_TTL_S = 5.0
MAX_CACHED = 10_000
LEVELS = ("key", "user", "team", "org")
_REQUEST_LIMITS = ("rpm", "rpd")
_FAR = 2**62


def _iso(ts: int | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class UsageRoute:
    def __init__(
        self,
        authenticate: Any,
        *,
        limiter: Limiter,
        budgets: BudgetStore,
        store: AnalyticsStore,
        clock: Clock,
    ) -> None:
        """``authenticate``: scope → (principal, length), the data plane's."""
        self._authenticate = authenticate
        self._limiter = limiter
        self._budgets = budgets
        self._store = store
        self._clock = clock
        self._cache: dict[tuple[str, int], tuple[float, Sums]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        base = [(b"x-request-id", new_request_id().encode())]

        async def produce() -> object:
            principal, _ = self._authenticate(scope)
            return await self.report(principal, self._period(scope, principal))

        await answer_json(send, base, produce)

    def _period(self, scope: Scope, principal: Principal) -> Period:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        asked = query.get("period", [None])[-1]
        if asked is not None:
            if asked not in get_args(Period):
                raise BadRequest("period must be day, week, month or total", param="period")
            return cast(Period, asked)
        # The key's own budget period, else the first budget's, else the calendar month.
        for _, spec in principal.budget_checks:
            return spec.period
        return "month"

    async def report(self, principal: Principal, period: Period) -> dict[str, Any]:
        now = self._clock.now()
        start, end = period_bounds(period, now)
        ids = {
            "key": principal.key_id,
            "user": principal.user_id,
            "team": principal.team_id,
            "org": principal.org_id,
        }
        budgets = {scope: spec for scope, spec in principal.budget_checks}
        levels = []
        for level in LEVELS:
            ident = ids[level]
            if ident is None:
                continue
            sums = await self._sums(level, ident, start, end)
            levels.append(
                {
                    "level": level,
                    "id": ident,
                    "requests": sums.requests,
                    "input_tokens": sums.prompt_tokens,
                    "output_tokens": sums.completion_tokens,
                    "cached_tokens": sums.cached_tokens,
                    "cost_usd": sums.cost_micros / 1e6,
                }
            )
        return {
            "object": "usage",
            "key_id": principal.key_id,
            "period": {"name": period, "start": _iso(start), "end": _iso(end)},
            "usage": levels,
            "budgets": [await self._budget(scope, spec, now) for scope, spec in budgets.items()],
            "limits": await self._limits(principal),
        }

    async def _sums(self, level: str, ident: str, start: int, end: int | None) -> Sums:
        key = (f"{level}:{ident}", start)
        mono = self._clock.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > mono:
            return hit[1]
        rows = await self._store.rollups(
            RollupQuery(
                DAY_S,
                start,
                end if end is not None else _FAR,
                Visibility(everything=True),
                Narrow(**{f"{level}_id": ident}),
            )
        )
        sums = rows[0].sums if rows else Sums()
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[key] = (mono + CACHE_TTL_S, sums)
        return sums

    async def _budget(self, scope: str, spec: Any, now: float) -> dict[str, Any]:
        start, end = period_bounds(spec.period, now)
        spent = await self._budgets.spent(scope, spec)
        remaining = max(0, spec.limit_micros - spent)
        return {
            "scope": scope,
            "level": scope.partition(":")[0],
            "period": spec.period,
            "start": _iso(start),
            "end": _iso(end),
            "limit_usd": spec.limit_micros / 1e6,
            "spent_usd": spent / 1e6,
            "remaining_usd": remaining / 1e6,
            "limit_micros": spec.limit_micros,
            "spent_micros": spent,
            "remaining_micros": remaining,
        }

    async def _limits(self, principal: Principal) -> list[dict[str, Any]]:
        """Each configured limit alone, so every one reports its own remaining: the limits
        every request reserves against (``model: null``), then those of one model."""
        checks: list[tuple[str | None, str, LimitSpec]] = [
            (None, scope, spec) for scope, spec in principal.limit_checks
        ]
        for name, extra in sorted(principal.model_limits.items()):
            checks.extend((name, scope, spec) for scope, spec in extra)
        out = []
        for model, scope, spec in checks:
            for f in fields(LimitSpec):
                value = getattr(spec, f.name)
                if value is not None:
                    out.append(await self._limit(scope, model, f.name, value))
        return out

    async def _limit(self, scope: str, model: str | None, name: str, value: int) -> dict[str, Any]:
        status = await self._limiter.remaining([(scope, LimitSpec(**{name: value}))])
        if name == PARALLEL:
            quota = status.slots
        else:
            quota = status.requests if name in _REQUEST_LIMITS else status.tokens
        entry: dict[str, Any] = {
            "scope": scope,
            "level": scope.partition(":")[0],
            "model": model,
            "name": name,
            "limit": value,
            "remaining": None if quota is None else quota.remaining,
            # In-flight slots have no window: when one frees is not known.
            "reset_ms": None if quota is None or name == PARALLEL else quota.reset_ms,
        }
        if name == PARALLEL and quota is not None:
            entry["in_flight"] = value - quota.remaining
        return entry
