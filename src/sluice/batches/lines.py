"""One batch line through the pipeline's one entry (:func:`sluice.pipeline.run.serve`), as
a live request of the batch's key would go: access, limits and budget, routing with retries
and fallbacks, the relay, settle. The answer goes to a :class:`LineSink`; the verdict says
whether the line is done (its output line and usage row) or must wait and run again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import Enum

import orjson

from sluice.auth.principal import Principal
from sluice.batches.model import line_request_id
from sluice.errors import ErrorKind, GatewayError
from sluice.ids import random_hex
from sluice.observability.tracing import start_trace
from sluice.pipeline.access import admit
from sluice.pipeline.context import Arrival, RequestContext
from sluice.pipeline.dialects.base import Dialect
from sluice.pipeline.dialects.openai import OpenAIDialect
from sluice.pipeline.dialects.responses import ResponsesDialect
from sluice.pipeline.outcome import Outcome, usage_row
from sluice.pipeline.run import serve
from sluice.pipeline.services import Services
from sluice.pipeline.sink import Headers
from sluice.storage.base import ResponseRepository
from sluice.storage.batches import ClaimedLine, StoredBatch
from sluice.types import Endpoint, ProviderRequest
from sluice.usage.event import UsageEvent


class LineSink:
    """Keeps a line's answer (a batch line is never streamed)."""

    __slots__ = ("body", "ended", "gone", "started", "status")

    def __init__(self) -> None:
        self.started = self.ended = self.gone = False
        self.status = 0
        self.body = b""

    async def json(self, status: int, body: bytes, headers: Headers) -> None:
        self.started = self.ended = True
        self.status, self.body = status, body

    async def error(self, exc: GatewayError, body: bytes, headers: Headers) -> None:
        self.started = self.ended = True
        self.status, self.body = exc.status, body

    async def start_stream(self, headers: Headers) -> None:
        self.started = True
        self.status = 200

    async def chunk(self, data: bytes) -> None:
        self.body += data

    async def end(self, data: bytes = b"") -> None:
        self.ended = True
        self.body += data


class Next(Enum):
    DONE = "done"
    """The line has its result (output or error file) and its usage row."""
    BUDGET = "budget"
    """Refused for budget before any upstream call: the batch pauses."""
    RATE_LIMIT = "rate_limit"
    """Refused by a rate limit (the gateway's, or the provider's after every retry)."""
    AGAIN = "again"
    """Not run to its end (the process is shutting down): run it again later."""


@dataclass(frozen=True, slots=True)
class Verdict:
    next: Next
    output: str = ""
    """The output or error file's line (JSON), when done."""
    failed: bool = False
    """The line goes to the error file."""
    row: UsageEvent | None = None
    """The line's one usage row, when done (tagged with the batch id)."""
    retry_after_s: float | None = None


def dialects(store: ResponseRepository) -> dict[Endpoint, Dialect]:
    """The dialect of each batch endpoint's lines."""
    return {
        Endpoint.CHAT: OpenAIDialect(Endpoint.CHAT),
        Endpoint.COMPLETIONS: OpenAIDialect(Endpoint.COMPLETIONS),
        Endpoint.EMBEDDINGS: OpenAIDialect(Endpoint.EMBEDDINGS),
        Endpoint.RESPONSES: ResponsesDialect(store),
    }


def result_line(custom_id: str, *, status: int, request_id: str, body: bytes) -> str:
    """An output (or error) file line as OpenAI writes it."""
    return orjson.dumps(
        {
            "id": "batch_req_" + random_hex(12),
            "custom_id": custom_id,
            "response": {
                "status_code": status,
                "request_id": request_id,
                "body": orjson.Fragment(body or b"null"),
            },
            "error": None,
        }
    ).decode()


def error_line(custom_id: str, *, code: str, message: str) -> str:
    """An error file line for a line that got no response (expired, refused before running)."""
    return orjson.dumps(
        {
            "id": "batch_req_" + random_hex(12),
            "custom_id": custom_id,
            "response": None,
            "error": {"code": code, "message": message},
        }
    ).decode()


async def run_line(
    svc: Services,
    dialect: Dialect,
    batch: StoredBatch,
    line: ClaimedLine,
    principal: Principal,
) -> Verdict:
    """Serve one line as ``principal``; never raises (but ``CancelledError`` before the
    pipeline was entered)."""
    request_id = line_request_id(batch.id, line.line)
    arrival = Arrival(
        request_id, time.time(), time.perf_counter(), str(dialect.endpoint), principal,
        start_trace(None),
    )  # fmt: skip
    sink = LineSink()
    req: ProviderRequest | None = None
    try:
        req = dialect.parse(line.body.encode())
        prepare = getattr(dialect, "prepare", None)
        if prepare is not None:
            req = await prepare(req, principal)
        ctx = RequestContext(
            arrival,
            dialect,
            req,
            admit(svc.table, principal, req),
            sink,
            asyncio.get_running_loop().time() + svc.total_timeout_s,
            [(b"x-request-id", request_id.encode())],
        )
        outcome = await serve(svc, ctx)
    except GatewayError as exc:
        outcome = Outcome(exc)
        sink.status, sink.body = exc.status, dialect.error(exc)
    return _verdict(batch, line, arrival, outcome, sink=sink, req=req)


def _verdict(
    batch: StoredBatch,
    line: ClaimedLine,
    arrival: Arrival,
    outcome: Outcome,
    *,
    sink: LineSink,
    req: ProviderRequest | None,
) -> Verdict:
    error = outcome.error
    if error is not None:
        wait = _wait(error, outcome)
        if wait is not None:
            return Verdict(wait, retry_after_s=error.retry_after_s)
    row = usage_row(arrival, outcome, request=req, want_metadata=False)
    row.batch_id = batch.id
    output = result_line(
        line.custom_id, status=sink.status or outcome.status, request_id=arrival.request_id,
        body=sink.body,
    )  # fmt: skip
    return Verdict(Next.DONE, output, failed=error is not None, row=row)


def _wait(error: GatewayError, outcome: Outcome) -> Next | None:
    """Whether a failed line runs again later instead of failing, and why."""
    kind = error.kind
    if kind is ErrorKind.POLICY_BUDGET_EXCEEDED:
        return Next.BUDGET
    if kind in (ErrorKind.POLICY_RATE_LIMITED, ErrorKind.PROVIDER_RATE_LIMITED):
        return Next.RATE_LIMIT
    if kind in (ErrorKind.GATEWAY_SHUTTING_DOWN, ErrorKind.CLIENT_DISCONNECTED):
        return Next.AGAIN
    return None
