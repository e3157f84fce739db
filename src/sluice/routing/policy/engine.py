"""The routing policy engine: load Cedar files, reload them live, decide per request.

``evaluate`` turns a model's candidate deployments into an order: forbidden ones removed,
preferred ones first, the caller's order kept otherwise. An empty order means every
candidate was forbidden (the caller answers 503). Without policy files the engine is a
pass-through that never touches Cedar.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from sluice.clock import Clock, SystemClock
from sluice.routing.policy.evaluate import CompiledPolicies, Outcome
from sluice.routing.policy.facts import DeploymentFacts, RequestFacts
from sluice.routing.policy.schema import (
    CONTEXT_ATTRS,
    DEPLOYMENT_ATTRS,
    AttrReader,
    principal_entity,
)
from sluice.routing.policy.source import PolicyInfo, PolicyLoadError, PolicyProblem, load

T = TypeVar("T")

DEFAULT_CACHE_SIZE = 4096
"""Per-deployment outcomes cached per policy set (a few hundred bytes each); ``0``: none."""
DEFAULT_HEALTH_TTL_S = 1.0
"""How old the health figures behind a cached outcome may be (see ``cache.py``);
``0``: re-ask Cedar whenever a health figure the policies read changes."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a request may go, and why."""

    order: list[str]
    """Allowed deployment keys: preferred first, otherwise the candidates' order."""
    forbidden: dict[str, list[str]] = field(default_factory=dict)
    """Deployment key → ids of the forbids that removed it (empty: nothing permitted it)."""
    preferred: dict[str, list[str]] = field(default_factory=dict)
    """Allowed deployment key → ids of the permits on ``prefer`` that matched."""
    errors: list[str] = field(default_factory=list)
    """Policies that failed to evaluate and were skipped (Cedar's messages)."""
    outcomes: tuple[Outcome, ...] = ()
    """Per-candidate detail, in the candidates' order; empty without policies."""

    def arrange(self, items: Sequence[T], key: Callable[[T], str]) -> list[T]:
        """``items`` (e.g. deployments) filtered and ordered like :attr:`order`."""
        by_key = {key(item): item for item in items}
        return [by_key[k] for k in self.order if k in by_key]

    def explain(self) -> dict[str, object]:
        return {
            "order": list(self.order),
            "forbidden": {k: list(v) for k, v in self.forbidden.items()},
            "preferred": {k: list(v) for k, v in self.preferred.items()},
            "errors": list(self.errors),
            "deployments": [
                {
                    "key": o.key,
                    "allowed": o.allowed,
                    "preferred": o.preferred,
                    "permitted_by": list(o.permitted_by),
                    "forbidden_by": list(o.forbidden_by),
                    "preferred_by": list(o.preferred_by),
                    "preference_forbidden_by": list(o.preference_forbidden_by),
                    "why": _why(o),
                }
                for o in self.outcomes
            ],
        }


def _why(outcome: Outcome) -> str:
    if not outcome.allowed:
        if outcome.forbidden_by:
            return "forbidden by " + ", ".join(outcome.forbidden_by)
        return 'no policy permits Sluice::Action::"route" for it'
    if outcome.preferred:
        return "allowed, preferred by " + ", ".join(outcome.preferred_by)
    return "allowed"


