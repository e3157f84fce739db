"""Circuit breakers per deployment: the seam, its config and the in-process backend.

A breaker is ``closed`` (requests flow), ``open`` (requests are refused until the cool-down
ends) or ``half_open`` (the cool-down ended: one probe request at a time may go; its
success closes the breaker, its failure opens it again for a fresh cool-down)::

    closed ──(N consecutive failures, or error rate ≥ threshold over the window)──► open
    open ──(cool-down over; the next request is admitted as the probe)──► half_open
    half_open ──(success)──► closed        half_open ──(failure)──► open

The Redis backend (``sluice.routing.breaker_redis``) shares the states between replicas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from sluice.clock import Clock
from sluice.routing.health import WindowCounter

if TYPE_CHECKING:
    from sluice.config.model import BreakerSettings

BreakerStateName = Literal["closed", "open", "half_open"]

PROBE_RETRY_S = 1.0
"""What :meth:`Breakers.retry_at` allows for a deployment whose probe is out (at most): the
probe's answer decides, and usually comes within about a second."""


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """When a deployment's breaker opens and how it recovers."""

    failures: int = 5
    """Consecutive failures that open the breaker (at least 1)."""
    error_rate: float = 0.5
    """Failed share of the requests over ``window_s`` that opens it, in (0, 1]; checked when
    a failure is recorded, once the window holds ``min_requests``."""
    window_s: float = 60.0
    """Length of the error-rate window, kept as 10 buckets of ``window_s / 10``."""
    min_requests: int = 20
    """Requests the window must hold before the error rate counts."""
    cooldown_s: float = 30.0
    """How long an open breaker refuses everything before it admits a probe."""
    probe_lease_s: float = 30.0
    """How long an admitted probe holds the half-open breaker. If no verdict is recorded by
    then (the request outlived it, or its replica died) the next request is admitted as a
    new probe."""

    def __post_init__(self) -> None:
        if self.failures < 1 or self.min_requests < 1:
            raise ValueError("failures and min_requests must be at least 1")
        if not 0 < self.error_rate <= 1:
            raise ValueError("error_rate must be in (0, 1]")
        if min(self.window_s, self.cooldown_s, self.probe_lease_s) <= 0:
            raise ValueError("window_s, cooldown_s and probe_lease_s must be positive")

    @classmethod
    def from_settings(cls, settings: BreakerSettings) -> BreakerConfig:
        """From the YAML's ``routing.breaker`` (which has no ``probe_lease_s``)."""
        return cls(
            failures=settings.failures,
            error_rate=settings.error_rate,
            window_s=settings.window_s,
            min_requests=settings.min_requests,
            cooldown_s=settings.cooldown_s,
        )

    def trips(self, consecutive: int, requests: int, failures: int) -> bool:
        """Whether these counts, after a failure, open a closed breaker."""
        return consecutive >= self.failures or (
            requests >= self.min_requests and failures >= self.error_rate * requests
        )


@dataclass(frozen=True, slots=True)
class BreakerState:
    """One deployment's breaker, for ``GET /health`` and logs."""

    state: BreakerStateName
    retry_at: float | None = None
    """When ``open``: the wall-clock time (epoch seconds) the cool-down ends. Else ``None``."""
    consecutive_failures: int = 0
    requests_in_window: int = 0
    failures_in_window: int = 0
    probe_in_flight: bool = False
    """When ``half_open``: a probe was admitted and has no verdict yet (further requests
    are refused until it has one or its lease ends)."""


CLOSED_STATE = BreakerState("closed")

OnTransition = Callable[[str, BreakerState], None]
"""Called with the deployment key and its new state when a breaker changes state (logs,
metrics). It must not raise or block."""


class Breakers(Protocol):
    """The breakers of every deployment, keyed by deployment key.

    The relay asks :meth:`available` right before sending an attempt to a deployment and
    :meth:`record` the verdict when the attempt ends; when none of a model's deployments is
    available it answers 503 ``no_healthy_deployment`` at once, with ``Retry-After`` from
    :meth:`retry_at`. Unknown keys are closed breakers.
    """

    def available(self, key: str) -> bool:
        """Whether a request may be sent to ``key`` now. Never waits on the network.

        ``True`` on a closed breaker. On a half-open breaker it is ``True`` for one caller,
        whose request becomes the probe (this call claims it: call it only for the
        deployment about to be tried, and then :meth:`record` or :meth:`release`).
        """
        ...

    async def record(self, key: str, *, ok: bool) -> None:
        """The verdict on an attempt sent to ``key``.

        ``ok=False`` only for the deployment's own failures (connect errors, timeouts, 5xx,
        429): a request the provider rightly refused (400, content policy, context too
        long) is ``ok=True`` — the deployment answered. On a closed breaker it counts and
        may open it; on a half-open one the first verdict decides (success closes, failure
        opens with a fresh cool-down), whichever request it came from; on an open one it is
        ignored. Never raises for a store failure (logged; the breaker fails open).
        """
        ...

    async def release(self, key: str) -> None:
        """An attempt admitted by :meth:`available` ended without a verdict (the client went
        away, or the request was stopped before the deployment answered). If it was the
        probe, the next request may probe instead of waiting for the lease to end."""
        ...

    def state(self, key: str) -> BreakerState:
        """The breaker of ``key`` as this process knows it."""
        ...

    def retry_at(self, keys: Iterable[str]) -> float | None:
        """When the soonest of ``keys`` may admit a request, in wall-clock seconds on the
        breakers' clock (``Retry-After`` of a 503 ``no_healthy_deployment`` is this minus
        ``clock.now()``): now if one would admit one now, the end of the cool-down for an
        open one, at most :data:`PROBE_RETRY_S` from now for one whose probe is out;
        ``None`` when ``keys`` is empty."""
        ...


