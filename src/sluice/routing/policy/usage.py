"""What a policy set reads: which actions it can permit and which inputs it looks at.

Found from the policies' JSON form (Cedar's EST) at load time. The evaluator sends Cedar
only the attributes some policy reads, and caches outcomes keyed by those values.

Thresholds: when every read of an integer attribute is a comparison with an integer
literal (``context.budget_remaining_pct < 20``), only the literals matter, so the value can
be replaced by a canonical one with the same answer to every comparison (see
:func:`canonical`). That turns a value that moves on every request into one of a few
classes, which is what lets the cache answer most requests.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice.routing.policy.schema import ACTION_TYPE

Attr = tuple[str, str]
"""(``context`` or ``resource``, attribute name)."""

_COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")


@dataclass(frozen=True, slots=True)
class InputUsage:
    principal: bool
    """Some policy looks at the principal (its scope, attributes or parents)."""
    context: frozenset[str] | None
    """Context attributes read; ``None``: the context as a whole (send everything)."""
    resource: frozenset[str] | None
    """Deployment attributes read; ``None``: all of them."""
    exact: bool
    """``False`` when a policy reads attributes of an entity other than the request's
    own (``Sluice::Deployment::"x".latency_ms``): then every candidate is sent with every
    attribute and nothing is cached."""
    thresholds: Mapping[Attr, tuple[int, ...]] = field(default_factory=dict)
    """Attributes only ever compared with integer literals → those literals, sorted."""


@dataclass(slots=True)
class _Acc:
    principal: bool = False
    whole: set[str] = field(default_factory=set)
    attrs: dict[str, set[str]] = field(
        default_factory=lambda: {"context": set(), "resource": set()}
    )
    literals: dict[Attr, set[int]] = field(default_factory=dict)
    other_reads: set[Attr] = field(default_factory=set)
    opaque: bool = False


def canonical(value: int, literals: tuple[int, ...]) -> int:
    """A value that compares with every one of ``literals`` exactly as ``value`` does.

    Literals themselves stay; a value strictly between two literals (or beyond the last)
    becomes the literal below plus one, one below the first literal becomes that minus one.
    """
    i = bisect_left(literals, value)
    if i < len(literals) and literals[i] == value:
        return value
    return literals[i - 1] + 1 if i > 0 else literals[0] - 1


def policy_actions(policy: Mapping[str, Any]) -> frozenset[str] | None:
    """The ``Sluice::Action`` ids a policy's scope admits; ``None``: any action."""
    scope = policy.get("action", {})
    if scope.get("op") == "All":
        return None
    entities = scope.get("entities") or [scope.get("entity", {})]
    return frozenset(e.get("id", "") for e in entities if e.get("type") == ACTION_TYPE)


def may_apply(policy: Mapping[str, Any], action: str) -> bool:
    actions = policy_actions(policy)
    return actions is None or action in actions


def analyse(policies: Iterable[Mapping[str, Any]]) -> InputUsage:
    acc = _Acc()
    for policy in policies:
        if policy.get("principal", {}).get("op", "All") != "All":
            acc.principal = True
        for condition in policy.get("conditions", ()):
            _walk(condition.get("body"), acc)
    if acc.opaque:
        return InputUsage(principal=True, context=None, resource=None, exact=False)
    thresholds = {
        attr: tuple(sorted(values))
        for attr, values in acc.literals.items()
        if attr not in acc.other_reads and attr[0] not in acc.whole
    }
    return InputUsage(
        principal=acc.principal,
        context=None if "context" in acc.whole else frozenset(acc.attrs["context"]),
        resource=None if "resource" in acc.whole else frozenset(acc.attrs["resource"]),
        exact=True,
        thresholds=thresholds,
    )


def _read(node: object) -> Attr | None:
    """``context.x`` or ``resource.x`` → the attribute; anything else → ``None``."""
    if not isinstance(node, dict):
        return None
    access = node.get(".")
    if not isinstance(access, dict):
        return None
    left = access.get("left")
    var = left.get("Var") if isinstance(left, dict) else None
    if var in ("context", "resource"):
        return (str(var), str(access.get("attr")))
    return None


def _int_literal(node: object) -> int | None:
    if isinstance(node, dict):
        value = node.get("Value")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _walk(node: object, acc: _Acc) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, acc)
        return
    if not isinstance(node, dict):
        return
    for op in _COMPARISONS:
        pair = node.get(op)
        if isinstance(pair, dict) and "left" in pair and "right" in pair:
            _comparison(pair["left"], pair["right"], acc)
            _comparison(pair["right"], pair["left"], acc)
            return
    for op in (".", "has"):
        access = node.get(op)
        if isinstance(access, dict) and "left" in access and "attr" in access:
            left = access["left"]
            var = left.get("Var") if isinstance(left, dict) else None
            if var in ("context", "resource"):
                acc.attrs[var].add(str(access["attr"]))
                if op == ".":
                    acc.other_reads.add((var, str(access["attr"])))
                return
            if var == "principal":
                acc.principal = True
                return
            if var is None:
                acc.opaque = True
            _walk(left, acc)
            return
    var = node.get("Var")
    if var == "principal":
        acc.principal = True
    elif var in ("context", "resource"):
        acc.whole.add(var)
    for value in node.values():
        _walk(value, acc)


def _comparison(side: object, other: object, acc: _Acc) -> None:
    """Record ``side`` as a threshold read when it is an attribute compared with an
    integer literal; otherwise walk it as any expression."""
    attr, literal = _read(side), _int_literal(other)
    if attr is not None and literal is not None:
        acc.attrs[attr[0]].add(attr[1])
        acc.literals.setdefault(attr, set()).add(literal)
    else:
        _walk(side, acc)