def decide(outcomes: Sequence[Outcome]) -> Decision:
    """Stable partition of the allowed outcomes: preferred first."""
    first: list[str] = []
    rest: list[str] = []
    forbidden: dict[str, list[str]] = {}
    preferred: dict[str, list[str]] = {}
    errors: list[str] = []
    for o in outcomes:
        if not o.allowed:
            forbidden[o.key] = list(o.forbidden_by)
        elif o.preferred_by:
            first.append(o.key)
            preferred[o.key] = list(o.preferred_by)
        else:
            rest.append(o.key)
        if o.errors:
            errors.extend(e for e in o.errors if e not in errors)
    return Decision(
        order=first + rest,
        forbidden=forbidden,
        preferred=preferred,
        errors=errors,
        outcomes=tuple(outcomes),
    )


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a (re)load did. On failure the previous policy set stays active."""

    ok: bool
    generation: int
    """Bumped on every successful load; ``0``: no policy set was ever loaded."""
    files: tuple[str, ...] = ()
    """Files of the active set."""
    policies: tuple[str, ...] = ()
    """Policy ids of the active set."""
    problems: tuple[PolicyProblem, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "generation": self.generation,
            "files": list(self.files),
            "policies": list(self.policies),
            "problems": [p.as_dict() for p in self.problems],
        }


class RoutingPolicy(Protocol):
    """The seam the router uses: order candidate deployments for one request."""

    def evaluate(self, candidates: Sequence[DeploymentFacts], request: RequestFacts) -> Decision:
        """Allowed candidates, preferred first; pure CPU work, safe on the event loop.

        Never raises for a policy that fails to evaluate: Cedar skips it and the failure is
        listed in ``Decision.errors``. An empty ``order`` means every candidate was forbidden.
        """
        ...


class PolicyEngine:
    """Cedar routing policies from files and directories, reloadable without restart.

    Built with no paths it is a no-op. With paths, call :meth:`load` once at startup
    (a bad file stops the process), then :meth:`reload` from the admin API or CLI (a bad
    file is reported and the active set is kept). Loading reads files: call it off the
    event loop when they live on slow storage.
    """

    def __init__(
        self,
        paths: Iterable[str | Path] = (),
        *,
        clock: Clock | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        health_ttl_s: float = DEFAULT_HEALTH_TTL_S,
    ) -> None:
        self._paths = tuple(paths)
        self._clock = clock or SystemClock()
        self._cache_size = cache_size
        self._health_ttl_s = health_ttl_s
        self._active: CompiledPolicies | None = None
        self._generation = 0

    @property
    def enabled(self) -> bool:
        """Policy files are configured (the engine is not a pass-through)."""
        return bool(self._paths)

    @property
    def reads_health(self) -> bool:
        """Some active policy reads a live health figure (``samples``, ``error_rate_bp``,
        ``latency_ms``, ``ttft_ms``, ``in_flight``): only then must callers fill them in."""
        active = self._active
        return active is not None and active.reads_health

    @property
    def generation(self) -> int:
        return self._generation

    def cache_stats(self) -> dict[str, int]:
        """Outcome cache hits and misses (per deployment) since the active set loaded."""
        active = self._active
        if active is None:
            return {"hits": 0, "misses": 0, "entries": 0}
        cache = active.cache
        return {"hits": cache.hits, "misses": cache.misses, "entries": len(cache)}

    def policies(self) -> tuple[PolicyInfo, ...]:
        """The active policies, in load order."""
        return self._active.loaded.policies if self._active else ()

    def load(self, paths: Iterable[str | Path] | None = None) -> ReloadResult:
        """Load ``paths`` (default: the configured ones) and make them active.

        Raises :class:`PolicyLoadError` listing every problem (file, line, policy, message);
        the active set (if any) is then unchanged. Empty ``paths`` turn policies off.
        """
        new_paths = self._paths if paths is None else tuple(paths)
        compiled = None
        if new_paths:
            compiled = CompiledPolicies(
                load(new_paths), cache_size=self._cache_size, health_ttl_s=self._health_ttl_s
            )
        self._paths, self._active = new_paths, compiled
        self._generation += 1
        return self._result(ok=True)

    def reload(self, paths: Iterable[str | Path] | None = None) -> ReloadResult:
        """Like :meth:`load`, but a failure is returned (``ok=False``), not raised."""
        try:
            return self.load(paths)
        except PolicyLoadError as exc:
            return self._result(ok=False, problems=exc.problems)

    def evaluate(self, candidates: Sequence[DeploymentFacts], request: RequestFacts) -> Decision:
        active = self._active
        if active is None:
            if self._paths:
                raise RuntimeError("PolicyEngine.load() must run before evaluate()")
            return Decision(order=[c.key for c in candidates])
        return decide(
            active.outcomes(candidates, request, hour_utc=self._hour(), now=self._clock.monotonic())
        )

    def explain(
        self, candidates: Sequence[DeploymentFacts], request: RequestFacts
    ) -> dict[str, object]:
        """The decision for a (hypothetical) request, always evaluated afresh (no cache),
        with the inputs as given and the source of every policy that mattered."""
        active = self._active
        hour = self._hour()
        if active is None:
            decision = self.evaluate(candidates, request)
        else:
            outcomes = active.outcomes(
                candidates, request, hour_utc=hour, now=self._clock.monotonic(), use_cache=False
            )
            decision = decide(outcomes)
        policies = active.loaded.policies if active else ()
        named = {
            pid
            for o in decision.outcomes
            for pid in (
                *o.permitted_by,
                *o.forbidden_by,
                *o.preferred_by,
                *o.preference_forbidden_by,
            )
        }
        every = AttrReader(DEPLOYMENT_ATTRS, transforms={})
        return {
            **decision.explain(),
            "enabled": active is not None,
            "generation": self._generation,
            "principal": principal_entity(request),
            "context": {n: get(request, hour) for n, get in CONTEXT_ATTRS.items()},
            "facts": {c.key: every.as_dict(c) for c in candidates},
            "policies": [p.as_dict() for p in policies if p.id in named],
        }

    def _hour(self) -> int:
        return int(self._clock.now() // 3600 % 24)

    def _result(self, *, ok: bool, problems: Sequence[PolicyProblem] = ()) -> ReloadResult:
        active = self._active
        return ReloadResult(
            ok=ok,
            generation=self._generation,
            files=active.loaded.files if active else (),
            policies=tuple(p.id for p in active.loaded.policies) if active else (),
            problems=tuple(problems),
        )
