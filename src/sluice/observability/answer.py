"""What every data-plane answer says about itself: response headers and the opt-in
``sluice`` metadata object.

Headers (success answers): ``x-sluice-upstream-ms`` (time spent waiting on upstream calls,
every attempt; for a stream: until its first chunk), ``x-sluice-overhead-ms`` (the rest of
the time until the headers left: the gateway's own work, retry back-off included),
``x-sluice-cache`` (``none``: no response cache is configured; else ``hit``, ``miss``,
``store`` or ``bypass``, docs/caching.md),
and on complete JSON answers ``x-sluice-cost-usd``. A stream's headers leave before its cost
is known: the cost travels in the stream's metadata chunk. ``x-request-id`` and
``x-sluice-trace-id`` are on every answer, errors included.

The metadata object (OpenAI-shaped answers only) is
``{"provider", "deployment", "latency_ms", "upstream_ms", "cost_usd", "cache_hit",
"request_id", "trace_id"}``: a top-level ``"sluice"`` key of a JSON answer, or a last
``chat.completion.chunk`` with empty ``choices`` right before ``data: [DONE]``.
"""

from __future__ import annotations

from typing import Any

import orjson

CACHE_STATUS = b"none"
METADATA_HEADER = b"x-sluice-metadata"
TRACE_HEADER = b"x-sluice-trace-id"
DONE_EVENT = b"data: [DONE]\n\n"

Headers = list[tuple[bytes, bytes]]


def usd(micros: int) -> str:
    """Micro-dollars as a USD decimal string (``0.000123``)."""
    return f"{micros / 1_000_000:.6f}"


def _ms(value: float) -> bytes:
    return str(round(value)).encode()


def json_headers(
    cost_micros: int, *, upstream_ms: float, elapsed_ms: float, cache: bytes | None = CACHE_STATUS
) -> Headers:
    """Headers of a complete answer (the cost is known); ``cache``: the ``x-sluice-cache``
    value (``None``: the caller adds its own)."""
    overhead_ms = elapsed_ms - upstream_ms
    headers = [  # usd() and _ms() written out: this runs on every answer
        (b"x-sluice-cost-usd", f"{cost_micros / 1_000_000:.6f}".encode()),
        (b"x-sluice-upstream-ms", str(round(upstream_ms)).encode()),
        (b"x-sluice-overhead-ms", str(round(overhead_ms if overhead_ms > 0.0 else 0.0)).encode()),
    ]
    if cache is not None:
        headers.append((b"x-sluice-cache", cache))
    return headers


def stream_headers(
    upstream_ms: float, *, elapsed_ms: float, cache: bytes | None = CACHE_STATUS
) -> Headers:
    """Headers of a stream, sent with its first chunk (no cost yet)."""
    headers = [
        (b"x-sluice-upstream-ms", _ms(upstream_ms)),
        (b"x-sluice-overhead-ms", _ms(max(0.0, elapsed_ms - upstream_ms))),
    ]
    if cache is not None:
        headers.append((b"x-sluice-cache", cache))
    return headers


def metadata(
    *,
    provider: str,
    deployment: str,
    cost_micros: int,
    request_id: str,
    trace_id: str,
    latency_ms: float,
    upstream_ms: float,
    cache_hit: bool = False,
) -> dict[str, Any]:
    return {
        "provider": provider,
        "deployment": deployment,
        "latency_ms": round(latency_ms, 1),
        "upstream_ms": round(upstream_ms, 1),
        "cost_usd": cost_micros / 1_000_000,
        "cache_hit": cache_hit,
        "request_id": request_id,
        "trace_id": trace_id,
    }


def with_metadata(body: bytes, meta: dict[str, Any]) -> bytes:
    """``body`` (a JSON object) with a top-level ``"sluice"`` key; unchanged when it is not
    an object. Spliced as bytes: the answer is not parsed again."""
    end = body.rstrip()
    if not end.endswith(b"}"):
        return body
    inner = end[:-1].rstrip()
    sep = b"" if inner.endswith(b"{") else b","
    return inner + sep + b'"sluice":' + orjson.dumps(meta) + b"}"


def metadata_chunk(
    meta: dict[str, Any], *, request_id: str, created_at: float, model: str
) -> bytes:
    """The stream's metadata chunk; ``model``: the name the client asked for."""
    chunk = {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": int(created_at),
        "model": model,
        "choices": [],
        "sluice": meta,
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def with_metadata_chunk(tail: bytes, chunk: bytes) -> bytes:
    """The stream's last bytes with the metadata chunk right before ``data: [DONE]``."""
    if tail.endswith(DONE_EVENT):
        return tail[: -len(DONE_EVENT)] + chunk + DONE_EVENT
    return tail + chunk


def wants_metadata(value: bytes | None, *, default: bool) -> bool | None:
    """The ``x-sluice-metadata`` request header: ``true``/``1``/``yes``, ``false``/``0``/
    ``no``; absent → ``default``; anything else → ``None`` (the caller answers 400)."""
    if value is None:
        return default
    v = value.strip().lower()
    if v in (b"true", b"1", b"yes", b"on"):
        return True
    if v in (b"false", b"0", b"no", b"off"):
        return False
    return None
