"""The in-process mock provider: scripted answers without a network hop."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from sluice.config.providers import MockConfig
from sluice.config.secrets import NO_SECRETS, Secrets
from sluice.errors import ErrorKind, GatewayError, UpstreamError, upstream_http_error
from sluice.providers.base import UpstreamCall, UpstreamResponse
from sluice.providers.mock import caps, embed, media
from sluice.providers.mock import script as s
from sluice.sse import frame, frame_obj
from sluice.types import MEDIA_ENDPOINTS, Endpoint, ProviderRequest, Usage, usage_from_openai


@functools.lru_cache(maxsize=256)
def _script(model: str) -> s.MockScript:
    return s.MockScript.parse(model)


def _parse(call: UpstreamCall) -> s.MockScript:
    try:
        return _script(call.upstream_model)
    except s.ScriptError as exc:
        raise GatewayError(ErrorKind.GATEWAY_UNAVAILABLE, f"mock deployment: {exc}") from None


class MockProvider:
    capabilities = (
        frozenset({Endpoint.CHAT, Endpoint.COMPLETIONS, Endpoint.EMBEDDINGS}) | MEDIA_ENDPOINTS
    )

    def __init__(
        self,
        name: str,
        config: MockConfig,
        options: object = None,
        secrets: Secrets = NO_SECRETS,
    ) -> None:
        """``secrets``: unused (the API key comes with each call)."""
        self._name = name
        self._flaky = s.FlakyCounter()

    async def _start(self, script: s.MockScript, call: UpstreamCall) -> None:
        if script.hang:
            await asyncio.sleep(call.timeouts.ttfb_s)
            raise UpstreamError(
                ErrorKind.PROVIDER_TIMEOUT, f"deployment {call.deployment} timed out"
            )
        status = self._flaky.fails(call.upstream_model, script)
        if script.reset and (status is not None or script.flaky == 0):
            raise UpstreamError(
                ErrorKind.PROVIDER_UNREACHABLE,
                f"deployment {call.deployment} closed the connection before answering",
            )
        delay = script.first_delay_s
        if delay > call.timeouts.ttfb_s:
            await asyncio.sleep(call.timeouts.ttfb_s)
            raise UpstreamError(
                ErrorKind.PROVIDER_TIMEOUT, f"deployment {call.deployment} timed out"
            )
        if delay:
            await asyncio.sleep(delay)
        if status is not None:
            raise upstream_http_error(
                status,
                s.error_body(status)["error"]["message"],
                retry_after_s=script.retry_after_s,
                code=script.error_code,
            )

    async def send(self, req: ProviderRequest, call: UpstreamCall) -> UpstreamResponse:
        script = _parse(call)
        await self._start(script, call)
        body = dict(req.body)
        body["model"] = req.model
        created = int(time.time())
        try:
            if req.endpoint in MEDIA_ENDPOINTS:
                made = media.answer(
                    req.endpoint,
                    body,
                    None if req.upload is None else req.upload.data,
                    rid=call.request_id,
                    created=created,
                )
                return UpstreamResponse(made.body, made.usage, content_type=made.content_type)
            if req.endpoint is Endpoint.EMBEDDINGS:
                data = embed.embeddings(script, body)
            elif req.endpoint is Endpoint.COMPLETIONS:
                data = s.text_completion(script, body, rid=call.request_id, created=created)
            else:
                data = s.chat_completion(script, body, rid=call.request_id, created=created)
        except caps.MockRequestError as exc:
            raise upstream_http_error(400, str(exc)) from None
        usage = usage_from_openai(data.get("usage"))
        chars = 0
        if usage is None and req.endpoint is not Endpoint.EMBEDDINGS:
            answer = data["choices"][0]
            chars = len(answer.get("text") or (answer.get("message") or {}).get("content") or "")
        return UpstreamResponse(body=orjson.dumps(data), usage=usage, completion_chars=chars)

    async def open_stream(
        self, req: ProviderRequest, call: UpstreamCall
    ) -> MockStream | MockTranscriptStream:
        if req.endpoint is Endpoint.EMBEDDINGS:
            raise GatewayError(ErrorKind.CALLER_BAD_REQUEST, "embeddings cannot stream")
        script = _parse(call)
        status = self._flaky.fails(call.upstream_model, script)
        if status is not None:
            raise upstream_http_error(
                status,
                s.error_body(status)["error"]["message"],
                retry_after_s=script.retry_after_s,
                code=script.error_code,
            )
        if req.endpoint is Endpoint.SPEECH:
            try:
                spoken = media.speech(req.body)
            except caps.MockRequestError as exc:
                raise upstream_http_error(400, str(exc)) from None
            return MockTranscriptStream(
                [
                    spoken.body[i : i + _AUDIO_PIECE]
                    for i in range(0, len(spoken.body), _AUDIO_PIECE)
                ],
                spoken.usage,
                framed=False,
            )
        if req.endpoint in MEDIA_ENDPOINTS:
            try:
                events, heard = media.transcript_events(
                    req.body, None if req.upload is None else req.upload.data
                )
            except caps.MockRequestError as exc:
                raise upstream_http_error(400, str(exc)) from None
            return MockTranscriptStream(events, heard)
        body = dict(req.body)
        body["model"] = req.model
        try:
            chunks, usage = s.stream_chunks(
                script,
                body,
                rid=call.request_id,
                created=int(time.time()),
                chat=req.endpoint is Endpoint.CHAT,
            )
        except caps.MockRequestError as exc:
            raise upstream_http_error(400, str(exc)) from None
        return MockStream(script, (chunks, usage), req, call)


class MockStream:
    def __init__(
        self,
        script: s.MockScript,
        planned: tuple[list[dict[str, Any]], dict[str, Any] | None],
        req: ProviderRequest,
        call: UpstreamCall,
    ) -> None:
        self._script = script
        self._planned = planned
        self._req = req
        self._call = call
        self.usage: Usage | None = None
        self.completion_chars = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        script, call = self._script, self._call
        chunks, usage = self._planned
        idle = call.timeouts.idle_s
        if script.first_delay_s > call.timeouts.ttfb_s:
            await asyncio.sleep(call.timeouts.ttfb_s)
            raise UpstreamError(
                ErrorKind.PROVIDER_TIMEOUT, f"deployment {call.deployment} timed out"
            )
        if script.first_delay_s:
            await asyncio.sleep(script.first_delay_s)
        content = len(chunks) - 1
        for i, chunk in enumerate(chunks):
            if i and script.chunk_delay_ms:
                await asyncio.sleep(min(script.chunk_delay_ms / 1000, idle))
                if script.chunk_delay_ms / 1000 > idle:
                    raise UpstreamError(ErrorKind.PROVIDER_TIMEOUT, "the deployment went silent")
            if script.cut is not None and i >= script.cut and i < content:
                raise UpstreamError(
                    ErrorKind.PROVIDER_STREAM_INTERRUPTED,
                    f"the connection to deployment {call.deployment} broke mid-answer",
                )
            if script.stall is not None and i >= script.stall and i < content:
                await asyncio.sleep(idle)
                raise UpstreamError(ErrorKind.PROVIDER_TIMEOUT, "the deployment went silent")
            if script.malformed is not None and i == script.malformed:
                raise GatewayError(
                    ErrorKind.PROVIDER_BAD_RESPONSE, "the provider sent a malformed stream chunk"
                )
            self.completion_chars += _chars(chunk)
            yield frame_obj(chunk)
        if usage is not None:
            self.usage = usage_from_openai(usage["usage"])
            if self._req.include_usage:
                yield frame(orjson.dumps(usage))

    async def aclose(self) -> None:
        return None


_AUDIO_PIECE = 16 * 1024


class MockTranscriptStream:
    """A transcript streamed a word per event, or speech audio a piece at a time
    (``framed=False``); its usage is known once it is done."""

    def __init__(self, events: list[bytes], usage: Usage, *, framed: bool = True) -> None:
        self._events = events
        self._usage = usage
        self._framed = framed
        self.usage: Usage | None = None
        self.completion_chars = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self._events:
            yield frame(event) if self._framed else event
        self.usage = self._usage

    async def aclose(self) -> None:
        return None


def _chars(chunk: dict[str, object]) -> int:
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices:
        return 0
    choice = choices[0]
    delta = choice.get("delta") or {}
    text = delta.get("content") if isinstance(delta, dict) else None
    if text is None:
        text = choice.get("text")
    if isinstance(delta, dict) and delta.get("tool_calls"):
        fn = delta["tool_calls"][0].get("function") or {}
        text = fn.get("arguments") or ""
    return len(text) if isinstance(text, str) else 0
