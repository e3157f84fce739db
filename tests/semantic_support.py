"""What the semantic cache's pipeline tests share: a chat request's context as the cache
stage would hand it to the index."""

from __future__ import annotations

import asyncio
import time

import orjson

from sluice.app import SluiceApp
from sluice.auth.principal import Principal
from sluice.cache.base import Embed
from sluice.cache.semantic import SemanticCache, build_semantic_index
from sluice.errors import GatewayError
from sluice.observability.tracing import start_trace
from sluice.pipeline.cache_embed import PipelineEmbedder
from sluice.pipeline.context import Arrival, RequestContext
from sluice.pipeline.dialects.openai import OpenAIDialect
from sluice.types import Endpoint, ProviderRequest
from sluice.usage.event import UsageEvent


class Sink:
    """The client's side of the request: nothing reaches it in these tests."""

    started = ended = gone = False

    async def json(self, status: int, body: bytes, headers: object) -> None: ...
    async def error(self, exc: GatewayError, body: bytes, headers: object) -> None: ...
    async def start_stream(self, headers: object) -> None: ...
    async def chunk(self, data: bytes) -> None: ...
    async def end(self, data: bytes = b"") -> None: ...


def chat_ctx(app: SluiceApp, principal: Principal, text: str, model: str = "gpt") -> RequestContext:
    """A chat request of ``principal`` asking ``text``, request id ``req_1``."""
    assert app.runtime is not None
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    req = ProviderRequest(Endpoint.CHAT, body, orjson.dumps(body), model)
    trace = start_trace(None)
    arrival = Arrival("req_1", time.time(), time.perf_counter(), "chat", principal, trace)
    deadline = asyncio.get_running_loop().time() + 60
    entry = app.runtime.table.resolve(model)
    return RequestContext(arrival, OpenAIDialect(Endpoint.CHAT), req, entry, Sink(), deadline, [])


class Semantic:
    """The app's semantic index and the embedder of its prompts (``model``); the usage rows
    of the embeddings go to :attr:`rows`."""

    def __init__(self, app: SluiceApp, model: str) -> None:
        rt = app.runtime
        assert rt is not None
        self.app = app
        self.rows: list[UsageEvent] = []
        self.embedder = PipelineEmbedder(rt.services, model, record=self.rows.append)
        self.index: SemanticCache = build_semantic_index(
            repo=rt.storage.semantic, embedding_model=model, clock=rt.clock
        )

    def embed(self, principal: Principal, text: str) -> Embed:
        """The ``embed`` of a chat request of ``principal`` asking ``text``."""
        return self.embedder.bind(chat_ctx(self.app, principal, text))
