"""Read and check the few request fields the gateway needs; the rest is forwarded untouched."""

from __future__ import annotations

from typing import Any

import orjson

from sluice.errors import BadRequest
from sluice.types import Endpoint, ProviderRequest
from sluice.usage.bounds import MODEL_CHARS

# Enum members read from the module: read from their class they cost ~8 times more.
_CHAT = Endpoint.CHAT
_COMPLETIONS = Endpoint.COMPLETIONS
_EMBEDDINGS = Endpoint.EMBEDDINGS


def _type_error(field: str, expected: str) -> BadRequest:
    return BadRequest(f"'{field}' must be {expected}", param=field)


def check_model_length(model: str) -> None:
    """A model name longer than a usage row holds names no model: 400 naming ``model``."""
    if len(model) > MODEL_CHARS:
        raise BadRequest(f"'model' must be at most {MODEL_CHARS} characters", param="model")


def parse_json(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise BadRequest("the request body is empty; send a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _opt_int(body: dict[str, Any], field: str, *, minimum: int) -> None:
    value = body.get(field)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_error(field, "an integer")
    if value < minimum:
        raise BadRequest(f"'{field}' must be at least {minimum}", param=field)


def _check_best_of(body: dict[str, Any]) -> None:
    """``best_of`` completions are generated (and billed) to return ``n`` of them."""
    _opt_int(body, "best_of", minimum=1)
    best_of, n = body.get("best_of"), body.get("n")
    if best_of is not None and n is not None and best_of < n:
        raise BadRequest("'best_of' must be at least 'n'", param="best_of")


def _check_messages(messages: Any) -> None:
    if messages is None:
        raise BadRequest("'messages' is required", param="messages")
    if not isinstance(messages, list):
        raise _type_error("messages", "an array of message objects")
    if not messages:
        raise BadRequest("'messages' must contain at least one message", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _type_error(f"messages[{i}]", "an object")
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise BadRequest(
                f"'messages[{i}].role' is required and must be a string",
                param=f"messages[{i}].role",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _type_error(f"messages[{i}].content", "a string or an array of content parts")


def _check_prompt(prompt: Any) -> None:
    if prompt is None:
        raise BadRequest("'prompt' is required", param="prompt")
    if isinstance(prompt, str):
        return
    if isinstance(prompt, list) and all(
        isinstance(p, str | int) or (isinstance(p, list) and all(isinstance(t, int) for t in p))
        for p in prompt
    ):
        return
    raise _type_error("prompt", "a string, an array of strings or an array of token arrays")


def _check_input(value: Any) -> None:
    if value is None:
        raise BadRequest("'input' is required", param="input")
    if isinstance(value, str):
        if not value:
            raise BadRequest("'input' must not be empty", param="input")
        return
    if isinstance(value, list) and value:
        return
    raise _type_error("input", "a non-empty string or array")


def provider_request(endpoint: Endpoint, raw: bytes) -> ProviderRequest:
    """Validate a data-plane body; raises :class:`BadRequest` naming the first bad field."""
    body = parse_json(raw)
    model = body.get("model")
    if model is None:
        raise BadRequest("'model' is required", param="model")
    if not isinstance(model, str) or not model:
        raise _type_error("model", "a non-empty string")
    if len(model) > MODEL_CHARS:
        check_model_length(model)
    if endpoint is _CHAT:
        _check_messages(body.get("messages"))
    elif endpoint is _COMPLETIONS:
        _check_prompt(body.get("prompt"))
    else:
        _check_input(body.get("input"))
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _type_error("stream", "a boolean")
    if stream and endpoint is _EMBEDDINGS:
        raise BadRequest("embeddings cannot stream", param="stream")
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise _type_error("stream_options", "an object")
        flag = options.get("include_usage")
        if flag is not None and not isinstance(flag, bool):
            raise _type_error("stream_options.include_usage", "a boolean")
        include_usage = bool(flag)
    # A field is checked when present (a dict lookup is cheaper than a call per field).
    if "max_tokens" in body:
        _opt_int(body, "max_tokens", minimum=1)
    if "max_completion_tokens" in body:
        _opt_int(body, "max_completion_tokens", minimum=1)
    if "n" in body:
        _opt_int(body, "n", minimum=1)
    if endpoint is _COMPLETIONS:
        _check_best_of(body)
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _type_error("user", "a string")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise _type_error("tools", "an array")
    return ProviderRequest(
        endpoint=endpoint,
        body=body,
        raw=raw,
        model=model,
        stream=bool(stream),
        include_usage=include_usage and bool(stream),
    )
