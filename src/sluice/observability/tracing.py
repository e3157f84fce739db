"""W3C trace context and OpenTelemetry spans.

Always on (cheap): the caller's ``traceparent`` is parsed, its trace id (or a fresh one)
goes into ``x-sluice-trace-id`` and the metadata, and a ``traceparent`` is sent upstream.
With tracing off the caller's header is passed through unchanged (a fresh, unsampled one
when it sent none). Spans are recorded only when ``SLUICE_OTLP_ENDPOINT`` is set: one per
request and one per upstream attempt (a child), with the GenAI semantic-convention
attributes, exported over OTLP/HTTP (protobuf) by a batch processor that the lifespan shuts
down.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from sluice.ids import random_hex
from sluice.types import Usage
from sluice.usage.event import UsageEvent

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

_TRACEPARENT = re.compile(rb"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16

OPERATIONS: Mapping[str, str] = {
    "chat": "chat",
    "messages": "chat",
    "responses": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}
"""Endpoint → ``gen_ai.operation.name``."""


def parse_traceparent(value: bytes) -> tuple[str, str, str] | None:
    """``(trace id, parent id, flags)`` of a valid W3C ``traceparent``, else ``None``
    (an invalid header is ignored, as the spec asks)."""
    m = _TRACEPARENT.match(value.strip().lower())
    if m is None or m.group(1) == b"ff":
        return None
    trace_id, parent, flags = m.group(2).decode(), m.group(3).decode(), m.group(4).decode()
    if trace_id == _ZERO_TRACE or parent == _ZERO_SPAN:
        return None
    return trace_id, parent, flags


def new_trace_id() -> str:
    return random_hex(16)


class Trace(NamedTuple):
    """A request's place in a distributed trace."""

    trace_id: str
    """W3C trace id (32 hex digits): the caller's, else fresh."""
    parent_span: str | None = None
    """The caller's ``traceparent`` parent id, when it sent one."""
    flags: str = "00"
    """The caller's trace flags (``01``: sampled)."""


_new = tuple.__new__


def start_trace(traceparent: bytes | None) -> Trace:
    """The request's trace: the caller's (a valid ``traceparent``), or a fresh one."""
    parsed = parse_traceparent(traceparent) if traceparent else None
    if parsed is None:
        return _new(Trace, (random_hex(16), None, "00"))  # the tuple: cheaper than Trace(...)
    return _new(Trace, parsed)


def passthrough_traceparent(trace: Trace) -> str:
    """The ``traceparent`` sent upstream when this process records no spans."""
    if trace.parent_span is not None:
        return f"00-{trace.trace_id}-{trace.parent_span}-{trace.flags}"
    return f"00-{trace.trace_id}-{random_hex(8)}-00"


