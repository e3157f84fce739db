"""The Anthropic Messages API adapter: OpenAI chat translated, ``/v1/messages`` passed through.

Auth is ``x-api-key`` plus ``anthropic-version`` (``api_version`` in config). For the native
``MESSAGES`` capability the client's Anthropic body is forwarded with only ``model`` renamed,
and the answer (JSON or SSE events) comes back unchanged.
"""

from __future__ import annotations

from typing import Any

import orjson

from sluice.config.providers import AnthropicConfig
from sluice.config.secrets import NO_SECRETS, Secrets
from sluice.errors import ErrorKind, GatewayError
from sluice.providers.anthropic import transform
from sluice.providers.anthropic.errors import ERRORS
from sluice.providers.anthropic.stream import ChatTranslator, MessagesRelay
from sluice.providers.base import UpstreamCall, UpstreamResponse
from sluice.providers.native import io
from sluice.providers.native.openai_out import chat_completion
from sluice.types import Endpoint, ProviderRequest

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_VERSION = "2023-06-01"


def passthrough_body(req: ProviderRequest, upstream_model: str) -> bytes:
    """The client's Messages body, with ``model`` renamed when the deployment's differs."""
    if req.body.get("model") == upstream_model:
        return req.raw
    return orjson.dumps({**req.body, "model": upstream_model})


class AnthropicProvider:
    capabilities = frozenset({Endpoint.CHAT, Endpoint.MESSAGES})
    native_file_types = frozenset({"application/pdf", "text/plain"})
    """Documents its ``document`` blocks carry (base64 PDF, plain text)."""

    def __init__(
        self,
        name: str,
        config: AnthropicConfig,
        options: object = None,
        secrets: Secrets = NO_SECRETS,
    ) -> None:
        """``secrets``: unused (the API key comes with each call)."""
        self._name = name
        self._config = config
        base = config.base_url or DEFAULT_BASE_URL
        self._url = base.removesuffix("/v1") + "/v1/messages"
        self._version = config.api_version or DEFAULT_VERSION

    def _headers(self, call: UpstreamCall) -> dict[str, str]:
        key = io.api_key(self._name, self._config, call)
        return {
            "Content-Type": "application/json",
            "anthropic-version": self._version,
            **self._config.headers,
            **call.extra_headers,
            "x-api-key": key,
        }

    def _body(self, req: ProviderRequest, call: UpstreamCall) -> bytes:
        if req.endpoint is Endpoint.MESSAGES:
            return passthrough_body(req, call.upstream_model)
        if req.endpoint is Endpoint.CHAT:
            body = transform.chat_request(req.body, model=call.upstream_model, stream=req.stream)
            return orjson.dumps(body)
        raise GatewayError(ErrorKind.CALLER_UNSUPPORTED, f"{req.endpoint} is not supported")

    async def send(self, req: ProviderRequest, call: UpstreamCall) -> UpstreamResponse:
        data = self._body(req, call)
        resp = await io.post(call, self._url, data=data, headers=self._headers(call), errors=ERRORS)
        body = await io.read_body(resp, call)
        message = io.parse_object(body, call.deployment)
        return native_or_translated(req, body, message)

    async def open_stream(self, req: ProviderRequest, call: UpstreamCall) -> io.TranslatedStream:
        data = self._body(req, call)
        resp = await io.post(call, self._url, data=data, headers=self._headers(call), errors=ERRORS)
        io.expect_content_type(resp, "text/event-stream", call.deployment)
        return io.TranslatedStream(resp, call, stream_translator(req))


def native_or_translated(
    req: ProviderRequest, body: bytes, message: dict[str, Any]
) -> UpstreamResponse:
    """The answer to hand back for an Anthropic ``message`` body (shared with Vertex)."""
    if req.endpoint is Endpoint.MESSAGES:
        usage = transform.usage_from(message.get("usage"))
        chars = 0 if usage is not None else transform.messages_chars(message)
        return UpstreamResponse(body=body, usage=usage, completion_chars=chars)
    choice, usage = transform.chat_response(message)
    out = chat_completion(
        ident=str(message.get("id") or "chatcmpl"),
        model=str(message.get("model") or req.model),
        choices=[choice],
        usage=usage,
    )
    return UpstreamResponse(body=out, usage=usage, completion_chars=choice.chars)


def stream_translator(req: ProviderRequest) -> io.Translator:
    if req.endpoint is Endpoint.MESSAGES:
        return MessagesRelay()
    return ChatTranslator(include_usage=req.include_usage)
