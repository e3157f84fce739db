"""Ask Cedar about each candidate deployment, through the outcome cache.

Per candidate, Cedar answers ``route`` (allowed?) and, when some permit can apply to it,
``prefer`` (preferred?), every uncached candidate in one batch call. Cedar gets only the
attributes some policy reads (``usage.py``), health figures rounded (``round2``). A Cedar
call costs tens of microseconds per candidate; the cache (``cache.py``) is what keeps the
request path cheap. Figures: docs/routing-policies.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cedarpy
import orjson

from sluice.routing.policy.cache import OutcomeCache
from sluice.routing.policy.facts import DeploymentFacts, RequestFacts
from sluice.routing.policy.schema import (
    ACTION_TYPE,
    CONTEXT_ATTRS,
    CONTEXT_ROUNDED,
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
    rounded,
    uid,
)
from sluice.routing.policy.source import LoadedSet
from sluice.routing.policy.usage import Attr, analyse, canonical, may_apply

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
    var: str, names: Iterable[str], live: Mapping[str, bool], thresholds: Mapping[Attr, Any]
) -> dict[str, Transform]:
    """Threshold attributes become canonical (exact), other live ones are rounded."""
    out: dict[str, Transform] = {}
    for name in names:
        literals = thresholds.get((var, name))
        if literals is not None:
            out[name] = _canonical(literals)
        elif live[name]:
            out[name] = rounded
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
    live: tuple[Value, ...]
    """The rounded live health figures the policies read."""


class CompiledPolicies:
    """One loaded policy set, ready to evaluate; immutable apart from its cache."""

    def __init__(self, loaded: LoadedSet, *, cache_size: int, health_ttl_s: float) -> None:
        self.loaded = loaded
        usage = self._usage = analyse(loaded.est)
        self._may_prefer = any(
            est["effect"] == "permit" and may_apply(est, PREFER) for est in loaded.est
        )
        used = [n for n in DEPLOYMENT_ATTRS if usage.resource is None or n in usage.resource]
        transforms = _transforms("resource", used, DEPLOYMENT_ATTRS, usage.thresholds)
        self._static = AttrReader((n for n in used if not DEPLOYMENT_ATTRS[n]), transforms)
        self._live = AttrReader((n for n in used if DEPLOYMENT_ATTRS[n]), transforms)
        names = [n for n in CONTEXT_ATTRS if usage.context is None or n in usage.context]
        context_live = {n: n in CONTEXT_ROUNDED for n in names}
        context_transforms = _transforms("context", names, context_live, usage.thresholds)
        self._context = tuple((n, CONTEXT_ATTRS[n], context_transforms.get(n)) for n in names)
        self.rounded = tuple(
            [f"resource.{n}" for n, t in transforms.items() if t is rounded]
            + [f"context.{n}" for n, t in context_transforms.items() if t is rounded]
        )
        """Inputs Cedar sees rounded to two significant digits (see ``round2``)."""
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
        for facts in unique:
            key, live = (base, facts.key, self._static(facts)), self._live(facts)
            hit = cache.get(key, live, now) if cache is not None else None
            if hit is None:
                missing.append(_Ask(facts, key, live))
            else:
                found[facts.key] = hit
        if missing:
            if not usage.exact:
                missing = [_Ask(c, (), self._live(c)) for c in unique]
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
            attrs = self._static.as_dict(ask.facts)
            attrs.update(zip(self._live.names, ask.live, strict=True))
            entities.append({"uid": resource, "attrs": attrs, "parents": []})
            base = {"principal": principal, "resource": resource, "context": context_json}
            requests.append({**base, "action": _ROUTE_UID})
            if self._may_prefer:
                requests.append({**base, "action": _PREFER_UID})
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