class Tracing:
    """Spans for requests and attempts, exported over OTLP/HTTP. Built by the lifespan only
    when an endpoint is configured; :meth:`shutdown` flushes and stops the exporter."""

    def __init__(self, endpoint: str, *, service_name: str = "sluice", timeout_s: float = 5.0):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        url = endpoint.rstrip("/")
        if not url.endswith("/v1/traces"):
            url += "/v1/traces"
        self.provider: TracerProvider = TracerProvider(
            resource=Resource.create({"service.name": service_name})
        )
        self.provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=url, timeout=timeout_s), schedule_delay_millis=500
            )
        )
        self.tracer: Tracer = self.provider.get_tracer("sluice")

    def start_request(
        self, request_id: str, endpoint: str, caller: Trace
    ) -> tuple[Span, Any, Trace]:
        """Start the request span (child of the caller's ``traceparent``) and make it
        current; returns the span, the context token for :meth:`end_request` and the
        request's trace (a root span has its own trace id)."""
        from opentelemetry import context, trace

        parent = _parent_context(caller)
        operation = OPERATIONS.get(endpoint, endpoint)
        span = self.tracer.start_span(
            operation,
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={"gen_ai.operation.name": operation, "sluice.request_id": request_id},
        )
        ctx = span.get_span_context()
        if ctx.is_valid:
            caller = caller._replace(trace_id=f"{ctx.trace_id:032x}")
        return span, context.attach(trace.set_span_in_context(span)), caller

    def end_request(
        self, span: Span, token: Any, ev: UsageEvent, provider_type: str | None
    ) -> None:
        from opentelemetry import context

        try:
            attrs: dict[str, Any] = {
                "http.response.status_code": ev.status,
                "gen_ai.usage.input_tokens": ev.prompt_tokens,
                "gen_ai.usage.output_tokens": ev.completion_tokens,
                "sluice.attempts": ev.attempts,
                "sluice.streamed": ev.streamed,
            }
            if ev.model:
                attrs["gen_ai.request.model"] = ev.model
            if ev.upstream_model:
                attrs["gen_ai.response.model"] = ev.upstream_model
            if provider_type:
                attrs["gen_ai.provider.name"] = provider_type
                attrs["gen_ai.system"] = provider_type
            if ev.deployment:
                attrs["sluice.deployment"] = ev.deployment
            if ev.cost_micros is not None:
                attrs["sluice.cost_usd"] = ev.cost_micros / 1e6
            if ev.key_id:
                attrs["sluice.key_id"] = ev.key_id
            span.set_attributes(attrs)
            _set_error(span, ev.error_kind)
        finally:
            span.end()
            context.detach(token)

    def start_attempt(
        self,
        endpoint: str,
        *,
        deployment: str,
        provider_type: str,
        upstream_model: str,
        body: Mapping[str, Any],
    ) -> Span:
        """A child of the current request span for one upstream attempt. The request's
        ``max_tokens`` (from ``body``) goes on both spans."""
        from opentelemetry import trace

        operation = OPERATIONS.get(endpoint, endpoint)
        max_tokens = _max_tokens(body)
        if max_tokens is not None:
            trace.get_current_span().set_attribute("gen_ai.request.max_tokens", max_tokens)
        span = self.tracer.start_span(
            f"{operation} {upstream_model}",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": operation,
                "gen_ai.provider.name": provider_type,
                "gen_ai.system": provider_type,
                "gen_ai.request.model": upstream_model,
                "sluice.deployment": deployment,
            },
        )
        if max_tokens is not None:
            span.set_attribute("gen_ai.request.max_tokens", max_tokens)
        return span

    @staticmethod
    def end_attempt(
        span: Span, error_kind: str | None, *, upstream_model: str, usage: Usage | None
    ) -> None:
        """``usage``: what the request counted so far (``None``: nothing yet)."""
        if error_kind is None:
            span.set_attributes(
                {
                    "gen_ai.response.model": upstream_model,
                    "gen_ai.usage.input_tokens": 0 if usage is None else usage.prompt_tokens,
                    "gen_ai.usage.output_tokens": 0 if usage is None else usage.completion_tokens,
                }
            )
        _set_error(span, error_kind)
        span.end()

    @staticmethod
    def traceparent(span: Span) -> str:
        ctx = span.get_span_context()
        return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"

    def shutdown(self) -> None:
        self.provider.shutdown()


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _parent_context(caller: Trace) -> Context | None:
    if caller.parent_span is None:
        return None
    from opentelemetry import trace

    parent = trace.SpanContext(
        trace_id=int(caller.trace_id, 16),
        span_id=int(caller.parent_span, 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(int(caller.flags, 16)),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(parent))


def _set_error(span: Span, error_kind: str | None) -> None:
    """Mark a failed span. Only the error kind is recorded: messages may quote upstream
    text, and spans leave the process."""
    if error_kind is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", error_kind)
    span.set_status(Status(StatusCode.ERROR, error_kind))


def build_tracing(endpoint: str | None, *, service_name: str) -> Tracing | None:
    """Tracing when an OTLP endpoint is set, else ``None`` (no spans, no SDK objects)."""
    if not endpoint:
        return None
    return Tracing(endpoint, service_name=service_name)
