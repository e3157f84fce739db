"""The OpenAI dialect: chat, completions, embeddings, relayed as they are."""

from __future__ import annotations

import time

import orjson

from sluice.errors import ErrorKind, GatewayError
from sluice.pipeline.dialects.base import Translation
from sluice.pipeline.parse import provider_request
from sluice.providers.base import UpstreamStream
from sluice.sse import frame, frame_obj
from sluice.tokens import estimate_prompt, estimate_text
from sluice.types import Endpoint, ProviderRequest

DONE_EVENT = b"data: [DONE]\n\n"


class OpenAIDialect:
    carries_metadata = True
    stream_ends: tuple[bytes, ...] = ()

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def parse(self, raw: bytes) -> ProviderRequest:
        return provider_request(self.endpoint, raw)

    def plan(self, req: ProviderRequest, capabilities: frozenset[Endpoint]) -> Translation | None:
        if req.endpoint in capabilities:
            return None
        raise GatewayError(
            ErrorKind.CALLER_UNSUPPORTED,
            f"the model {req.model!r} does not support {self.endpoint.value}",
            param="model",
        )

    def stream_tail(self, req: ProviderRequest, upstream: UpstreamStream) -> bytes:
        if not req.include_usage or upstream.usage is not None:
            return DONE_EVENT
        # The client asked for usage and the provider sent none: send the gateway's count.
        prompt = estimate_prompt(req.body)
        completion = estimate_text(upstream.completion_chars)
        chunk = {
            "id": "usage",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": req.model,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
        return frame_obj(chunk) + DONE_EVENT

    def error(self, exc: GatewayError) -> bytes:
        return orjson.dumps(exc.to_openai())

    def stream_error(self, exc: GatewayError) -> bytes:
        return frame(orjson.dumps(exc.to_openai()))
