"""The Responses API dialect (``POST /v1/responses``), served on top of OpenAI chat.

Each answer is stored (unless ``store`` is false) with the conversation so far, so that
``previous_response_id`` can continue it and ``GET``/``DELETE /v1/responses/{id}`` work. A
stored response belongs to the key that made it; other keys get 404.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from sluice.auth.principal import Principal
from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.pipeline.dialects import responses_format as rf
from sluice.pipeline.dialects import responses_tools as rt
from sluice.pipeline.dialects.responses_stream import ResponsesStreamWriter
from sluice.pipeline.parse import check_model_length, parse_json
from sluice.providers.base import UpstreamResponse, UpstreamStream
from sluice.sse import SSESplitter
from sluice.storage.base import ResponseRepository, StoredResponse
from sluice.tokens import estimate_prompt, estimate_text
from sluice.types import Endpoint, ProviderRequest, Usage, usage_from_openai

_ECHOED = (
    "instructions",
    "max_output_tokens",
    "metadata",
    "previous_response_id",
    "temperature",
    "top_p",
    "user",
    "text",
    "tool_choice",
    "tools",
)


@dataclass(slots=True)
class Turn:
    """One Responses request after it was read: who asks, what came before, what is new."""

    key_id: str
    history: list[dict[str, Any]]
    previous_native: bool | None = None
    """Whether ``previous_response_id`` was answered natively (``None``: no previous)."""
    new_messages: list[dict[str, Any]] | None = None
    """The request's ``input`` as chat messages (set when the request is translated)."""
    chat: dict[str, Any] | None = None
    """The chat request it translates to (set when the request is translated)."""
    tools: rt.ChatTools = field(default_factory=rt.ChatTools)
    warnings: tuple[str, ...] = ()
    """What chat could not carry (tool and item types), for ``x-sluice-warning``."""
    source: dict[str, Any] | None = None
    """The ``/v1/responses/compact`` body this request summarises (that route only)."""


NATIVE_MARK: dict[str, Any] = {"native": True}
"""The stored conversation of a natively answered response: its state lives upstream."""


