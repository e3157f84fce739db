"""Breaker alerts: a deployment's circuit breaker left ``closed`` (opened), and came back.

The watch polls the router's breakers (in memory: the memory backend's own state, or the
Redis backend's local copy of the shared state), so it costs no I/O until something changes.
An incident is one alert however many replicas see it and however often the breaker
re-opens after a failed probe: a replica records ``breaker_open`` only when the
deployment's newest breaker alert is not an unresolved ``breaker_open`` already, and the
unique ``dedupe_key`` (deployment and the cool-down's end, which every replica reads from
Redis) settles replicas that see the same transition at the same moment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sluice.alerts.model import Alert, AlertRepository
from sluice.alerts.payload import iso
from sluice.clock import Clock
from sluice.routing.breaker import BreakerState


@dataclass(frozen=True, slots=True)
class WatchedDeployment:
    key: str
    model: str
    """The public model name it serves."""
    provider: str
    """The provider's name in the config."""
    upstream_model: str


class BreakerWatch:
    def __init__(
        self,
        repo: AlertRepository,
        state: Callable[[str], BreakerState],
        deployments: Sequence[WatchedDeployment],
        *,
        clock: Clock,
        resolved: bool = True,
    ) -> None:
        self._repo = repo
        self._state = state
        unique: dict[str, WatchedDeployment] = {}
        for dep in deployments:
            unique.setdefault(dep.key, dep)  # a deployment may serve several models
        self._deployments = list(unique.values())
        self._clock = clock
        self._resolved = resolved
        self._tripped: dict[str, bool] = {}
        """Deployment key → whether its breaker was not closed when last looked at."""

    async def check(self) -> list[Alert]:
        """Look at every breaker once; the alerts this call recorded, to be delivered."""
        fired: list[Alert] = []
        for dep in self._deployments:
            state = self._state(dep.key)
            tripped = state.state != "closed"
            was = self._tripped.get(dep.key, False)
            self._tripped[dep.key] = tripped
            alert: Alert | None = None
            if tripped and not was:
                alert = await self._opened(dep, state)
            elif was and not tripped and self._resolved:
                alert = await self._closed(dep)
            if alert is not None:
                fired.append(alert)
        return fired

    async def _opened(self, dep: WatchedDeployment, state: BreakerState) -> Alert | None:
        latest = await self._repo.latest_breaker(dep.key)
        if latest is not None and latest.kind == "breaker_open":
            return None  # this incident is recorded (by another replica, or before a restart)
        now = self._clock.now()
        # The cool-down's end is the same on every replica sharing breakers through Redis.
        mark = round((state.retry_at if state.retry_at is not None else now) * 1000)
        until = f"; new requests go elsewhere until {iso(state.retry_at)}" if state.retry_at else ""
        return await self._repo.insert_if_absent(
            Alert(
                kind="breaker_open",
                dedupe_key=f"breaker_open:{dep.key}:{mark}",
                message=(
                    f"circuit breaker opened for deployment {dep.key} of model {dep.model} "
                    f"after {state.consecutive_failures} consecutive failures{until}"
                ),
                created_at=now,
                deployment=dep.key,
                details=_details(
                    dep,
                    state=state.state,
                    retry_at=state.retry_at,
                    consecutive_failures=state.consecutive_failures,
                ),
            )
        )

    async def _closed(self, dep: WatchedDeployment) -> Alert | None:
        latest = await self._repo.latest_breaker(dep.key)
        if latest is None or latest.kind != "breaker_open" or latest.id is None:
            return None
        now = self._clock.now()
        return await self._repo.insert_if_absent(
            Alert(
                kind="breaker_resolved",
                dedupe_key=f"breaker_resolved:{latest.id}",
                message=(
                    f"circuit breaker closed again for deployment {dep.key} of model "
                    f"{dep.model} after {round(now - latest.created_at)} s"
                ),
                created_at=now,
                deployment=dep.key,
                details=_details(
                    dep, opened_alert_id=latest.id, open_s=round(now - latest.created_at, 3)
                ),
            )
        )


def _details(dep: WatchedDeployment, **extra: object) -> dict[str, object]:
    """An alert's structured fields: the deployment's identity, then ``extra``."""
    return {
        "model": dep.model,
        "provider": dep.provider,
        "upstream_model": dep.upstream_model,
        **extra,
    }
