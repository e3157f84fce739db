"""Ask Cedar about each candidate deployment, through the outcome cache.

Per candidate, Cedar answers ``route`` (allowed?) and, when some permit can apply to it,
``prefer`` (preferred?), every uncached candidate in one batch call. Cedar gets only the
attributes some policy reads, thresholds as canonical values (``usage.py``). A Cedar call
costs tens of microseconds per candidate; the cache (``cache.py``) is what keeps the
request path cheap. Figures: docs/routing-policies.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from sluice.routing.policy.cache import OutcomeCache
from sluice.routing.policy.facts import DeploymentFacts, RequestFacts
from sluice.routing.policy.schema import (
    ACTION_TYPE,
    CONTEXT_ATTRS,
    DEPLOYMENT_ATTRS,
    DEPLOYMENT_TYPE,
    KEY_TYPE,
    PREFER,
    ROUTE,
    AttrReader,
    Transform,
    Value,
    principal_entity,
    principal_identity,
    uid,
)
from sluice.routing.policy.source import LoadedSet
from sluice.routing.policy.usage import Attr, analyse, canonical, may_apply

if TYPE_CHECKING:
    import cedarpy

_ROUTE_UID = uid(ACTION_TYPE, ROUTE)
_PREFER_UID = uid(ACTION_TYPE, PREFER)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the policies said about one deployment."""

    key: str
    allowed: bool
    permitted_by: tuple[str, ...] = ()
    """Permits on ``route`` that matched (when allowed)."""
    forbidden_by: tuple[str, ...] = ()
    """Forbids on ``route`` that matched; empty when denied because nothing permitted."""
    preferred_by: tuple[str, ...] = ()
    """Permits on ``prefer`` that matched (and no forbid on ``prefer`` did)."""
    preference_forbidden_by: tuple[str, ...] = ()
    """Forbids on ``prefer`` that cancelled a preference."""
    errors: tuple[str, ...] = ()
    """Policies that failed to evaluate (Cedar skips them), with Cedar's message."""

    @property
    def preferred(self) -> bool:
        return self.allowed and bool(self.preferred_by)


def _transforms(
    var: str, names: Iterable[str], thresholds: Mapping[Attr, tuple[int, ...]]
) -> dict[str, Transform]:
    """Threshold attributes are replaced by their canonical values; others pass as they are."""
    out: dict[str, Transform] = {}
    for name in names:
        literals = thresholds.get((var, name))
        if literals is not None:
            out[name] = _canonical(literals)
    return out


def _canonical(literals: tuple[int, ...]) -> Transform:
    if len(literals) == 1:
        (only,) = literals

        def one(value: Any) -> Value:
            if type(value) is not int or value == only:
                result: Value = value
                return result
            return only - 1 if value < only else only + 1

        return one

    def many(value: Any) -> Value:
        result: Value = canonical(value, literals) if type(value) is int else value
        return result

    return many


@dataclass(frozen=True, slots=True)
class _Ask:
    facts: DeploymentFacts
    key: tuple[object, ...]
    """Cache key: principal (if read), context values, deployment key, static attributes."""
    values: tuple[Value, ...]
    """Every attribute the policies read, static ones first."""
    live: tuple[Value, ...]
    """The live health figures the policies read (canonical where thresholds)."""