def _check(body: dict[str, Any]) -> None:
    """The fields the gateway itself reads (model, token bound, stream flag, storage, the
    previous response); the rest (input items, tools, reasoning, unknown fields) is checked
    only when the request is translated (:func:`_check_translatable`), so a native
    pass-through forwards what the provider accepts."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' must be a non-empty string", param="model")
    check_model_length(model)
    if "input" not in body:
        raise BadRequest("'input' is required", param="input")
    for name, kind in (
        ("previous_response_id", str),
        ("stream", bool),
        ("store", bool),
    ):
        value = body.get(name)
        if value is not None and not isinstance(value, kind):
            raise BadRequest(f"'{name}' must be a {kind.__name__}", param=name)
    limit = body.get("max_output_tokens")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise BadRequest(
            "'max_output_tokens' must be a positive integer", param="max_output_tokens"
        )


def _check_translatable(body: dict[str, Any]) -> None:
    for name in ("instructions", "user"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"'{name}' must be a str", param=name)


def translated_chat(req: ProviderRequest, turn: Turn) -> dict[str, Any]:
    """The chat request a translated Responses request becomes (validating what it reads);
    fills in ``turn.new_messages``, ``turn.chat``, ``turn.tools`` and ``turn.warnings``."""
    body = req.body
    _check_translatable(body)
    tools = rt.chat_tools(body["tools"]) if body.get("tools") else rt.ChatTools()
    dropped: list[str] = []
    new = rf.input_messages(body["input"], tools=tools, dropped=dropped)
    messages = (
        ([{"role": "system", "content": body["instructions"]}] if body.get("instructions") else [])
        + turn.history
        + new
    )
    chat: dict[str, Any] = {"model": req.model, "messages": messages}
    if body.get("max_output_tokens"):
        chat["max_tokens"] = body["max_output_tokens"]
    for name in ("temperature", "top_p", "user"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if tools.tools:
        chat["tools"] = tools.tools
        if body.get("tool_choice") is not None:
            chat["tool_choice"] = rt.chat_tool_choice(body["tool_choice"], tools)
        if body.get("parallel_tool_calls") is False:
            chat["parallel_tool_calls"] = False
    fmt = rf.chat_response_format(body.get("text"))
    if fmt is not None:
        chat["response_format"] = fmt
    effort = rf.reasoning_effort(body.get("reasoning"))
    if effort is not None:
        chat["reasoning_effort"] = effort
    if req.stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    turn.new_messages, turn.chat, turn.tools = new, chat, tools
    turn.warnings = tuple(dict.fromkeys(tools.dropped + [f"item {kind}" for kind in dropped]))
    return chat


class ResponsesDialect:
    endpoint = Endpoint.RESPONSES
    carries_metadata = False
    stream_ends: tuple[bytes, ...] = (
        b"event: response.completed",
        b"event: response.incomplete",
        b"event: response.failed",
    )

    def __init__(self, store: ResponseRepository) -> None:
        self._store = store

    def parse(self, raw: bytes) -> ProviderRequest:
        body = parse_json(raw)
        _check(body)
        return ProviderRequest(
            Endpoint.RESPONSES, body, raw, body["model"], bool(body.get("stream")), False
        )

    async def prepare(self, req: ProviderRequest, principal: Principal) -> ProviderRequest:
        body = req.body
        history: list[dict[str, Any]] = []
        previous = body.get("previous_response_id")
        if previous:
            stored = await self._store.get(previous, key_id=principal.key_id)
            if stored is None:
                raise GatewayError(
                    ErrorKind.CALLER_NOT_FOUND,
                    f"no response {previous!r}",
                    param="previous_response_id",
                )
            history = stored.conversation
        previous_native = (history == [NATIVE_MARK]) if previous else None
        if previous_native:
            history = []
        req.context = Turn(principal.key_id, history, previous_native)
        return req

    def plan(
        self, req: ProviderRequest, capabilities: frozenset[Endpoint]
    ) -> ResponsesTranslation | ResponsesPassthrough:
        turn: Turn = req.context
        native = Endpoint.RESPONSES in capabilities
        if turn.previous_native is not None and turn.previous_native != native:
            raise BadRequest(
                "previous_response_id was answered by a deployment of another kind; "
                "continue it with the same model",
                param="previous_response_id",
            )
        if native:
            return ResponsesPassthrough(req, self._store, turn.key_id)
        if Endpoint.CHAT not in capabilities:
            raise GatewayError(
                ErrorKind.CALLER_UNSUPPORTED,
                f"the model {req.model!r} does not support responses",
                param="model",
            )
        return ResponsesTranslation(req, self._store)

    def stream_tail(self, req: ProviderRequest, upstream: UpstreamStream) -> bytes:
        return b""

    def error(self, exc: GatewayError) -> bytes:
        return orjson.dumps(exc.to_openai())

    def stream_error(self, exc: GatewayError) -> bytes:
        payload = {
            "type": "error",
            "code": exc.code or exc.kind.value,
            "message": exc.message,
            "param": exc.param,
            "sequence_number": 0,
        }
        return b"event: error\ndata: " + orjson.dumps(payload) + b"\n\n"

    async def get(self, response_id: str, principal: Principal) -> dict[str, Any]:
        stored = await self._store.get(response_id, key_id=principal.key_id)
        if stored is None:
            raise GatewayError(ErrorKind.CALLER_NOT_FOUND, f"no response {response_id!r}")
        return stored.body

    async def delete(self, response_id: str, principal: Principal) -> dict[str, Any]:
        if not await self._store.delete(response_id, key_id=principal.key_id):
            raise GatewayError(ErrorKind.CALLER_NOT_FOUND, f"no response {response_id!r}")
        return {"id": response_id, "object": "response.deleted", "deleted": True}


class ResponsesTranslation:
    def __init__(self, req: ProviderRequest, store: ResponseRepository) -> None:
        self._req = req
        self._store = store
        self._turn: Turn = req.context
        chat = translated_chat(req, self._turn)
        self.upstream = ProviderRequest(
            Endpoint.CHAT, chat, orjson.dumps(chat), req.model, req.stream, req.stream
        )
        self._id = rf.new_id("resp")
        self._created = int(time.time())
        self.warnings = self._turn.warnings

    def _shell(self, *, status: str) -> dict[str, Any]:
        body = self._req.body
        shell: dict[str, Any] = {
            "id": self._id,
            "object": "response",
            "created_at": self._created,
            "status": status,
            "model": self._req.model,
            "output": [],
            "error": None,
            "incomplete_details": None,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "store": body.get("store", True),
            "text": {"format": {"type": "text"}},
            "usage": None,
        }
        for name in _ECHOED:
            if body.get(name) is not None:
                shell[name] = body[name]
        return shell

    async def _finish(
        self, items: list[dict[str, Any]], finish: str | None, usage: Usage
    ) -> dict[str, Any]:
        final = self._shell(status="completed")
        final["output"] = items
        final["usage"] = rf.usage_obj(usage)
        if finish == "length":
            final["status"] = "incomplete"
            final["incomplete_details"] = {"reason": "max_output_tokens"}
        elif finish == "content_filter":
            final["status"] = "incomplete"
            final["incomplete_details"] = {"reason": "content_filter"}
        if final["store"]:
            turn = self._turn
            conversation = (
                turn.history + (turn.new_messages or []) + rf.output_messages(items, turn.tools)
            )
            await self._store.save(
                StoredResponse(
                    self._id,
                    turn.key_id,
                    float(self._created),
                    self._req.model,
                    conversation,
                    final,
                )
            )
        return final

    async def response(self, resp: UpstreamResponse, usage: Usage) -> bytes:
        try:
            data = orjson.loads(resp.body)
        except orjson.JSONDecodeError:
            raise GatewayError(
                ErrorKind.PROVIDER_BAD_RESPONSE, "the provider's answer is not JSON"
            ) from None
        items, finish = rf.output_from_chat(data, self._turn.tools)
        return orjson.dumps(await self._finish(items, finish, usage))

    async def stream(self, upstream: UpstreamStream) -> AsyncIterator[bytes]:
        writer = ResponsesStreamWriter(self._shell(status="in_progress"), self._turn.tools)
        splitter = SSESplitter()
        head = writer.start()
        seen_usage: Usage | None = None
        async for piece in upstream:
            out = b""
            for payload in splitter.feed(piece):
                chunk = orjson.loads(payload)
                if isinstance(chunk.get("usage"), dict):
                    seen_usage = usage_from_openai(chunk["usage"]) or seen_usage
                out += writer.chunk(chunk)
            if head:
                out, head = head + out, b""
            if out:
                yield out
        usage = (
            upstream.usage
            or seen_usage
            or Usage(
                estimate_prompt(self.upstream.body),
                estimate_text(upstream.completion_chars),
                estimated=True,
            )
        )
        final = await self._finish(writer.items(), writer.finish_reason, usage)
        yield head + writer.close_items() + writer.event("response.completed", response=final)


class ResponsesPassthrough:
    """A provider with its own Responses API: the request and answer pass unchanged; the
    answer is recorded (owner, body) so ``GET``/``DELETE`` and ``previous_response_id`` keep
    working per key. ``previous_response_id`` goes upstream as it is."""

    warnings: tuple[str, ...] = ()

    def __init__(self, req: ProviderRequest, store: ResponseRepository, key_id: str) -> None:
        self.upstream = req
        self._store = store
        self._key_id = key_id

    async def _save(self, final: dict[str, Any]) -> None:
        if "model" in final:  # a later GET names the caller's model, as the answer did
            final = {**final, "model": self.upstream.model}
        if final.get("id") and self.upstream.body.get("store", True):
            await self._store.save(
                StoredResponse(
                    str(final["id"]),
                    self._key_id,
                    time.time(),
                    self.upstream.model,
                    [NATIVE_MARK],
                    final,
                )
            )

    async def response(self, resp: UpstreamResponse, usage: Usage) -> bytes:
        try:
            data = orjson.loads(resp.body)
        except orjson.JSONDecodeError:
            raise GatewayError(
                ErrorKind.PROVIDER_BAD_RESPONSE, "the provider's answer is not JSON"
            ) from None
        if isinstance(data, dict):
            await self._save(data)
        return resp.body

    async def stream(self, upstream: UpstreamStream) -> AsyncIterator[bytes]:
        held: bytes | None = None
        final: dict[str, Any] | None = None
        async for piece in upstream:
            for event in piece.split(b"\n\n"):
                if b"response.completed" in event or b"response.incomplete" in event:
                    data = b"".join(
                        line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")
                    )
                    payload = orjson.loads(data) if data else {}
                    if payload.get("type") in ("response.completed", "response.incomplete"):
                        final = payload.get("response")
            if held is not None:
                yield held
            held = piece
        if final is not None:
            await self._save(final)  # before the last bytes, so a GET right after finds it
        if held is not None:
            yield held
