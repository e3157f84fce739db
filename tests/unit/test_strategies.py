"""Deployment order per strategy: priority groups first, then the strategy within each."""

from __future__ import annotations

import random
from collections import Counter
from typing import cast

import pytest

from sluice.clock import FakeClock
from sluice.config.model import Strategy
from sluice.config.providers import Timeouts
from sluice.providers.base import Provider
from sluice.routing.health import DeploymentStats
from sluice.routing.strategies import order
from sluice.routing.table import Deployment

DRAWS = 20_000
TOLERANCE = 0.02


def dep(key: str, *, weight: float = 1.0, priority: int = 0, cost: float = 0.0) -> Deployment:
    return Deployment(
        key=key,
        provider_name="p",
        provider=cast(Provider, None),
        upstream_model=key,
        weight=weight,
        priority=priority,
        timeouts=Timeouts(),
        output_usd_per_mtok=cost,
    )


def keys(deps: list[Deployment]) -> list[str]:
    return [d.key for d in deps]


def by_cost(d: Deployment) -> float:
    return d.output_usd_per_mtok


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def stats(clock: FakeClock) -> DeploymentStats:
    return DeploymentStats(clock)


def run(
    deps: list[Deployment], strategy: Strategy, stats: DeploymentStats, seed: int = 7
) -> list[str]:
    return keys(order(deps, strategy, stats=stats, rng=random.Random(seed), cost=by_cost))


def first_shares(
    deps: list[Deployment], strategy: Strategy, stats: DeploymentStats
) -> dict[str, float]:
    rng = random.Random(42)
    firsts = Counter(
        order(deps, strategy, stats=stats, rng=rng, cost=by_cost)[0].key for _ in range(DRAWS)
    )
    return {k: n / DRAWS for k, n in firsts.items()}


