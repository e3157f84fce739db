"""The Gemini API (Google AI Studio) adapter: ``generateContent`` for chat, ``embedContent``
and ``batchEmbedContents`` for embeddings, Imagen's ``predict`` for image generation
(:mod:`sluice.providers.gemini.imagen`), the API key in ``x-goog-api-key``.

:func:`generate` and :func:`open_generate_stream` are the chat I/O that Vertex AI shares.
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from sluice.config.providers import GeminiConfig
from sluice.config.secrets import NO_SECRETS, Secrets
from sluice.errors import ErrorKind, GatewayError
from sluice.providers.base import UpstreamCall, UpstreamResponse
from sluice.providers.gemini import embed, transform
from sluice.providers.gemini.errors import ERRORS
from sluice.providers.gemini.imagen import generate_images
from sluice.providers.gemini.stream import GeminiTranslator
from sluice.providers.native import io
from sluice.providers.native.openai_out import chat_completion, embedding_list
from sluice.types import Endpoint, ProviderRequest

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_VERSION = "v1beta"


async def generate(
    req: ProviderRequest, call: UpstreamCall, *, url: str, headers: dict[str, str]
) -> UpstreamResponse:
    data = orjson.dumps(transform.generate_request(req.body))
    resp = await io.post(call, url + ":generateContent", data=data, headers=headers, errors=ERRORS)
    answer = await io.read_json(resp, call)
    choices, usage = transform.generate_response(answer)
    body = chat_completion(
        ident=str(answer.get("responseId") or "chatcmpl"),
        model=str(answer.get("modelVersion") or call.upstream_model),
        choices=choices,
        usage=usage,
    )
    return UpstreamResponse(body=body, usage=usage, completion_chars=sum(c.chars for c in choices))


async def open_generate_stream(
    req: ProviderRequest, call: UpstreamCall, *, url: str, headers: dict[str, str]
) -> io.TranslatedStream:
    data = orjson.dumps(transform.generate_request(req.body))
    resp = await io.post(
        call, url + ":streamGenerateContent?alt=sse", data=data, headers=headers, errors=ERRORS
    )
    io.expect_content_type(resp, "text/event-stream", call.deployment)
    translator = GeminiTranslator(include_usage=req.include_usage)
    return io.TranslatedStream(resp, call, translator)


def model_path(model: str) -> str:
    """``models/{model}``; tuned models and full resource names are used as given."""
    if "/" in model:
        return model
    return "models/" + quote(model, safe="")


class GeminiProvider:
    capabilities = frozenset({Endpoint.CHAT, Endpoint.EMBEDDINGS, Endpoint.IMAGES})
    native_file_types = frozenset({"application/pdf", "text/plain"})
    """Documents its ``inlineData`` parts carry."""

    def __init__(
        self,
        name: str,
        config: GeminiConfig,
        options: object = None,
        secrets: Secrets = NO_SECRETS,
    ) -> None:
        """``secrets``: unused (the API key comes with each call)."""
        self._name = name
        self._config = config
        base = config.base_url or DEFAULT_BASE_URL
        self._root = f"{base}/{config.api_version or DEFAULT_VERSION}"

    def _headers(self, call: UpstreamCall) -> dict[str, str]:
        key = io.api_key(self._name, self._config, call)
        return {
            "Content-Type": "application/json",
            **self._config.headers,
            **call.extra_headers,
            "x-goog-api-key": key,
        }

    async def send(self, req: ProviderRequest, call: UpstreamCall) -> UpstreamResponse:
        path = model_path(call.upstream_model)
        url = f"{self._root}/{path}"
        if req.endpoint is Endpoint.CHAT:
            return await generate(req, call, url=url, headers=self._headers(call))
        if req.endpoint is Endpoint.IMAGES:  # Imagen
            return await generate_images(req, call, url=url, headers=self._headers(call))
        if req.endpoint is not Endpoint.EMBEDDINGS:
            raise GatewayError(ErrorKind.CALLER_UNSUPPORTED, f"{req.endpoint} is not supported")
        method, body = embed.studio_request(req.body, path)
        resp = await io.post(
            call,
            f"{url}:{method}",
            data=orjson.dumps(body),
            headers=self._headers(call),
            errors=ERRORS,
        )
        vectors, usage = embed.studio_response(await io.read_json(resp, call))
        out = embedding_list(
            vectors,
            model=call.upstream_model,
            usage=usage,
            encoding_format=req.body.get("encoding_format"),
        )
        return UpstreamResponse(body=out, usage=usage)

    async def open_stream(self, req: ProviderRequest, call: UpstreamCall) -> io.TranslatedStream:
        if req.endpoint is not Endpoint.CHAT:
            raise GatewayError(ErrorKind.CALLER_UNSUPPORTED, f"{req.endpoint} cannot stream")
        url = f"{self._root}/{model_path(call.upstream_model)}"
        return await open_generate_stream(req, call, url=url, headers=self._headers(call))
