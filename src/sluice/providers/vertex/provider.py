"""The Vertex AI adapter: Gemini models through ``generateContent`` (the Gemini translation),
Anthropic models through ``rawPredict``/``streamRawPredict`` (the Anthropic translation with
``anthropic_version: vertex-2023-10-16``), embeddings through ``predict``.

The publisher comes from the deployment's model name: ``claude-*`` is Anthropic's, any other
name Google's; ``publisher/model`` names one explicitly.
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from sluice.config.providers import VertexConfig
from sluice.config.secrets import NO_SECRETS, Secrets
from sluice.errors import ErrorKind, GatewayError
from sluice.providers.anthropic import transform as anthropic
from sluice.providers.anthropic.provider import native_or_translated
from sluice.providers.anthropic.stream import ChatTranslator
from sluice.providers.base import UpstreamCall, UpstreamResponse
from sluice.providers.gemini import embed
from sluice.providers.gemini.errors import ERRORS
from sluice.providers.gemini.imagen import generate_images
from sluice.providers.gemini.provider import generate, open_generate_stream
from sluice.providers.native import io
from sluice.providers.native.openai_out import embedding_list
from sluice.providers.vertex.auth import VertexAuth
from sluice.types import Endpoint, ProviderRequest

DEFAULT_LOCATION = "us-central1"
DEFAULT_VERSION = "v1"
ANTHROPIC_VERSION = "vertex-2023-10-16"


def default_base_url(location: str) -> str:
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def publisher_of(model: str) -> tuple[str, str]:
    if "/" in model:
        publisher, _, name = model.partition("/")
        return publisher, name
    return ("anthropic" if model.startswith("claude") else "google"), model


class VertexProvider:
    capabilities = frozenset({Endpoint.CHAT, Endpoint.EMBEDDINGS, Endpoint.IMAGES})
    native_file_types = frozenset({"application/pdf", "text/plain"})
    """Documents both its publishers take (Gemini ``inlineData``, Claude ``document``)."""

    def __init__(
        self,
        name: str,
        config: VertexConfig,
        options: object = None,
        secrets: Secrets = NO_SECRETS,
    ) -> None:
        self._name = name
        self._config = config
        self._location = config.location or DEFAULT_LOCATION
        base = config.base_url or default_base_url(self._location)
        self._root = f"{base}/{config.api_version or DEFAULT_VERSION}"
        self._auth = VertexAuth(name, config.credentials, secrets)

    async def _target(self, call: UpstreamCall) -> tuple[str, str, dict[str, str]]:
        """``(publisher, model URL, headers)``; fetches a token when needed."""
        token = await self._auth.token(call)
        project = self._config.project or self._auth.project
        if not project:
            raise GatewayError(
                ErrorKind.GATEWAY_UNAVAILABLE,
                f"provider {self._name!r}: set 'project' (the credentials name none)",
            )
        publisher, model = publisher_of(call.upstream_model)
        url = (
            f"{self._root}/projects/{project}/locations/{self._location}"
            f"/publishers/{publisher}/models/{quote(model, safe='')}"
        )
        headers = {
            "Content-Type": "application/json",
            **self._config.headers,
            **call.extra_headers,
            "Authorization": f"Bearer {token}",
        }
        return publisher, url, headers

    async def send(self, req: ProviderRequest, call: UpstreamCall) -> UpstreamResponse:
        publisher, url, headers = await self._target(call)
        if req.endpoint is Endpoint.EMBEDDINGS:
            data = orjson.dumps(embed.vertex_request(req.body))
            resp = await io.post(call, url + ":predict", data=data, headers=headers, errors=ERRORS)
            vectors, usage = embed.vertex_response(await io.read_json(resp, call))
            body = embedding_list(
                vectors,
                model=call.upstream_model,
                usage=usage,
                encoding_format=req.body.get("encoding_format"),
            )
            return UpstreamResponse(body=body, usage=usage)
        if req.endpoint is Endpoint.IMAGES:  # Imagen (publisher google)
            return await generate_images(req, call, url=url, headers=headers)
        if req.endpoint is not Endpoint.CHAT:
            raise GatewayError(ErrorKind.CALLER_UNSUPPORTED, f"{req.endpoint} is not supported")
        if publisher != "anthropic":
            return await generate(req, call, url=url, headers=headers)
        data = _anthropic_body(req, stream=False)
        resp = await io.post(call, url + ":rawPredict", data=data, headers=headers, errors=ERRORS)
        body = await io.read_body(resp, call)
        return native_or_translated(req, body, io.parse_object(body, call.deployment))

    async def open_stream(self, req: ProviderRequest, call: UpstreamCall) -> io.TranslatedStream:
        if req.endpoint is not Endpoint.CHAT:
            raise GatewayError(ErrorKind.CALLER_UNSUPPORTED, f"{req.endpoint} cannot stream")
        publisher, url, headers = await self._target(call)
        if publisher != "anthropic":
            return await open_generate_stream(req, call, url=url, headers=headers)
        data = _anthropic_body(req, stream=True)
        resp = await io.post(
            call, url + ":streamRawPredict", data=data, headers=headers, errors=ERRORS
        )
        io.expect_content_type(resp, "text/event-stream", call.deployment)
        translator = ChatTranslator(include_usage=req.include_usage)
        return io.TranslatedStream(resp, call, translator)


def _anthropic_body(req: ProviderRequest, *, stream: bool) -> bytes:
    body = anthropic.chat_request(req.body, model=None, stream=stream)
    return orjson.dumps({"anthropic_version": ANTHROPIC_VERSION, **body})