_CLOSED, _OPEN, _HALF = 0, 1, 2


class _Breaker:
    __slots__ = ("consecutive", "state", "until", "window")

    def __init__(self, window_s: float) -> None:
        self.state = _CLOSED
        self.until = 0.0
        """Monotonic: when open, the end of the cool-down; when half-open, of the probe
        lease."""
        self.consecutive = 0
        self.window = WindowCounter(window_s)


class MemoryBreakers:
    """:class:`Breakers` for a single process, on the injected clock's monotonic time.

    ``config`` applies to every deployment not named in ``overrides``. Every method runs
    without awaiting, so coroutines see each transition whole.
    """

    def __init__(
        self,
        clock: Clock,
        config: BreakerConfig | None = None,
        *,
        overrides: Mapping[str, BreakerConfig] | None = None,
        on_transition: OnTransition | None = None,
    ) -> None:
        self._clock = clock
        self._config = config or BreakerConfig()
        self._overrides = dict(overrides or {})
        self._on_transition = on_transition
        self._breakers: dict[str, _Breaker] = {}

    def config(self, key: str) -> BreakerConfig:
        return self._overrides.get(key, self._config)

    def available(self, key: str) -> bool:
        breaker = self._breakers.get(key)
        if breaker is None or breaker.state == _CLOSED:
            return True
        now = self._clock.monotonic()
        if now < breaker.until:
            return False
        breaker.state = _HALF
        breaker.until = now + self.config(key).probe_lease_s
        self._notify(key, breaker, now)
        return True

    async def record(self, key: str, *, ok: bool) -> None:
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = _Breaker(self.config(key).window_s)
        now = self._clock.monotonic()
        if breaker.state == _CLOSED:
            breaker.window.add(now, ok=ok)
            if ok:
                breaker.consecutive = 0
                return
            breaker.consecutive += 1
            config = self.config(key)
            if config.trips(breaker.consecutive, *breaker.window.totals(now)):
                self._open(key, breaker, now, config)
        elif breaker.state == _HALF:
            if ok:
                breaker.state = _CLOSED
                breaker.consecutive = 0
                breaker.window.clear()
                self._notify(key, breaker, now)
            else:
                breaker.consecutive += 1
                self._open(key, breaker, now, self.config(key))

    def _open(self, key: str, breaker: _Breaker, now: float, config: BreakerConfig) -> None:
        breaker.state = _OPEN
        breaker.until = now + config.cooldown_s
        breaker.window.clear()
        self._notify(key, breaker, now)

    def _notify(self, key: str, breaker: _Breaker, now: float) -> None:
        if self._on_transition is not None:
            self._on_transition(key, self._view(breaker, now))

    async def release(self, key: str) -> None:
        breaker = self._breakers.get(key)
        if breaker is not None and breaker.state == _HALF:
            breaker.until = min(breaker.until, self._clock.monotonic())

    def state(self, key: str) -> BreakerState:
        breaker = self._breakers.get(key)
        if breaker is None:
            return CLOSED_STATE
        return self._view(breaker, self._clock.monotonic())

    def _view(self, breaker: _Breaker, now: float) -> BreakerState:
        requests, failures = breaker.window.totals(now)
        if breaker.state == _CLOSED:
            return BreakerState("closed", None, breaker.consecutive, requests, failures)
        if breaker.state == _OPEN and now < breaker.until:
            retry_at = self._clock.now() + (breaker.until - now)
            return BreakerState("open", retry_at, breaker.consecutive, requests, failures)
        probing = breaker.state == _HALF and now < breaker.until
        return BreakerState("half_open", None, breaker.consecutive, requests, failures, probing)

    def retry_at(self, keys: Iterable[str]) -> float | None:
        now = self._clock.monotonic()
        soonest: float | None = None
        for key in keys:
            breaker = self._breakers.get(key)
            if breaker is None or breaker.state == _CLOSED or now >= breaker.until:
                return self._clock.now()
            wait = breaker.until - now
            if breaker.state == _HALF:
                wait = min(wait, PROBE_RETRY_S)
            soonest = wait if soonest is None else min(soonest, wait)
        return None if soonest is None else self._clock.now() + soonest
