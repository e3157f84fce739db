"""Swapping the model table: built whole then adopted; unchanged provider adapters reused;
breakers and latency statistics of the deployments that stay survive; a request that
resolved its entry before the swap keeps it; removed models a policy names are reported."""

from __future__ import annotations

from sluice.clock import FakeClock
from sluice.config import GatewayConfig
from sluice.config.loader import parse_config
from sluice.config.providers import ProviderConfig
from sluice.providers.base import Provider
from sluice.providers.build import build_provider
from sluice.routing.breaker import BreakerConfig, MemoryBreakers
from sluice.routing.health import DeploymentStats
from sluice.routing.live import LiveTable
from sluice.routing.router import Router
from sluice.routing.table import ModelTable

BASE = """
providers:
  one: {type: mock}
  two: {type: mock}
models:
  - name: kept
    aliases: [kept-alias]
    deployments:
      - {provider: one, model: chat, id: a}
      - {provider: two, model: chat, id: b}
  - name: dropped
    deployments: [{provider: one, model: chat, id: c}]
"""
NEXT = """
providers:
  one: {type: mock}
  two: {type: mock, timeouts: {total_s: 5}}
models:
  - name: kept
    aliases: [kept-alias]
    deployments:
      - {provider: one, model: chat, id: a, weight: 5}
      - {provider: two, model: chat, id: b}
  - name: added
    deployments: [{provider: one, model: chat, id: d}]
"""


def _live(config: GatewayConfig, clock: FakeClock, built: list[str]) -> LiveTable:
    def build(name: str, cfg: ProviderConfig) -> Provider:
        built.append(name)
        return build_provider(name, cfg)

    providers = {name: build(name, cfg) for name, cfg in config.providers.items()}
    table = ModelTable.build(config, providers, created=0)
    router = Router(
        table,
        stats=DeploymentStats(clock),
        breakers=MemoryBreakers(clock, BreakerConfig(failures=1)),
        config=config.routing,
        clock=clock,
        gateway=config,
    )
    return LiveTable(
        table,
        router,
        config=config,
        providers=providers,
        build_provider=build,
        known_window=lambda provider, model: None,
        now=clock.now,
        policy_text=lambda: (
            'forbid(principal, action, resource) when { context.model == "dropped" };'
        ),
    )


async def test_a_swap_keeps_state_of_deployments_that_stay() -> None:
    clock = FakeClock()
    built: list[str] = []
    live = _live(parse_config(BASE, source="base.yaml"), clock, built)
    table, router = live.table, live.router
    await router.breakers.record("a", ok=False)  # opens (failures=1)
    router.stats.begin("b")
    router.stats.end("b", ok=True, latency_ms=120.0)
    in_flight = table.resolve("dropped")
    provider_one = live.providers["one"]
    assert built == ["one", "two"]

    report = live.apply(parse_config(NEXT, source="next.yaml"))

    assert report.added == ("added",) and report.removed == ("dropped",)
    assert report.changed == ("kept",)
    assert report.deployments_kept == ("a", "b")
    assert report.policy_mentions == ("dropped",)
    assert built == ["one", "two", "two"]  # only the changed provider was rebuilt
    assert live.providers["one"] is provider_one
    assert table.get("dropped") is None and table.get("added") is not None
    kept = table.resolve("kept-alias")
    assert [d.weight for d in kept.deployments] == [5.0, 1.0]
    assert kept.deployments[1].timeouts.total_s == 5
    assert not router.available(kept.deployments[0])  # the open breaker survived
    assert router.stats.snapshot("b").latency_ewma_ms == 120.0
    # the request that resolved before the swap still holds its deployment and provider
    assert in_flight.deployments[0].key == "c"
    assert in_flight.deployments[0].provider is provider_one
    assert table.everything == frozenset({"kept", "added"})


def test_prepare_builds_without_serving() -> None:
    clock = FakeClock()
    live = _live(parse_config(BASE, source="base.yaml"), clock, [])
    candidate, _ = live.prepare(parse_config(NEXT, source="next.yaml"))
    assert candidate.get("added") is not None
    assert live.table.get("added") is None and live.table.get("dropped") is not None
