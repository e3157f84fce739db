"""What a scope may do (:class:`LimitSpec`) and the buckets a request is checked against.

A *scope* is a string id naming who or what a limit applies to: ``key:key_x``, ``user:u1``,
``team:t1``, ``org:o1``, and the same with a model, ``team:t1:model:gpt-4o``. A request is
checked against a sequence of ``(scope, LimitSpec)`` pairs; each spec turns into at most
three buckets for the scope: a one-minute window, a one-day window (each counting requests,
input tokens and output tokens) and a set of in-flight slots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

MINUTE_MS = 60_000
DAY_MS = 86_400_000

REQUESTS, INPUT, OUTPUT = 0, 1, 2
"""Metric indices of a window's counters."""

LIMIT_NAMES: dict[int, tuple[str, str, str]] = {
    MINUTE_MS: ("rpm", "tpm_input", "tpm_output"),
    DAY_MS: ("rpd", "tpd_input", "tpd_output"),
}
PARALLEL = "max_parallel"

LIMIT_MAX = 10**15
"""The largest value any limit may have (a quadrillion: far above any real quota, exact in
the doubles Redis' Lua scripts count with, and well inside a signed 64-bit integer)."""


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """Rate limits of one scope. ``None`` means no limit; ``0`` refuses every request.

    Minute and day limits are sliding windows (see ``docs/limits-and-budgets.md``); token
    limits count the request's estimate when it is admitted and its actual usage once
    settled. ``max_parallel`` caps the requests of the scope in flight at once.
    """

    rpm: int | None = None
    """Requests per minute."""
    tpm_input: int | None = None
    """Input (prompt) tokens per minute, cached ones included."""
    tpm_output: int | None = None
    """Output (completion) tokens per minute; a request reserves its ``max_tokens``."""
    max_parallel: int | None = None
    """Requests in flight at once."""
    rpd: int | None = None
    """Requests per day (a sliding 24-hour window)."""
    tpd_input: int | None = None
    """Input tokens per day."""
    tpd_output: int | None = None
    """Output tokens per day."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= LIMIT_MAX
            ):
                raise ValueError(
                    f"{f.name} must be a non-negative integer (at most {LIMIT_MAX}) or None, "
                    f"not {value!r}"
                )

    def window(self, window_ms: int) -> tuple[int | None, int | None, int | None]:
        """The (requests, input tokens, output tokens) limits of one window length."""
        if window_ms == MINUTE_MS:
            return (self.rpm, self.tpm_input, self.tpm_output)
        return (self.rpd, self.tpd_input, self.tpd_output)


def scope_id(kind: str, ident: str, *, model: str | None = None) -> str:
    """``scope_id("team", "t1", model="gpt-4o")`` → ``"team:t1:model:gpt-4o"``."""
    base = f"{kind}:{ident}"
    return base if model is None else f"{base}:model:{model}"


def describe_scope(scope: str) -> str:
    """A scope id as prose for messages: ``team:t1:model:gpt-4o`` → ``team t1 model gpt-4o``."""
    return scope.replace(":", " ")


@dataclass(frozen=True, slots=True)
class WindowBucket:
    """The counters of one scope over one window length, with its limits per metric."""

    scope: str
    window_ms: int
    limits: tuple[int | None, int | None, int | None]

    def limit_name(self, metric: int) -> str:
        return LIMIT_NAMES[self.window_ms][metric]


@dataclass(frozen=True, slots=True)
class SlotBucket:
    """The in-flight requests of one scope."""

    scope: str
    limit: int


@dataclass(frozen=True, slots=True)
class Plan:
    windows: tuple[WindowBucket, ...]
    slots: tuple[SlotBucket, ...]

    def __bool__(self) -> bool:
        return bool(self.windows or self.slots)


def _stricter(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


_NONE3: tuple[None, None, None] = (None, None, None)


def make_plan(checks: Sequence[tuple[str, LimitSpec]]) -> Plan:
    """The buckets a request touches. A scope listed twice gets the stricter of each limit."""
    windows: dict[tuple[str, int], tuple[int | None, int | None, int | None]] = {}
    slots: dict[str, int] = {}
    for scope, spec in checks:
        for window_ms, given in (
            (MINUTE_MS, (spec.rpm, spec.tpm_input, spec.tpm_output)),
            (DAY_MS, (spec.rpd, spec.tpd_input, spec.tpd_output)),
        ):
            if given == _NONE3:
                continue
            old = windows.get((scope, window_ms))
            windows[(scope, window_ms)] = (
                given
                if old is None
                else (
                    _stricter(old[0], given[0]),
                    _stricter(old[1], given[1]),
                    _stricter(old[2], given[2]),
                )
            )
        if spec.max_parallel is not None:
            slots[scope] = min(slots.get(scope, spec.max_parallel), spec.max_parallel)
    return Plan(
        windows=tuple([WindowBucket(s, w, lim) for (s, w), lim in windows.items()]),
        slots=tuple([SlotBucket(s, lim) for s, lim in slots.items()]),
    )
