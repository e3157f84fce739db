"""A streamed transcript (``stream=true`` on ``/v1/audio/transcriptions``), relayed event by
event as the provider sends it: ``transcript.text.delta`` events, then one
``transcript.text.done`` with the whole text and the usage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from sluice.errors import ErrorKind, GatewayError
from sluice.providers.base import UpstreamCall
from sluice.providers.http import map_transport_error
from sluice.providers.reading import SSECap
from sluice.sse import DONE, SSESplitter, frame
from sluice.types import ProviderRequest, UnitKind, Usage

DELTA = "transcript.text.delta"
DONE_TYPE = "transcript.text.done"


def done_usage(req: ProviderRequest, event: dict[str, Any]) -> Usage:
    """The usage of a finished transcript stream: the provider's tokens or seconds, else
    the request's estimate of its seconds."""
    reserve = req.reserve
    seconds = reserve.units if reserve is not None else 0.0
    usage = event.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    if usage.get("type") == "duration" and isinstance(usage.get("seconds"), int | float):
        seconds = float(usage["seconds"])
    tokens_in = usage.get("input_tokens")
    tokens_out = usage.get("output_tokens")
    return Usage(
        tokens_in if type(tokens_in) is int else 0,
        tokens_out if type(tokens_out) is int else 0,
        units=seconds,
        unit_kind=UnitKind.AUDIO_SECONDS,
        estimated=reserve is not None and reserve.estimated and not usage,
    )


class TranscriptStream:
    """Relays a transcript event stream (see ``UpstreamStream``); complete at its
    ``transcript.text.done`` event."""

    def __init__(self, resp: aiohttp.ClientResponse, call: UpstreamCall, req: ProviderRequest):
        self._resp = resp
        self._req = req
        self._deployment = call.deployment
        self._cap = SSECap(call.limits.event_bytes, call.deployment)
        self.usage: Usage | None = None
        self.completion_chars = 0

    def _event(self, payload: bytes) -> dict[str, Any]:
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            event = None
        if not isinstance(event, dict):
            raise GatewayError(
                ErrorKind.PROVIDER_BAD_RESPONSE,
                f"deployment {self._deployment} sent a malformed transcript event",
            )
        return event

    async def __aiter__(self) -> AsyncIterator[bytes]:
        splitter = SSESplitter()
        try:
            async for data in self._resp.content.iter_any():
                self._cap.check(data)
                out: list[bytes] = []
                for payload in splitter.feed(data):
                    if payload == DONE:
                        continue
                    event = self._event(payload)
                    if event.get("type") == DELTA and isinstance(event.get("delta"), str):
                        self.completion_chars += len(event["delta"])
                    elif event.get("type") == DONE_TYPE:
                        self.usage = done_usage(self._req, event)
                    out.append(frame(payload))
                if out:
                    yield b"".join(out)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise map_transport_error(exc, deployment=self._deployment, started=True) from exc
        if self.usage is None:
            raise GatewayError(
                ErrorKind.PROVIDER_STREAM_INTERRUPTED,
                f"deployment {self._deployment} ended the transcript without finishing it",
            )

    async def aclose(self) -> None:
        self._resp.release()


class AudioStream:
    """Relays speech as it arrives: the provider's audio bytes (or its speech events, with
    ``stream_format: sse``), unchanged. Complete when the body ended; billed by the
    characters of the request's ``input``."""

    def __init__(self, resp: aiohttp.ClientResponse, call: UpstreamCall, req: ProviderRequest):
        self._resp = resp
        self._req = req
        self._deployment = call.deployment
        self.usage: Usage | None = None
        self.completion_chars = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for data in self._resp.content.iter_any():
                yield data
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise map_transport_error(exc, deployment=self._deployment, started=True) from exc
        reserve = self._req.reserve
        self.usage = Usage(
            units=0 if reserve is None else reserve.units, unit_kind=UnitKind.CHARACTERS
        )

    async def aclose(self) -> None:
        self._resp.release()
