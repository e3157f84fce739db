"""The OpenAI-compatible family (OpenAI, Azure, Ollama, vLLM, Groq, ...): one adapter whose
differences (base URL, auth header, Azure paths) come from a registry row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from sluice.config.providers import OpenAIConfig
from sluice.config.secrets import NO_SECRETS, Secrets
from sluice.errors import ErrorKind, GatewayError
from sluice.providers.base import UpstreamCall, UpstreamResponse
from sluice.providers.http import map_transport_error, raise_for_upstream_status
from sluice.providers.media_stream import AudioStream, TranscriptStream
from sluice.providers.media_wire import MEDIA_PATHS, answer_usage, form_data, json_body
from sluice.providers.native import io
from sluice.providers.reading import SSECap
from sluice.providers.registry import OpenAIFamilyRow
from sluice.providers.responses_stream import ResponsesEventStream
from sluice.providers.sse import ChunkInspector
from sluice.sse import DONE, SSESplitter
from sluice.types import MEDIA_ENDPOINTS, Endpoint, ProviderRequest, Usage, usage_from_openai

_PATHS = {
    Endpoint.CHAT: "/chat/completions",
    Endpoint.COMPLETIONS: "/completions",
    Endpoint.EMBEDDINGS: "/embeddings",
    Endpoint.RESPONSES: "/responses",
    **MEDIA_PATHS,
}
_BASE_CAPABILITIES = frozenset({Endpoint.CHAT, Endpoint.COMPLETIONS, Endpoint.EMBEDDINGS})
_RESPONSES = Endpoint.RESPONSES  # read per request: a module constant is cheaper than the class


def upstream_body(req: ProviderRequest, upstream_model: str, *, stream_usage: bool) -> bytes:
    """The body to send: the client's bytes untouched unless the model name changes or the
    stream must ask for usage."""
    want_usage = req.stream and stream_usage and not req.include_usage
    if upstream_model == req.model and not want_usage:
        return req.raw
    body = dict(req.body)
    body["model"] = upstream_model
    if want_usage:
        options = body.get("stream_options")
        body["stream_options"] = {
            **(options if isinstance(options, dict) else {}),
            "include_usage": True,
        }
    return orjson.dumps(body)


def completion_chars(data: dict[str, Any]) -> int:
    total = 0
    for choice in data.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        if isinstance(message, dict):
            content = message.get("content")
            total += len(content) if isinstance(content, str) else 0
            for call in message.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    total += len(fn.get("arguments") or "")
        elif isinstance(choice.get("text"), str):
            total += len(choice["text"])
    return total


class OpenAICompatibleProvider:
    def __init__(
        self,
        name: str,
        config: OpenAIConfig,
        row: OpenAIFamilyRow | None,
        secrets: Secrets = NO_SECRETS,
    ) -> None:
        """``secrets``: unused (the API key comes with each call)."""
        assert row is not None
        self.capabilities = (
            _BASE_CAPABILITIES
            | ({Endpoint.RESPONSES} if row.responses_api else set())
            | {Endpoint(name) for name in row.media}
        )
        base_url = config.base_url or row.default_base_url
        if base_url is None:
            raise ValueError(f"provider {name!r}: base_url is required for {config.type}")
        self._name = name
        self._row = row
        self._base = base_url
        self._api_version = config.api_version or row.default_api_version
        self._config = config
        self._timeouts = aiohttp.ClientTimeout(
            total=None,
            sock_connect=config.timeouts.connect_s,
            sock_read=config.timeouts.idle_s,
        )
        self._secret: str | None = None
        self._headers = self._headers_for(None)

    def _auth_headers(self, credential: str | None) -> dict[str, str]:
        """Headers for the key the core resolved for this call (kept while it is the same)."""
        if credential is None and self._row.key_required:
            ref = repr(self._config.api_key) if self._config.api_key else "api_key"
            raise GatewayError(
                ErrorKind.GATEWAY_UNAVAILABLE,
                f"provider {self._name!r} has no credential ({ref} is not set)",
            )
        if credential != self._secret:
            self._headers = self._headers_for(credential)
            self._secret = credential
        return self._headers

    def _headers_for(self, secret: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **self._config.headers}
        if secret and self._row.auth == "bearer":
            headers["Authorization"] = f"Bearer {secret}"
        elif secret and self._row.auth == "api-key":
            headers["api-key"] = secret
        return headers

    def _url(self, endpoint: Endpoint, upstream_model: str) -> str:
        path = _PATHS[endpoint]
        if self._row.azure_paths:
            return (
                f"{self._base}/openai/deployments/{upstream_model}{path}"
                f"?api-version={self._api_version}"
            )
        return self._base + path

    async def _post(self, req: ProviderRequest, call: UpstreamCall) -> aiohttp.ClientResponse:
        if req.endpoint not in self.capabilities:
            raise GatewayError(
                ErrorKind.CALLER_UNSUPPORTED, f"{req.endpoint} is not supported by this model"
            )
        headers = self._auth_headers(call.credential)
        if call.extra_headers:
            headers = {**headers, **call.extra_headers}
        data: bytes | aiohttp.FormData
        if req.upload is not None:  # multipart: aiohttp writes the content type
            headers = {k: v for k, v in headers.items() if k != "Content-Type"}
            data = form_data(req, call.upstream_model)
        elif req.endpoint in MEDIA_ENDPOINTS:
            data = json_body(req, call.upstream_model)
        else:
            stream_usage = self._row.stream_usage and req.endpoint is not _RESPONSES
            data = upstream_body(req, call.upstream_model, stream_usage=stream_usage)
        url = self._url(req.endpoint, call.upstream_model)
        ttfb = call.timeouts.ttfb_s
        try:
            if ttfb < call.timeouts.idle_s:
                async with asyncio.timeout(ttfb):
                    resp = await call.session.post(
                        url, data=data, headers=headers, timeout=self._timeouts
                    )
            else:
                resp = await call.session.post(
                    url, data=data, headers=headers, timeout=self._timeouts
                )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise map_transport_error(exc, deployment=call.deployment, started=False) from exc
        try:
            await raise_for_upstream_status(resp)
        except BaseException:
            resp.release()
            raise
        return resp

    async def send(self, req: ProviderRequest, call: UpstreamCall) -> UpstreamResponse:
        resp = await self._post(req, call)
        if req.endpoint in MEDIA_ENDPOINTS:
            return await _media_answer(req, resp, call)
        body = await io.read_body(resp, call)
        data = io.parse_object(body, call.deployment)
        usage = usage_from_openai(data.get("usage"))
        chars = 0 if usage is not None else completion_chars(data)
        return UpstreamResponse(body=body, usage=usage, completion_chars=chars)

    async def open_stream(
        self, req: ProviderRequest, call: UpstreamCall
    ) -> OpenAIStream | ResponsesEventStream | TranscriptStream | AudioStream:
        resp = await self._post(req, call)
        if req.endpoint is Endpoint.SPEECH:
            return AudioStream(resp, call, req)
        ctype = resp.headers.get("Content-Type", "")
        if not ctype.startswith("text/event-stream"):
            resp.release()
            raise GatewayError(
                ErrorKind.PROVIDER_BAD_RESPONSE,
                f"deployment {call.deployment} did not answer with an event stream",
            )
        if req.endpoint is _RESPONSES:
            return ResponsesEventStream(resp, call)
        if req.endpoint in MEDIA_ENDPOINTS:
            return TranscriptStream(resp, call, req)
        return OpenAIStream(resp, call, include_usage=req.include_usage)


async def _media_answer(
    req: ProviderRequest, resp: aiohttp.ClientResponse, call: UpstreamCall
) -> UpstreamResponse:
    """A media answer as the provider sent it: JSON (transcript objects, images, rerank
    results) or its own media type (audio, a transcript as text, SRT or WebVTT)."""
    body = await io.read_body(resp, call)
    ctype = resp.headers.get("Content-Type", "application/octet-stream")
    if ctype.startswith("application/json"):
        data = io.parse_object(body, call.deployment)
        return UpstreamResponse(body=body, usage=answer_usage(req, data))
    return UpstreamResponse(body=body, usage=answer_usage(req, None), content_type=ctype)


class OpenAIStream:
    """Relays an OpenAI SSE stream, checking every chunk (see ``UpstreamStream``).

    The stream is complete at ``[DONE]``, or when the body ended after a ``finish_reason``
    and the usage chunk (some servers never send ``[DONE]``). A malformed chunk fails the
    stream after the valid chunks read with it were relayed."""

    def __init__(self, resp: aiohttp.ClientResponse, call: UpstreamCall, *, include_usage: bool):
        self._resp = resp
        self._deployment = call.deployment
        self._cap = SSECap(call.limits.event_bytes, call.deployment)
        self._inspector = ChunkInspector(include_usage=include_usage)

    @property
    def usage(self) -> Usage | None:
        return self._inspector.usage

    @property
    def completion_chars(self) -> int:
        return self._inspector.completion_chars

    async def __aiter__(self) -> AsyncIterator[bytes]:
        splitter = SSESplitter()
        relay = self._inspector.relay
        check = self._cap.check
        try:
            async for data in self._resp.content.iter_any():
                check(data)
                out: list[bytes] = []
                for payload in splitter.feed(data):
                    if payload == DONE:
                        if out:
                            yield b"".join(out)
                        return
                    try:
                        event = relay(payload)
                    except GatewayError:
                        if out:  # the valid chunks before the bad one still go out
                            yield b"".join(out)
                        raise
                    if event is not None:
                        out.append(event)
                if out:
                    yield b"".join(out) if len(out) > 1 else out[0]
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise map_transport_error(exc, deployment=self._deployment, started=True) from exc
        if self._inspector.finished and not splitter.pending.strip():
            return
        raise GatewayError(
            ErrorKind.PROVIDER_STREAM_INTERRUPTED,
            f"deployment {self._deployment} ended the stream without finishing it",
        )

    async def aclose(self) -> None:
        self._resp.release()
