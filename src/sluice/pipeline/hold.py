"""Stage 2, limits and budget hold: reserve before the call, settle (or release) after.

A request whose principal has rate limits or budgets holds their estimates (its prompt
estimate and the output it may ask for, at the first deployment's prices) from before the
first attempt until it ends. It settles once, with the actual usage and cost: before the
answer's last bytes leave when the relay reaches them (:meth:`Hold.settle`, so a sequential
client's next request finds its slot free), else when the request is over
(:meth:`Hold.close`, on every path). A request that never reached an upstream releases
what it held instead.
"""

from __future__ import annotations

from sluice.budgets.base import BudgetReservation
from sluice.budgets.errors import BudgetExceeded
from sluice.limits.base import Reservation
from sluice.pipeline import bounds, cost
from sluice.pipeline.context import RequestContext
from sluice.pipeline.outcome import Outcome
from sluice.pipeline.services import Services
from sluice.pipeline.sink import Headers
from sluice.tokens import estimate_prompt, estimate_text
from sluice.types import Usage


class Hold:
    """What one request holds of its limits and budgets, until it settles or releases."""

    __slots__ = ("_budget", "_limits", "_svc", "headers")

    def __init__(self, svc: Services) -> None:
        self._svc = svc
        self._limits: Reservation | None = None
        self._budget: BudgetReservation | None = None
        self.headers: Headers = []
        """The rate-limit headers of a successful answer (``x-ratelimit-*``)."""

    async def settle(self, usage: Usage, cost_micros: int) -> None:
        """The answer's usage and cost are final (its last bytes are about to leave):
        settle now. Later calls, and :meth:`close`, do nothing."""
        budget, limits = self._budget, self._limits
        self._budget = self._limits = None
        if budget is not None:
            await self._svc.budgets.settle(budget, cost_micros)
        if limits is not None:
            await self._svc.limiter.settle(
                limits, input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens
            )

    async def close(self, outcome: Outcome) -> None:
        """The request is over: settle what it still holds when an upstream was called (it
        may have billed tokens, e.g. a stream cut after its prompt was read), else release."""
        if outcome.attempts:
            await self.settle(outcome.usage or _NONE, outcome.cost_micros or 0)
            return
        await self.release()

    async def release(self, *, refund_request: bool = False) -> None:
        """Nothing was spent upstream: give back the budget and the token estimates; the
        request still counts toward request limits unless ``refund_request``. Later calls,
        and :meth:`close`, do nothing."""
        budget, limits = self._budget, self._limits
        self._budget = self._limits = None
        if budget is not None:
            await self._svc.budgets.release(budget)
        if limits is not None:
            await self._svc.limiter.release(limits, refund_request=refund_request)


async def reserve(
    svc: Services, ctx: RequestContext, *, extra_prompt_chars: int = 0
) -> Hold | None:
    """Hold the request's estimates in every limit and budget of its principal (``None``
    when it has none). Raises 429 ``rate_limit_exceeded`` or ``budget_exceeded`` naming
    what has no room; a refused request holds and consumes nothing. ``extra_prompt_chars``:
    text the request turns into beyond its body's (its documents' extracted text)."""
    principal, req, entry = ctx.arrival.principal, ctx.request, ctx.entry
    checks = principal.checks_for(entry.name)
    budget_checks = principal.budget_checks
    if not checks and not budget_checks:
        return None
    hold = Hold(svc)
    media = req.reserve  # a media request: its estimate in the unit its provider bills
    if media is None:
        prompt_estimate = estimate_prompt(req.body) + estimate_text(extra_prompt_chars)
        output = bounds.output_reserve(req)  # every choice's output
    else:
        prompt_estimate, output = media.prompt_tokens, media.completion_tokens
    if checks:
        hold._limits = held = await svc.limiter.reserve(
            checks, input_estimate=prompt_estimate, output_estimate=output
        )
        hold.headers = [(k.encode(), v.encode()) for k, v in held.status.headers().items()]
    if budget_checks:
        prices = svc.prices.get(entry.name)
        estimate = (
            cost.estimate(
                svc.pricer,
                entry.deployments[0],
                prices,
                prompt_tokens=prompt_estimate,
                max_tokens=output,
            )
            if media is None
            else cost.cost(svc.pricer, entry.deployments[0], prices, media)
        )
        try:
            hold._budget = await svc.budgets.reserve(budget_checks, estimate)
        except BudgetExceeded:
            limits, hold._limits = hold._limits, None
            if limits is not None:
                await svc.limiter.release(limits, refund_request=True)  # consumed nothing
            raise
    return hold


_NONE = Usage()
