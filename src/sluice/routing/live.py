"""Swapping the process's model table when the catalogue changes (admin API, another
replica's change, a re-read config file).

The new table is built whole first (its providers too), then adopted in one synchronous
step (:meth:`~sluice.routing.table.ModelTable.adopt`). Provider adapters whose config did
not change are reused. Breakers and latency statistics are keyed by deployment key, so those
of deployments that stay keep their state; a request in flight keeps the deployment it
resolved (and its provider object) until it ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sluice.config import GatewayConfig
from sluice.config.providers import ProviderConfig
from sluice.providers.base import Provider
from sluice.routing.router import Router
from sluice.routing.table import KnownWindow, ModelTable

log = logging.getLogger("sluice")

BuildProvider = Callable[[str, ProviderConfig], Provider]


@dataclass(frozen=True, slots=True)
class SwapReport:
    """What a swap changed, by public model name and deployment key."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    deployments_kept: tuple[str, ...] = ()
    """Deployment keys present before and after (their breakers and statistics stay)."""
    policy_mentions: tuple[str, ...] = ()
    """Removed models that a routing policy file still names (reported, not an error)."""


class LiveTable:
    """Owns the process's provider adapters and swaps the model table in place."""

    def __init__(
        self,
        table: ModelTable,
        router: Router,
        *,
        config: GatewayConfig,
        providers: Mapping[str, Provider],
        build_provider: BuildProvider,
        known_window: KnownWindow,
        now: Callable[[], float],
        policy_text: Callable[[], str] = lambda: "",
    ) -> None:
        self.table = table
        self.router = router
        self.config = config
        """The catalogue now served: the config file's entries and the stored ones."""
        self.providers: dict[str, Provider] = dict(providers)
        self._build = build_provider
        self._known_window = known_window
        self._now = now
        self._policy_text = policy_text

    def prepare(self, config: GatewayConfig) -> tuple[ModelTable, dict[str, Provider]]:
        """Build the table ``config`` describes without serving it (raises what building an
        adapter raises: the caller refuses the change, nothing applied)."""
        providers: dict[str, Provider] = {}
        for name, cfg in config.providers.items():
            old = self.config.providers.get(name)
            reuse = self.providers.get(name) if old == cfg else None
            providers[name] = reuse if reuse is not None else self._build(name, cfg)
        table = ModelTable.build(
            config, providers, created=int(self._now()), known_window=self._known_window
        )
        return table, providers

    def apply(self, config: GatewayConfig) -> SwapReport:
        """Serve ``config``'s models from now on."""
        table, providers = self.prepare(config)
        before = {m.name: m for m in self.config.models}
        after = {m.name: m for m in config.models}
        old_keys = {d.key for e in self.table.entries for d in e.deployments}
        new_keys = {d.key for e in table.entries for d in e.deployments}
        # The swap: no await between these lines.
        self.table.adopt(table)
        self.router.rebind(config)
        self.providers, self.config = providers, config
        removed = tuple(sorted(set(before) - set(after)))
        text = self._policy_text() if removed else ""
        report = SwapReport(
            added=tuple(sorted(set(after) - set(before))),
            removed=removed,
            changed=tuple(sorted(n for n in set(before) & set(after) if before[n] != after[n])),
            deployments_kept=tuple(sorted(old_keys & new_keys)),
            policy_mentions=tuple(n for n in removed if f'"{n}"' in text),
        )
        for name in report.policy_mentions:
            log.warning("routing policies still name the removed model %r", name)
        return report