class CompiledPolicies:
    """One loaded policy set, ready to evaluate; immutable apart from its cache."""

    def __init__(self, loaded: LoadedSet, *, cache_size: int, health_ttl_s: float) -> None:
        self.loaded = loaded
        usage = self._usage = analyse(loaded.est)
        self._may_prefer = any(
            est["effect"] == "permit" and may_apply(est, PREFER) for est in loaded.est
        )
        used = [n for n in DEPLOYMENT_ATTRS if usage.resource is None or n in usage.resource]
        transforms = _transforms("resource", used, usage.thresholds)
        static = [n for n in used if not DEPLOYMENT_ATTRS[n]]
        # Static attributes first: a candidate's values split into cache key and live part.
        self._read = AttrReader([*static, *(n for n in used if DEPLOYMENT_ATTRS[n])], transforms)
        self._split = len(static)
        self.reads_health = len(used) > len(static)
        """Some policy reads a live health figure."""
        names = [n for n in CONTEXT_ATTRS if usage.context is None or n in usage.context]
        context_transforms = _transforms("context", names, usage.thresholds)
        self._context = tuple((n, CONTEXT_ATTRS[n], context_transforms.get(n)) for n in names)
        # A policy reading another entity's attributes makes outcomes depend on every
        # candidate at once: no per-deployment cache then.
        size = cache_size if usage.exact else 0
        self.cache: OutcomeCache[Outcome] = OutcomeCache(size=size, ttl_s=health_ttl_s)
        self._rank = {p.id: i for i, p in enumerate(loaded.policies)}

    def outcomes(
        self,
        candidates: Sequence[DeploymentFacts],
        request: RequestFacts,
        *,
        hour_utc: int,
        now: float,
        use_cache: bool = True,
    ) -> list[Outcome]:
        """One outcome per distinct candidate key, in the candidates' order (first wins).

        ``now`` is monotonic seconds (cache ages), ``hour_utc`` the context's hour.
        """
        usage = self._usage
        first: dict[str, DeploymentFacts] = {}
        for facts in candidates:
            first.setdefault(facts.key, facts)
        unique = list(first.values())
        context: dict[str, Value] = {}
        for name, get, transform in self._context:
            value = get(request, hour_utc)
            context[name] = value if transform is None else transform(value)
        base = (principal_identity(request) if usage.principal else None, *context.values())
        cache = self.cache if use_cache and self.cache.enabled else None
        found: dict[str, Outcome] = {}
        missing: list[_Ask] = []
        split = self._split
        for facts in unique:
            values = self._read(facts)
            key, live = (base, facts.key, values[:split]), values[split:]
            hit = cache.get(key, live, now) if cache is not None else None
            if hit is None:
                missing.append(_Ask(facts, key, values, live))
            else:
                found[facts.key] = hit
        if missing:
            if not usage.exact:
                missing = [_Ask(c, (), self._read(c), ()) for c in unique]
            for ask, outcome in zip(missing, self._ask(missing, request, context), strict=True):
                found[outcome.key] = outcome
                if cache is not None:
                    cache.put(ask.key, ask.live, now, outcome)
        return [found[facts.key] for facts in unique]

    def _ask(
        self,
        missing: Sequence[_Ask],
        request: RequestFacts,
        context: dict[str, Value],
    ) -> list[Outcome]:
        entities: list[dict[str, Any]] = []
        if self._usage.principal:
            entities.append(principal_entity(request))
        principal = uid(KEY_TYPE, request.key_id)
        context_json = orjson.dumps(context).decode()
        requests: list[dict[str, Any]] = []
        for ask in missing:
            resource = uid(DEPLOYMENT_TYPE, ask.facts.key)
            attrs = dict(zip(self._read.names, ask.values, strict=True))
            entities.append({"uid": resource, "attrs": attrs, "parents": []})
            base = {"principal": principal, "resource": resource, "context": context_json}
            requests.append({**base, "action": _ROUTE_UID})
            if self._may_prefer:
                requests.append({**base, "action": _PREFER_UID})
        import cedarpy  # loaded with the policies (see source.load)

        results = cedarpy.is_authorized_batch(
            requests, self.loaded.policy_set, orjson.dumps(entities).decode()
        )
        step = 2 if self._may_prefer else 1
        return [
            _outcome(
                ask.facts.key,
                results[i * step],
                results[i * step + 1] if step == 2 else None,
                self._rank,
            )
            for i, ask in enumerate(missing)
        ]


def _outcome(
    key: str,
    route: cedarpy.AuthzResult,
    prefer: cedarpy.AuthzResult | None,
    rank: Mapping[str, int],
) -> Outcome:
    """Policy ids in load order (Cedar reports them in no particular order)."""

    def ordered(ids: list[str]) -> tuple[str, ...]:
        return tuple(sorted(ids, key=lambda pid: rank.get(pid, len(rank))))

    reasons = ordered(route.diagnostics.reasons)
    errors = list(route.diagnostics.errors)
    preferred: tuple[str, ...] = ()
    vetoed: tuple[str, ...] = ()
    if prefer is not None:
        errors.extend(e for e in prefer.diagnostics.errors if e not in errors)
        if prefer.allowed:
            preferred = ordered(prefer.diagnostics.reasons)
        else:
            vetoed = ordered(prefer.diagnostics.reasons)
    return Outcome(
        key,
        route.allowed,
        permitted_by=reasons if route.allowed else (),
        forbidden_by=() if route.allowed else reasons,
        preferred_by=preferred,
        preference_forbidden_by=vetoed,
        errors=tuple(errors),
    )
