"""The one place a request's money is computed: what a hold reserves before the call, and
what the answer cost after it (at the prices of the deployment that served it)."""

from __future__ import annotations

from sluice.budgets.pricing import Pricer
from sluice.config.model import Prices
from sluice.routing.table import Deployment
from sluice.types import Usage


def estimate(
    pricer: Pricer,
    dep: Deployment,
    prices: Prices | None,
    *,
    prompt_tokens: int,
    max_tokens: int,
) -> int:
    """Micro-dollars to reserve: the prompt estimate plus ``max_tokens`` of output (every
    choice's) at ``dep``'s prices (``prices``: the model's override from the config)."""
    return pricer.estimate(
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        provider=dep.provider_type or dep.provider_name,
        model=dep.upstream_model,
        prices=prices,
    ).micros


def cost(pricer: Pricer, dep: Deployment, prices: Prices | None, usage: Usage | None) -> int:
    """Micro-dollars that ``usage`` cost at ``dep`` (``None``: nothing counted, priced as
    zero tokens)."""
    return pricer.cost(
        usage or _NONE,
        provider=dep.provider_type or dep.provider_name,
        model=dep.upstream_model,
        prices=prices,
    ).micros


_NONE = Usage()
