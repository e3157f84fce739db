"""One test request to one deployment ("test this deployment" in the console): a short chat
sent through the pipeline's one entry (:func:`sluice.pipeline.run.serve`) as the admin who
asked, pinned to that deployment (no retry elsewhere, no fallback), with its usage row like
any request; the answer's text, latency and cost come back."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from sluice.auth.principal import Principal
from sluice.errors import ErrorKind, GatewayError
from sluice.ids import random_hex
from sluice.observability.tracing import start_trace
from sluice.pipeline.cache_embed import NoClient
from sluice.pipeline.context import Arrival, RequestContext
from sluice.pipeline.dialects.openai import OpenAIDialect
from sluice.pipeline.mcp_stream import RoundSink
from sluice.pipeline.outcome import usage_row
from sluice.pipeline.run import serve
from sluice.pipeline.services import Services
from sluice.types import Endpoint, ProviderRequest
from sluice.usage.event import UsageEvent

_DIALECT = OpenAIDialect(Endpoint.CHAT)
PROMPT = "Reply with one short sentence: are you there?"
MAX_TOKENS = 32


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    status: int
    answer: str
    """The reply's text, or the error message."""
    latency_ms: float
    cost_micros: int | None
    deployment: str
    request_id: str


class DeploymentProbe:
    """Sends test requests; ``record``: where their usage rows go (the usage writer)."""

    def __init__(
        self, svc: Services, *, record: Callable[[UsageEvent], None], timeout_s: float = 30.0
    ) -> None:
        self._svc = svc
        self._record = record
        self._timeout_s = timeout_s

    async def probe(self, principal: Principal, model: str, deployment: str) -> ProbeResult:
        """Raises ``GatewayError`` (404) when the model or its deployment does not exist."""
        entry = self._svc.table.resolve(model)
        dep = next((d for d in entry.deployments if d.key == deployment), None)
        if dep is None:
            raise GatewayError(
                ErrorKind.CALLER_NOT_FOUND,
                f"model {model!r} has no deployment {deployment!r}",
                code="not_found",
            )
        pinned = dataclasses.replace(
            entry,
            deployments=(dataclasses.replace(dep, retries=0),),
            fallbacks=(),
            context_window_fallbacks=(),
            content_policy_fallbacks=(),
        )
        request_id = "req_" + random_hex(10)
        started = time.perf_counter()
        arrival = Arrival(
            request_id, time.time(), started, Endpoint.CHAT.value, principal, start_trace(None)
        )
        body = {
            "model": model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": MAX_TOKENS,
        }
        req = ProviderRequest(Endpoint.CHAT, body, orjson.dumps(body), model)
        sink = RoundSink(NoClient())
        headers = [(b"x-request-id", request_id.encode())]
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        ctx = RequestContext(arrival, _DIALECT, req, pinned, sink, deadline, headers)
        outcome = await serve(self._svc, ctx)
        self._record(usage_row(arrival, outcome, request=req, want_metadata=False))
        latency_ms = (time.perf_counter() - started) * 1000
        if outcome.error is not None:
            return ProbeResult(
                False, outcome.status, outcome.error.message, latency_ms, outcome.cost_micros,
                dep.key, request_id,
            )  # fmt: skip
        return ProbeResult(
            True, 200, _text(sink.body), latency_ms, outcome.cost_micros, dep.key, request_id
        )


def _text(body: bytes) -> str:
    try:
        data = orjson.loads(body)
        return str(data["choices"][0]["message"]["content"] or "")
    except (orjson.JSONDecodeError, LookupError, TypeError):
        return body[:500].decode("utf-8", "replace")