STRATEGIES: list[Strategy] = ["priority", "weighted", "least_busy", "lowest_latency", "lowest_cost"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_one_deployment_is_returned_without_drawing(
    strategy: Strategy, stats: DeploymentStats
) -> None:
    only = dep("a")
    rng = random.Random(1)
    before = rng.getstate()
    assert order([only], strategy, stats=stats, rng=rng, cost=by_cost) == [only]
    assert rng.getstate() == before
    assert order([], strategy, stats=stats, rng=rng) == []


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_keeps_priority_groups_and_returns_everything(
    strategy: Strategy, stats: DeploymentStats
) -> None:
    deps = [
        dep("backup", priority=1, weight=100, cost=0),
        dep("a", cost=5),
        dep("b", weight=3, cost=1),
        dep("last", priority=2),
        dep("c", cost=2),
    ]
    for seed in range(50):
        got = run(deps, strategy, stats, seed)
        assert sorted(got) == sorted(keys(deps))
        assert set(got[:3]) == {"a", "b", "c"}
        assert got[3:] == ["backup", "last"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_same_seed_gives_the_same_order(strategy: Strategy, stats: DeploymentStats) -> None:
    deps = [dep(k, weight=w) for k, w in (("a", 1), ("b", 2), ("c", 3), ("d", 4))]
    assert run(deps, strategy, stats, seed=3) == run(deps, strategy, stats, seed=3)


def test_priority_keeps_the_configured_order(stats: DeploymentStats) -> None:
    deps = [dep("x", priority=1), dep("b"), dep("a"), dep("y", priority=1), dep("c")]
    assert run(deps, "priority", stats) == ["b", "a", "c", "x", "y"]


def test_weighted_first_choice_follows_the_weights(stats: DeploymentStats) -> None:
    deps = [dep("a", weight=1), dep("b", weight=2), dep("c", weight=7)]
    shares = first_shares(deps, "weighted", stats)
    assert shares["a"] == pytest.approx(0.1, abs=TOLERANCE)
    assert shares["b"] == pytest.approx(0.2, abs=TOLERANCE)
    assert shares["c"] == pytest.approx(0.7, abs=TOLERANCE)


def test_weighted_is_sampling_without_replacement(stats: DeploymentStats) -> None:
    deps = [dep("a", weight=1), dep("b", weight=2), dep("c", weight=7)]
    rng = random.Random(5)
    orders = Counter(
        tuple(keys(order(deps, "weighted", stats=stats, rng=rng))) for _ in range(DRAWS)
    )
    # P(c, b, a) = 0.7 * 2/3; P(b, a, c) = 0.2 * 1/8
    assert orders["c", "b", "a"] / DRAWS == pytest.approx(0.7 * 2 / 3, abs=TOLERANCE)
    assert orders["b", "a", "c"] / DRAWS == pytest.approx(0.2 / 8, abs=TOLERANCE)
    assert len(orders) == 6


def test_least_busy_prefers_fewest_in_flight(stats: DeploymentStats) -> None:
    for key, busy in (("a", 3), ("b", 1), ("c", 2)):
        for _ in range(busy):
            stats.begin(key)
    deps = [dep("a"), dep("b"), dep("c")]
    assert run(deps, "least_busy", stats) == ["b", "c", "a"]
    stats.end("a", ok=True, latency_ms=1)
    stats.end("a", ok=True, latency_ms=1)
    stats.end("a", ok=True, latency_ms=1)
    assert run(deps, "least_busy", stats)[0] == "a"


def test_least_busy_breaks_ties_at_random_by_weight(stats: DeploymentStats) -> None:
    stats.begin("busy")
    deps = [dep("busy"), dep("a"), dep("b", weight=3)]
    shares = first_shares(deps, "least_busy", stats)
    assert "busy" not in shares
    assert shares["a"] == pytest.approx(0.25, abs=TOLERANCE)
    assert shares["b"] == pytest.approx(0.75, abs=TOLERANCE)


def test_lowest_latency_measures_unknown_deployments_first(stats: DeploymentStats) -> None:
    stats.end("slow", ok=True, latency_ms=900)
    stats.end("fast", ok=True, latency_ms=100)
    deps = [dep("slow"), dep("fast"), dep("new")]
    assert run(deps, "lowest_latency", stats) == ["new", "fast", "slow"]

    stats.begin("new")  # its measuring request is out: the others go first meanwhile
    assert run(deps, "lowest_latency", stats) == ["fast", "slow", "new"]


def test_lowest_latency_compares_time_to_first_token_when_all_have_it(
    stats: DeploymentStats,
) -> None:
    stats.end("a", ok=True, latency_ms=5000, ttft_ms=200)
    stats.end("b", ok=True, latency_ms=1000, ttft_ms=400)
    deps = [dep("a"), dep("b")]
    assert run(deps, "lowest_latency", stats) == ["a", "b"]

    stats.end("c", ok=True, latency_ms=3000)  # no stream yet: compare whole latencies
    assert run([*deps, dep("c")], "lowest_latency", stats) == ["b", "c", "a"]


def test_lowest_latency_measures_stale_deployments_again(
    stats: DeploymentStats, clock: FakeClock
) -> None:
    stats.end("once-slow", ok=True, latency_ms=900)
    clock.advance(250)
    stats.end("fast", ok=True, latency_ms=100)
    deps = [dep("fast"), dep("once-slow")]
    assert run(deps, "lowest_latency", stats) == ["fast", "once-slow"]
    clock.advance(60)  # once-slow's only sample is now 310 s old (stale after 300 s)
    assert run(deps, "lowest_latency", stats) == ["once-slow", "fast"]


def test_lowest_cost_orders_by_the_cost_function(stats: DeploymentStats) -> None:
    deps = [dep("pricey", cost=15), dep("cheap", cost=0.6), dep("mid", cost=10)]
    assert run(deps, "lowest_cost", stats) == ["cheap", "mid", "pricey"]


def test_lowest_cost_breaks_ties_by_weight(stats: DeploymentStats) -> None:
    deps = [dep("pricey", cost=9), dep("a", cost=1), dep("b", cost=1, weight=3)]
    shares = first_shares(deps, "lowest_cost", stats)
    assert shares == {
        "a": pytest.approx(0.25, abs=TOLERANCE),
        "b": pytest.approx(0.75, abs=TOLERANCE),
    }


def test_lowest_cost_needs_a_cost_function(stats: DeploymentStats) -> None:
    with pytest.raises(ValueError, match="cost function"):
        order([dep("a"), dep("b")], "lowest_cost", stats=stats, rng=random.Random(1))


def test_the_input_is_not_modified(stats: DeploymentStats) -> None:
    deps = (dep("b", priority=1), dep("a"))
    got = order(deps, "priority", stats=stats, rng=random.Random(1))
    assert keys(got) == ["a", "b"]
    assert keys(list(deps)) == ["b", "a"]
