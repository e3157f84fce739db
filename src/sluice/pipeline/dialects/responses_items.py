"""Responses side routes that read a request or a stored response, without a model call:
``GET /v1/responses/{id}/input_items``, ``POST /v1/responses/input_tokens`` and
``POST /v1/responses/{id}/cancel``."""

from __future__ import annotations

from typing import Any, NoReturn

import orjson

from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.pipeline.dialects import responses_format as rf
from sluice.pipeline.dialects import responses_tools as rt
from sluice.pipeline.parse import check_model_length, parse_json
from sluice.storage.base import StoredResponse
from sluice.tokens import estimate_prompt

MAX_ITEMS_PAGE = 100
DEFAULT_ITEMS_PAGE = 20


def _text_part(role: str, text: str) -> dict[str, Any]:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": kind, "text": text}


def _content(role: str, content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [_text_part(role, content)] if content else []
    parts = []
    for part in content or ():
        if part.get("type") == "image_url":
            parts.append({"type": "input_image", "image_url": part["image_url"]["url"]})
        else:
            parts.append(_text_part(role, str(part.get("text", ""))))
    return parts


def chat_to_items(messages: list[dict[str, Any]], *, prefix: str) -> list[dict[str, Any]]:
    """Chat messages as Responses input items (ids ``<prefix>_<n>``, stable per response)."""
    items: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.get("tool_call_id", ""),
                    "output": message.get("content") or "",
                }
            )
            continue
        content = _content(role, message.get("content"))
        if content or not message.get("tool_calls"):
            items.append({"type": "message", "role": role, "content": content})
        for call in message.get("tool_calls") or ():
            fn = call.get("function") or {}
            items.append(
                rf.call_item("", call.get("id", ""), fn.get("name", ""), fn.get("arguments", ""))
            )
    for n, item in enumerate(items):
        item["id"] = f"{prefix}_{n}"
        item.setdefault("status", "completed")
    return items


def _page_args(query: dict[str, str]) -> tuple[int, str, str | None]:
    raw = query.get("limit", str(DEFAULT_ITEMS_PAGE))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ITEMS_PAGE:
        raise BadRequest(f"'limit' must be an integer from 1 to {MAX_ITEMS_PAGE}", param="limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise BadRequest("'order' must be asc or desc", param="order")
    return int(raw), order, query.get("after")


def input_items(stored: StoredResponse, query: dict[str, str]) -> dict[str, Any]:
    """The list object of a stored response's input items: the conversation it answered
    (earlier turns of ``previous_response_id`` included), as OpenAI lists them."""
    limit, order, after = _page_args(query)
    if stored.conversation and stored.conversation[0].get("native"):
        raise GatewayError(
            ErrorKind.CALLER_NOT_FOUND,
            f"the input items of {stored.id!r} are kept by the provider that "
            "answered it (its own Responses API), not by the gateway",
        )
    inputs = stored.conversation[:-1]  # the last message is the answer itself
    items = chat_to_items(inputs, prefix="in_" + stored.id.split("_", 1)[-1])
    if order == "desc":
        items.reverse()
    if after is not None:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise BadRequest(f"no input item {after!r} in this response", param="after")
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }


def count_request(raw: bytes) -> tuple[str, dict[str, Any]]:
    """The model and body of an ``input_tokens`` request (a Responses request body)."""
    body = parse_json(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' must be a non-empty string", param="model")
    check_model_length(model)
    return model, body


def input_tokens(body: dict[str, Any], history: list[dict[str, Any]]) -> int:
    """Estimated input tokens of a Responses request after ``history`` (the gateway's own
    count, like ``/v1/messages/count_tokens``)."""
    tools = rt.chat_tools(body["tools"]) if body.get("tools") else rt.ChatTools()
    messages = list(history)
    if isinstance(body.get("instructions"), str):
        messages.insert(0, {"role": "system", "content": body["instructions"]})
    messages += rf.input_messages(body.get("input", ""), tools=tools, dropped=[])
    extra = len(orjson.dumps(tools.tools)) // 4 if tools.tools else 0
    return estimate_prompt({"messages": messages}) + extra


def cancel(stored: StoredResponse) -> NoReturn:
    """Every response the gateway stores was answered in the foreground (``background`` is
    not offered), so, as OpenAI answers for such a response: 400."""
    raise BadRequest(
        f"Responses can only be cancelled if they were created with background=true; "
        f"{stored.id!r} is {stored.body.get('status', 'completed')}"
    )
