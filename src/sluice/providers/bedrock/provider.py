"""The Amazon Bedrock adapter: chat through Converse / ConverseStream for any Converse
model, embeddings through InvokeModel (Titan, Cohere Embed), every request SigV4-signed.

Bedrock errors are ``{"message": ...}`` with the status; 424 (``ModelErrorException``: the
model failed) is the provider's failure, not the caller's.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import aiohttp
import orjson
import yarl

from sluice.config.providers import BedrockConfig
from sluice.config.secrets import NO_SECRETS, Secrets
from sluice.errors import ErrorKind, GatewayError
from sluice.providers.base import UpstreamCall, UpstreamResponse
from sluice.providers.bedrock import embed, transform
from sluice.providers.bedrock.auth import AwsCredentials, resolve_region, sign
from sluice.providers.bedrock.stream import ConverseTranslator
from sluice.providers.native import io
from sluice.providers.native.openai_out import chat_completion, embedding_list
from sluice.types import Endpoint, ProviderRequest, Usage

ERRORS = io.ErrorMap(overrides={424: ErrorKind.PROVIDER_ERROR})
EVENT_STREAM = "application/vnd.amazon.eventstream"


class BedrockProvider:
    capabilities = frozenset({Endpoint.CHAT, Endpoint.EMBEDDINGS})
    native_file_types = transform.DOCUMENT_TYPES
    """Documents its Converse ``document`` blocks carry."""

    def __init__(
        self,
        name: str,
        config: BedrockConfig,
        options: object = None,
        secrets: Secrets = NO_SECRETS,
    ) -> None:
        self._name = name
        self._config = config
        self._region = resolve_region(config)
        self._base = config.base_url or f"https://bedrock-runtime.{self._region}.amazonaws.com"
        self._credentials = AwsCredentials(name, config, secrets)

    async def _post(
        self, call: UpstreamCall, action: str, body: bytes, *, accept: str = "application/json"
    ) -> aiohttp.ClientResponse:
        url = f"{self._base}/model/{quote(call.upstream_model, safe='')}/{action}"
        headers = {
            "Content-Type": "application/json",
            "Accept": accept,
            **self._config.headers,
            **call.extra_headers,
        }
        key = call.credential  # a Bedrock API key, resolved by the core
        if key:
            headers["Authorization"] = f"Bearer {key}"
        else:
            creds = await self._credentials.get(call)
            headers = sign(creds, region=self._region, url=url, body=body, headers=headers)
        # The model id is already escaped (":" as %3A); keep it so, as it was signed.
        target = yarl.URL(url, encoded=True)
        return await io.post(call, target, data=body, headers=headers, errors=ERRORS)

    async def send(self, req: ProviderRequest, call: UpstreamCall) -> UpstreamResponse:
        if req.endpoint is Endpoint.EMBEDDINGS:
            return await self._embed(req, call)
        if req.endpoint is not Endpoint.CHAT:
            raise GatewayError(ErrorKind.CALLER_UNSUPPORTED, f"{req.endpoint} is not supported")
        converse = transform.converse_request(req.body, model=call.upstream_model)
        body = orjson.dumps(converse)
        answer = await io.read_json(await self._post(call, "converse", body), call)
        json_tool = transform.forces_json_tool(converse)
        choice, usage = transform.converse_response(answer, json_tool=json_tool)
        out = chat_completion(
            ident="chatcmpl-bedrock", model=call.upstream_model, choices=[choice], usage=usage
        )
        return UpstreamResponse(body=out, usage=usage, completion_chars=choice.chars)

    async def open_stream(self, req: ProviderRequest, call: UpstreamCall) -> io.TranslatedStream:
        if req.endpoint is not Endpoint.CHAT:
            raise GatewayError(ErrorKind.CALLER_UNSUPPORTED, f"{req.endpoint} cannot stream")
        converse = transform.converse_request(req.body, model=call.upstream_model)
        body = orjson.dumps(converse)
        resp = await self._post(call, "converse-stream", body, accept=EVENT_STREAM)
        io.expect_content_type(resp, EVENT_STREAM, call.deployment)
        translator = ConverseTranslator(
            include_usage=req.include_usage,
            model=call.upstream_model,
            json_tool=transform.forces_json_tool(converse),
        )
        return io.TranslatedStream(resp, call, translator, frames="eventstream")

    async def _embed(self, req: ProviderRequest, call: UpstreamCall) -> UpstreamResponse:
        if embed.family(call.upstream_model) == "cohere":
            resp = await self._post(call, "invoke", orjson.dumps(embed.cohere_request(req.body)))
            # Case-insensitive headers: the token count arrives in a response header.
            vectors, usage = embed.cohere_response(await io.read_json(resp, call), resp.headers)
        else:

            async def one(body: dict[str, object]) -> tuple[list[float], int]:
                resp = await self._post(call, "invoke", orjson.dumps(body))
                return embed.titan_response(await io.read_json(resp, call))

            # Titan embeds one text per call: run them together, cancel the rest on a failure.
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(one(b)) for b in embed.titan_requests(req.body)]
            except BaseExceptionGroup as failed:
                raise failed.exceptions[0] from None
            results = [task.result() for task in tasks]
            vectors = [vector for vector, _ in results]
            usage = Usage(prompt_tokens=sum(tokens for _, tokens in results))
        out = embedding_list(
            vectors,
            model=call.upstream_model,
            usage=usage,
            encoding_format=req.body.get("encoding_format"),
        )
        return UpstreamResponse(body=out, usage=usage)
