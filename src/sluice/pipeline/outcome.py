"""What the pipeline hands back: an immutable outcome, and the usage row built from it.

The row (:class:`~sluice.usage.event.UsageEvent`, what the usage writer, metrics, logs and
traces consume) is built once, when the request is over, from the request's
:class:`~sluice.pipeline.context.Arrival` and its :class:`Outcome`.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from sluice.errors import ErrorKind, GatewayError
from sluice.pipeline.context import Arrival
from sluice.types import ProviderRequest, Usage
from sluice.usage.bodies import BodyCapture
from sluice.usage.event import UsageEvent


class Outcome(NamedTuple):
    """How one request ended. A ``NamedTuple``: immutable and cheap to build."""

    error: GatewayError | None = None
    """Why it failed (``None``: it succeeded); the status and error fields of the row."""
    partial: bool = False
    """A stream that failed after its first byte: the tokens are those delivered."""
    usage: Usage | None = None
    """What was counted (the last attempt that counted); ``None``: nothing."""
    cost_micros: int | None = None
    """What it cost; ``None`` when no upstream was called."""
    attempts: int = 0
    """Upstream attempts made (0 when refused before any)."""
    attempt_errors: tuple[str, ...] = ()
    """``deployment: error kind`` of every failed attempt (never billed)."""
    provider: str | None = None
    """Provider, deployment and upstream model of the last attempt (``None``: none)."""
    deployment: str | None = None
    upstream_model: str | None = None
    streamed: bool = False
    ttft_ms: float | None = None
    """Time to the first streamed piece, from the request's arrival."""
    upstream_ms: float = 0.0
    """Time spent waiting on upstream calls, every attempt added up."""
    cache: str | None = None
    """What the response cache did (``hit``, ``miss``, ``store``, ``bypass``); ``None``:
    no cache is configured."""
    cost_saved_micros: int | None = None
    """A hit: what the stored answer cost when it was made (this request cost nothing)."""

    @property
    def status(self) -> int:
        return 200 if self.error is None else self.error.status


DISCONNECTED = "the client disconnected before the answer was complete"


def disconnected() -> GatewayError:
    """The client went away before its answer was complete (499, recorded, not sent)."""
    return GatewayError(ErrorKind.CLIENT_DISCONNECTED, DISCONNECTED)


def usage_row(
    arrival: Arrival,
    outcome: Outcome,
    *,
    request: ProviderRequest | None,
    want_metadata: bool,
    bodies: BodyCapture | None = None,
) -> UsageEvent:
    """The request's one usage row. ``request``: as parsed (``None`` when it was refused
    before); its latency ends now."""
    # Unpacked at once (one step each, where reading fields one by one costs one each);
    # the row is built positionally, in its field order (a third of the cost of keywords);
    # tests/unit/test_pipeline_outcome.py checks every field by name.
    request_id, created_at, started, endpoint, principal, trace = arrival
    (
        error,
        partial,
        usage,
        cost_micros,
        attempts,
        attempt_errors,
        provider,
        deployment,
        upstream_model,
        streamed,
        ttft_ms,
        upstream_ms,
        cache,
        saved,
    ) = outcome
    if usage is None:
        usage = _NO_USAGE
    if request is None:
        model = user = None
    else:
        model = request.model
        user = request.body.get("user")
        if not isinstance(user, str):
            user = None
    trace_id, parent_span, flags = trace
    if error is None:
        row = UsageEvent(
            request_id, created_at, endpoint, principal.key_id, model, provider, deployment,
            upstream_model, usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens,
            usage.cache_write_tokens, usage.estimated, (time.perf_counter() - started) * 1000,
            ttft_ms, 200, None, None, None, streamed, partial, user, attempts,
            list(attempt_errors) if attempt_errors else None, cost_micros, principal.user_id,
            principal.team_id, principal.org_id, trace_id, parent_span, flags, upstream_ms,
            want_metadata, bodies,
        )  # fmt: skip
    else:
        row = UsageEvent(
            request_id, created_at, endpoint, principal.key_id, model, provider, deployment,
            upstream_model, usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens,
            usage.cache_write_tokens, usage.estimated, (time.perf_counter() - started) * 1000,
            ttft_ms, error.status, error.kind.value, error.message, error.param, streamed,
            partial, user, attempts, list(attempt_errors) if attempt_errors else None,
            cost_micros, principal.user_id, principal.team_id, principal.org_id, trace_id,
            parent_span, flags, upstream_ms, want_metadata, bodies,
        )  # fmt: skip
    if usage.unit_kind is not None:
        row.units = usage.units
        row.unit_kind = usage.unit_kind
    if cache is not None:
        row.cache = cache
        row.cost_saved_micros = saved
    return row


_NO_USAGE = Usage()
