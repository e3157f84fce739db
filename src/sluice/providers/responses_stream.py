"""Relaying a Responses API event stream unchanged, reading its usage and its end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from sluice.errors import ErrorKind, GatewayError, UpstreamError
from sluice.providers.base import UpstreamCall
from sluice.providers.http import map_transport_error
from sluice.providers.reading import SSECap
from sluice.types import Usage, usage_from_openai

_TERMINAL = frozenset({"response.completed", "response.incomplete"})


class ResponsesEventStream:
    """Yields the upstream's SSE bytes as they come (``event:`` lines included). Each event's
    ``data`` is parsed to find the final response (usage) and failures, which raise."""

    def __init__(self, resp: aiohttp.ClientResponse, call: UpstreamCall) -> None:
        self._resp = resp
        self._deployment = call.deployment
        self._cap = SSECap(call.limits.event_bytes, call.deployment)
        self.usage: Usage | None = None
        self.completion_chars = 0
        self.final: dict[str, Any] | None = None
        """The response object from the terminal event."""

    def _inspect(self, event: bytes) -> None:
        data = b"\n".join(
            line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")
        )
        if not data:
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise GatewayError(
                ErrorKind.PROVIDER_BAD_RESPONSE, "the provider sent a malformed stream event"
            ) from None
        kind = payload.get("type") if isinstance(payload, dict) else None
        if kind == "response.output_text.delta":
            self.completion_chars += len(payload.get("delta") or "")
        elif kind in _TERMINAL:
            self.final = payload.get("response") or {}
            self.usage = usage_from_openai(self.final.get("usage"))
        elif kind in ("error", "response.failed"):
            error = payload.get("error") or (payload.get("response") or {}).get("error") or {}
            message = error.get("message") if isinstance(error, dict) else None
            raise UpstreamError(
                ErrorKind.PROVIDER_STREAM_INTERRUPTED,
                str(message or f"deployment {self._deployment} failed mid-answer"),
            )

    async def __aiter__(self) -> AsyncIterator[bytes]:
        buffer = b""
        check = self._cap.check
        try:
            async for data in self._resp.content.iter_any():
                check(data)
                buffer += data.replace(b"\r\n", b"\n") if b"\r" in data else data
                *events, buffer = buffer.split(b"\n\n")
                for i, event in enumerate(events):
                    try:
                        self._inspect(event)
                    except GatewayError:
                        if i:  # the valid events before the bad one still go out
                            yield b"\n\n".join(events[:i]) + b"\n\n"
                        raise
                if events:
                    yield b"\n\n".join(events) + b"\n\n"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise map_transport_error(exc, deployment=self._deployment, started=True) from exc
        if self.final is None:
            raise GatewayError(
                ErrorKind.PROVIDER_STREAM_INTERRUPTED,
                f"deployment {self._deployment} ended the stream without finishing it",
            )

    async def aclose(self) -> None:
        self._resp.release()
