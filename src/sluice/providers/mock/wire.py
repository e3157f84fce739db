"""Routing of the mock upstream's native wire formats.

Anthropic ``/v1/messages``; Gemini ``/v1beta/models/{m}:{method}``; Vertex AI
``/v1/projects/.../publishers/{google|anthropic}/models/{m}:{method}`` and a ``/token``
OAuth endpoint; Bedrock ``/model/{id}/converse|converse-stream|invoke``; Cohere
``/v2/chat|embed``; OpenAI Responses ``/v1/responses``. Each format checks its auth header
and request rules, then answers the script in its own shapes, stream framing and error
envelope.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from sluice.providers.mock import (
    caps,
    wire_anthropic,
    wire_bedrock,
    wire_cohere,
    wire_gemini,
    wire_responses,
)
from sluice.providers.mock import script as s
from sluice.providers.mock.reply import Reply
from sluice.providers.mock.wire_common import Request, WireError


class Upstream(Protocol):
    """What a native reply reads and counts on the server that serves it (``MockApp``)."""

    requests: int
    flaky: s.FlakyCounter


class Wire(Protocol):
    def route(self, path: str) -> tuple[str, str] | None:
        """``(operation, model named in the path or "")`` when the path is this format's."""
        ...

    def auth(self, op: str, headers: Mapping[str, str]) -> int | None:
        """An error status when the request lacks this format's credentials."""
        ...

    def error(self, status: int, message: str, *, retry_after_s: float | None) -> Reply: ...

    def check(self, op: str, body: dict[str, Any]) -> str:
        """Validate the body (``WireError``) and return the model it names (or "")."""
        ...

    async def answer(self, script: s.MockScript, req: Request) -> Reply: ...


WIRES: tuple[Wire, ...] = (wire_anthropic, wire_gemini, wire_bedrock, wire_cohere, wire_responses)


async def native_reply(
    app: Upstream, path: str, headers: dict[str, str], raw: bytes
) -> Reply | None:
    """The reply for a native-format request, or ``None`` when no format owns the path."""
    for wire in WIRES:
        route = wire.route(path)
        if route is not None:
            break
    else:
        return None
    op, path_model = route
    if op == "token":
        return wire_gemini.token_reply(raw)
    app.requests += 1
    status = wire.auth(op, headers)
    if status is not None:
        return wire.error(
            status, "mock upstream: missing or malformed credentials", retry_after_s=None
        )
    overrides = {k[7:].replace("-", "_"): v for k, v in headers.items() if k.startswith("x-mock-")}
    try:
        body = orjson.loads(raw)
        if not isinstance(body, dict):
            raise WireError("the body must be a JSON object")
        model = path_model or wire.check(op, body)
        if path_model:
            wire.check(op, body)
        script = s.MockScript.parse(model or "chat", overrides)
    except (ValueError, orjson.JSONDecodeError) as exc:
        return wire.error(400, str(exc), retry_after_s=None)
    status = app.flaky.fails(model, script)
    if status is not None:
        if script.first_delay_s:
            await asyncio.sleep(script.first_delay_s)
        message = s.error_body(status)["error"]["message"]
        return wire.error(status, message, retry_after_s=script.retry_after_s)
    request = Request(op, model, body, headers, f"{app.requests:x}")
    try:
        return await wire.answer(script, request)
    except caps.MockRequestError as exc:
        return wire.error(400, str(exc), retry_after_s=None)
