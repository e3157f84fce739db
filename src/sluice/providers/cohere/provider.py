"""The Cohere v2 adapter: ``/v2/chat`` (streaming and tools), ``/v2/embed`` and
``/v2/rerank`` (relayed as it is: the gateway's rerank format is Cohere's), Bearer auth.
Errors are ``{"message": ...}`` with the HTTP status."""

from __future__ import annotations

import orjson

from sluice.config.providers import CohereConfig
from sluice.config.secrets import NO_SECRETS, Secrets
from sluice.errors import ErrorKind, GatewayError
from sluice.providers.base import UpstreamCall, UpstreamResponse
from sluice.providers.cohere import transform
from sluice.providers.cohere.stream import CohereTranslator
from sluice.providers.media_wire import answer_usage, json_body
from sluice.providers.native import io
from sluice.providers.native.openai_out import chat_completion, embedding_list
from sluice.types import Endpoint, ProviderRequest

DEFAULT_BASE_URL = "https://api.cohere.com"
ERRORS = io.ErrorMap()


class CohereProvider:
    capabilities = frozenset({Endpoint.CHAT, Endpoint.EMBEDDINGS, Endpoint.RERANK})

    def __init__(
        self,
        name: str,
        config: CohereConfig,
        options: object = None,
        secrets: Secrets = NO_SECRETS,
    ) -> None:
        """``secrets``: unused (the API key comes with each call)."""
        self._name = name
        self._config = config
        self._base = (config.base_url or DEFAULT_BASE_URL).removesuffix("/v2")

    def _headers(self, call: UpstreamCall, *, stream: bool = False) -> dict[str, str]:
        key = io.api_key(self._name, self._config, call)
        return {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
            **self._config.headers,
            **call.extra_headers,
            "Authorization": f"Bearer {key}",
        }

    async def send(self, req: ProviderRequest, call: UpstreamCall) -> UpstreamResponse:
        model = call.upstream_model
        if req.endpoint is Endpoint.EMBEDDINGS:
            data = orjson.dumps(transform.embed_request(req.body, model=model))
            resp = await io.post(
                call,
                self._base + "/v2/embed",
                data=data,
                headers=self._headers(call),
                errors=ERRORS,
            )
            vectors, usage = transform.embed_response(await io.read_json(resp, call))
            out = embedding_list(
                vectors, model=model, usage=usage, encoding_format=req.body.get("encoding_format")
            )
            return UpstreamResponse(body=out, usage=usage)
        if req.endpoint is Endpoint.RERANK:
            resp = await io.post(
                call,
                self._base + "/v2/rerank",
                data=json_body(req, model),
                headers=self._headers(call),
                errors=ERRORS,
            )
            body = await io.read_body(resp, call)
            return UpstreamResponse(
                body=body, usage=answer_usage(req, io.parse_object(body, call.deployment))
            )
        if req.endpoint is not Endpoint.CHAT:
            raise GatewayError(ErrorKind.CALLER_UNSUPPORTED, f"{req.endpoint} is not supported")
        data = orjson.dumps(transform.chat_request(req.body, model=model, stream=False))
        resp = await io.post(
            call, self._base + "/v2/chat", data=data, headers=self._headers(call), errors=ERRORS
        )
        answer = await io.read_json(resp, call)
        choice, usage = transform.chat_response(answer)
        body = chat_completion(
            ident=str(answer.get("id") or "chatcmpl"), model=model, choices=[choice], usage=usage
        )
        return UpstreamResponse(body=body, usage=usage, completion_chars=choice.chars)

    async def open_stream(self, req: ProviderRequest, call: UpstreamCall) -> io.TranslatedStream:
        if req.endpoint is not Endpoint.CHAT:
            raise GatewayError(ErrorKind.CALLER_UNSUPPORTED, f"{req.endpoint} cannot stream")
        model = call.upstream_model
        data = orjson.dumps(transform.chat_request(req.body, model=model, stream=True))
        resp = await io.post(
            call,
            self._base + "/v2/chat",
            data=data,
            headers=self._headers(call, stream=True),
            errors=ERRORS,
        )
        io.expect_content_type(resp, "text/event-stream", call.deployment)
        translator = CohereTranslator(include_usage=req.include_usage, model=model)
        return io.TranslatedStream(resp, call, translator)
