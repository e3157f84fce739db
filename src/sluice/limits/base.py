"""The limiter seam: reserve before the call, settle or release after it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sluice.limits.spec import LimitSpec


@dataclass(frozen=True, slots=True)
class Quota:
    """One line of ``x-ratelimit-*`` headers."""

    limit: int
    remaining: int
    reset_ms: int
    """Milliseconds until the bucket is back to its full limit if nothing else is counted."""


def format_reset(ms: int) -> str:
    """A duration as OpenAI writes it in ``x-ratelimit-reset-*``: ``20ms``, ``1s``, ``6m0s``."""
    if ms < 1000:
        return f"{max(0, ms)}ms"
    seconds = math.ceil(ms / 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """The most constrained request and token buckets of a request's scopes.

    ``requests`` is the request-count bucket (``rpm``/``rpd``) with the fewest remaining,
    ``tokens`` the token bucket (input or output, minute or day) with the fewest remaining;
    ``None`` when no such limit applies.

    ``slots`` is the in-flight set (``max_parallel``) with the fewest free slots; only
    :meth:`Limiter.remaining` fills it (its ``reset_ms`` is 0: when a slot frees is unknown),
    and it is not sent as a header.
    """

    requests: Quota | None = None
    tokens: Quota | None = None
    slots: Quota | None = None

    def headers(self) -> dict[str, str]:
        """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` as OpenAI sends them."""
        out: dict[str, str] = {}
        for name, quota in (("requests", self.requests), ("tokens", self.tokens)):
            if quota is not None:
                out[f"x-ratelimit-limit-{name}"] = str(quota.limit)
                out[f"x-ratelimit-remaining-{name}"] = str(quota.remaining)
                out[f"x-ratelimit-reset-{name}"] = format_reset(quota.reset_ms)
        return out


@dataclass(frozen=True, slots=True)
class Exceeded:
    """One limit a request did not fit in."""

    scope: str
    limit: str
    """``rpm``, ``tpm_input``, ``tpm_output``, ``rpd``, ``tpd_input``, ``tpd_output`` or
    ``max_parallel``."""
    value: int
    """The configured limit."""
    needed: int
    """What the request needed of it (1 request, or its token estimate)."""
    retry_after_ms: int | None
    """When it would fit if nothing else were counted; ``None`` when the request alone is
    larger than the limit. For ``max_parallel`` a fixed 1000 ms (the time a slot frees is
    unknown)."""


@dataclass(frozen=True, slots=True)
class WindowHold:
    """Where a reservation counted its units: the bucket and the window it was in."""

    scope: str
    window_ms: int
    start_ms: int


class Reservation:
    """What :meth:`Limiter.reserve` counted for one request, until it is settled or released.

    A reservation is closed by the first ``settle`` or ``release``; later calls do nothing.
    """

    __slots__ = ("_closed", "holds", "id", "input_estimate", "output_estimate", "slots", "status")

    def __init__(
        self,
        *,
        id: str,
        input_estimate: int,
        output_estimate: int,
        holds: tuple[WindowHold, ...],
        slots: tuple[str, ...],
        status: RateLimitStatus,
    ) -> None:
        self.id = id
        self.input_estimate = input_estimate
        self.output_estimate = output_estimate
        self.holds = holds
        self.slots = slots
        """Scopes in which this request holds an in-flight slot."""
        self.status = status
        """The buckets after this request was counted, for the response's headers."""
        self._closed = False

    @classmethod
    def empty(cls, input_estimate: int = 0, output_estimate: int = 0) -> Reservation:
        """A reservation that holds nothing (no limit applied to the request)."""
        return cls(
            id="",
            input_estimate=input_estimate,
            output_estimate=output_estimate,
            holds=(),
            slots=(),
            status=RateLimitStatus(),
        )

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> bool:
        """Mark closed; ``True`` only for the first call (the caller then undoes the holds)."""
        if self._closed:
            return False
        self._closed = True
        return True

    def __repr__(self) -> str:
        return f"Reservation(id={self.id!r}, holds={len(self.holds)}, slots={self.slots!r})"


class Limiter(Protocol):
    """Rate limits per scope, shared by every request of a process (memory) or of every
    replica (Redis). Every method is safe to call concurrently.

    Checks are ``(scope, LimitSpec)`` pairs, e.g. the key's, its user's, team's and org's
    limits, and each of those for the requested model (``team:t1:model:gpt-4o``).
    """

    async def reserve(
        self,
        checks: Sequence[tuple[str, LimitSpec]],
        *,
        input_estimate: int,
        output_estimate: int,
    ) -> Reservation:
        """Atomically check every bucket of every scope; if all fit, count the request, add
        the token estimates and take an in-flight slot in each scope.

        Raises :class:`~sluice.limits.errors.LimitExceeded` naming every limit that did not
        fit; then nothing at all was counted. The caller must end the returned reservation
        with :meth:`settle` or :meth:`release` on every exit path (``finally``).
        """
        ...

    async def settle(
        self, reservation: Reservation, *, input_tokens: int, output_tokens: int
    ) -> None:
        """The call was made: replace the estimates by the actual token counts (in the
        windows they were counted in) and free the slots. Idempotent; never raises for a
        store failure (a shared store sends a failed release of slots again once it answers;
        at worst the slot's lease frees it)."""
        ...

    async def release(self, reservation: Reservation, *, refund_request: bool = False) -> None:
        """The call used no upstream tokens: take back the token estimates and free the
        slots. With ``refund_request`` the request is uncounted too (use it when a later
        check, e.g. the budget, refused the request, so that a refused request consumes
        nothing). Idempotent; never raises for a store failure."""
        ...

    async def remaining(self, checks: Sequence[tuple[str, LimitSpec]]) -> RateLimitStatus:
        """The most constrained buckets of these scopes now, counting nothing."""
        ...
