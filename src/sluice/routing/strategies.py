"""The order in which a model's deployments are tried, per the model's ``strategy``.

:func:`order` returns every deployment: the first is the choice, the rest the fallback order
within the model. Deployments are grouped by ``priority`` (lower first) and ordered within a
group by the strategy. Breakers are not consulted here: the relay asks
:meth:`~sluice.routing.breaker.Breakers.available` for each deployment as it comes to it, so
a half-open breaker's probe is claimed only by a request that actually sends it.

Ties are broken by a weighted random draw (uniform when weights are equal). Everything
random comes from the injected ``rng``; the same seed, stats and input give the same order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from sluice.config.model import Strategy
from sluice.routing.health import DeploymentStats
from sluice.routing.table import Deployment

_INF = math.inf


def _race(weight: float, rng: random.Random) -> float:
    """A weighted draw: sorting by it ascending is weighted sampling without replacement.

    Each deployment's arrival time in a race of exponential clocks with rate ``weight``;
    the first to arrive wins with probability ``weight / sum(weights)``, and so on for the
    rest (Efraimidis and Spirakis). Weight 0 never arrives: such deployments go last.
    """
    if weight <= 0:
        return _INF
    return -math.log(1.0 - rng.random()) / weight


def _sorted_by_priority(deployments: Sequence[Deployment]) -> list[Deployment]:
    previous = deployments[0].priority
    for dep in deployments:
        if dep.priority < previous:
            return sorted(deployments, key=lambda d: d.priority)
        previous = dep.priority
    return list(deployments)  # the model table keeps them sorted: no sort on the hot path


def _latency_keys(
    group: Sequence[Deployment], stats: DeploymentStats, rng: random.Random
) -> list[tuple[float, ...]]:
    """``lowest_latency`` sort keys: (tier, average, tie-break).

    Tier 0: no data (never measured, or stale) and nothing in flight — tried first, so it
    gets one measuring request. Tier 1: measured, by average. Tier 2: no data but a request
    already out measuring it. The average compared is the time to first token when every
    measured member of the group has one (streams), else the whole latency.
    """
    ewmas = [stats.ewma(d.key) for d in group]
    use_ttft = all(ttft is not None for ttft, latency in ewmas if latency is not None)
    keys: list[tuple[float, ...]] = []
    for dep, (ttft, latency) in zip(group, ewmas, strict=True):
        value = ttft if use_ttft else latency
        if value is not None:
            keys.append((1, value, _race(dep.weight, rng)))
        else:
            tier = 0 if stats.in_flight(dep.key) == 0 else 2
            keys.append((tier, 0.0, _race(dep.weight, rng)))
    return keys


def _order_group(
    group: list[Deployment],
    strategy: Strategy,
    *,
    stats: DeploymentStats,
    rng: random.Random,
    cost: Callable[[Deployment], float] | None,
) -> list[Deployment]:
    if len(group) == 1 or strategy == "priority":
        return group
    keys: list[tuple[float, ...]]
    if strategy == "weighted":
        keys = [(_race(d.weight, rng),) for d in group]
    elif strategy == "least_busy":
        keys = [(stats.in_flight(d.key), _race(d.weight, rng)) for d in group]
    elif strategy == "lowest_latency":
        keys = _latency_keys(group, stats, rng)
    elif strategy == "lowest_cost":
        if cost is None:
            raise ValueError("the lowest_cost strategy needs a cost function")
        keys = [(cost(d), _race(d.weight, rng)) for d in group]
    else:
        raise ValueError(f"unknown strategy {strategy!r}")
    ranked = sorted(range(len(group)), key=keys.__getitem__)
    return [group[i] for i in ranked]


def order(
    deployments: Sequence[Deployment],
    strategy: Strategy,
    *,
    stats: DeploymentStats,
    rng: random.Random,
    cost: Callable[[Deployment], float] | None = None,
) -> list[Deployment]:
    """Every deployment in the order to try them: by ``priority`` (lower first), then
    within each priority by ``strategy``:

    - ``priority``: as configured.
    - ``weighted``: weighted random without replacement by ``weight``: the first is
      deployment *i* with probability ``weight_i / sum(weights)``, the next likewise among
      the rest.
    - ``least_busy``: fewest requests in flight from this process first.
    - ``lowest_latency``: lowest time-to-first-token average, else lowest latency average;
      deployments without (fresh) data are tried first, one measuring request at a time
      (see :func:`_latency_keys`).
    - ``lowest_cost``: lowest ``cost(deployment)`` first (e.g. USD per million output
      tokens; required for this strategy, called once per deployment per request).

    Ties are broken by a weighted random draw. The result is a new list the caller owns.
    One deployment costs one small list and no random draw.
    """
    if len(deployments) <= 1:
        return list(deployments)
    ranked = _sorted_by_priority(deployments)
    first, last = ranked[0].priority, ranked[-1].priority
    if first == last:
        return _order_group(ranked, strategy, stats=stats, rng=rng, cost=cost)
    if strategy == "priority":
        return ranked
    out: list[Deployment] = []
    start = 0
    for end in range(1, len(ranked) + 1):
        if end == len(ranked) or ranked[end].priority != ranked[start].priority:
            out.extend(_order_group(ranked[start:end], strategy, stats=stats, rng=rng, cost=cost))
            start = end
    return out
