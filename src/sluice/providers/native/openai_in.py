"""Reading an OpenAI chat or embeddings request, for adapters that translate it.

Pure functions. Malformed input raises :class:`~sluice.errors.BadRequest` naming the field;
a feature the target provider cannot express raises ``caller_unsupported`` (never silently
dropped).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from sluice.errors import BadRequest, ErrorKind, GatewayError


def unsupported(message: str, *, param: str | None = None) -> GatewayError:
    return GatewayError(ErrorKind.CALLER_UNSUPPORTED, message, param=param)


def text_of(content: Any, *, param: str) -> str:
    """The text of a message whose content may only be text (a string or text parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise unsupported("only text content is supported here", param=f"{param}[{j}]")
            texts.append(str(part.get("text") or ""))
        return "".join(texts)
    raise BadRequest(f"'{param}' must be a string or an array of content parts", param=param)


def content_parts(content: Any, *, param: str) -> list[dict[str, Any]]:
    """Content as a list of OpenAI parts (a string becomes one text part)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return content
    raise BadRequest(f"'{param}' must be a string or an array of content parts", param=param)


@dataclass(frozen=True, slots=True)
class DataUrl:
    media_type: str
    data: str
    """Base64, as sent."""

    def raw(self) -> bytes:
        return base64.b64decode(self.data)


def parse_data_url(url: str, *, param: str) -> DataUrl | None:
    """A ``data:<type>;base64,<data>`` URL split in two; ``None`` for any other URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        raise BadRequest("data URLs must be base64-encoded (data:<type>;base64,...)", param=param)
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("the data URL is not valid base64", param=param) from None
    return DataUrl(head.removesuffix(";base64") or "application/octet-stream", data)


def image_url(part: dict[str, Any], *, param: str) -> str:
    spec = part.get("image_url")
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str) or not url:
        raise BadRequest("'image_url.url' is required", param=f"{param}.image_url.url")
    return url


def file_data(part: dict[str, Any], *, param: str) -> tuple[DataUrl, str | None]:
    """An inline ``file`` part (``file.file_data`` as a data URL) and its filename."""
    spec = part.get("file")
    data = spec.get("file_data") if isinstance(spec, dict) else None
    parsed = (
        parse_data_url(data, param=f"{param}.file.file_data") if isinstance(data, str) else None
    )
    if parsed is None:
        raise unsupported(
            "only inline files (file.file_data as a base64 data URL) are supported",
            param=f"{param}.file",
        )
    name = spec.get("filename") if isinstance(spec, dict) else None
    return parsed, name if isinstance(name, str) else None


def tool_arguments(raw: Any, *, param: str) -> dict[str, Any]:
    """A tool call's ``arguments`` JSON string as an object."""
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        raise BadRequest(f"'{param}' must be a JSON string", param=param)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest(f"'{param}' is not valid JSON", param=param) from None
    if not isinstance(value, dict):
        raise BadRequest(f"'{param}' must encode a JSON object", param=param)
    return value


def tool_calls(message: dict[str, Any], *, param: str) -> list[tuple[str, str, dict[str, Any]]]:
    """An assistant message's tool calls as ``(id, name, arguments)``."""
    calls = message.get("tool_calls")
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise BadRequest(f"'{param}.tool_calls' must be an array", param=f"{param}.tool_calls")
    out = []
    for k, call in enumerate(calls):
        where = f"{param}.tool_calls[{k}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise BadRequest(f"'{where}.function.name' is required", param=f"{where}.function")
        ident = call.get("id")
        if not isinstance(ident, str) or not ident:
            raise BadRequest(f"'{where}.id' is required", param=f"{where}.id")
        args = tool_arguments(fn.get("arguments"), param=f"{where}.function.arguments")
        out.append((ident, fn["name"], args))
    return out


def tool_call_id(message: dict[str, Any], *, param: str) -> str:
    ident = message.get("tool_call_id")
    if not isinstance(ident, str) or not ident:
        raise BadRequest(f"'{param}.tool_call_id' is required", param=f"{param}.tool_call_id")
    return ident


def max_tokens(body: dict[str, Any]) -> int | None:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def stop_sequences(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return list(stop)
    raise BadRequest("'stop' must be a string or an array of strings", param="stop")


@dataclass(frozen=True, slots=True)
class FunctionTool:
    name: str
    description: str | None
    parameters: dict[str, Any]
    """JSON Schema of the arguments (an empty object schema when the client gave none)."""


def function_tools(body: dict[str, Any]) -> list[FunctionTool]:
    tools = body.get("tools")
    if not tools:
        return []
    out = []
    for k, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise unsupported("only function tools are supported", param=f"tools[{k}].type")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise BadRequest(f"'tools[{k}].function.name' is required", param=f"tools[{k}]")
        params = fn.get("parameters")
        schema = params if isinstance(params, dict) else {"type": "object", "properties": {}}
        desc = fn.get("description")
        out.append(FunctionTool(fn["name"], desc if isinstance(desc, str) else None, schema))
    return out


@dataclass(frozen=True, slots=True)
class ToolChoice:
    mode: Literal["auto", "required", "none", "named"]
    name: str | None = None


def tool_choice(body: dict[str, Any]) -> ToolChoice | None:
    """``None`` when the client left the choice to the provider."""
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if choice in ("auto", "required", "none"):
        return ToolChoice(choice)
    if isinstance(choice, dict):
        fn = choice.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return ToolChoice("named", fn["name"])
    raise BadRequest(
        "'tool_choice' must be 'auto', 'required', 'none' or a function", param="tool_choice"
    )


def single_choice(body: dict[str, Any]) -> None:
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise unsupported("this provider returns one choice per request; 'n' must be 1", param="n")


def json_schema_format(body: dict[str, Any]) -> tuple[bool, dict[str, Any] | None]:
    """``(wants_json, schema)`` from ``response_format``."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return False, None
    if fmt.get("type") == "json_object":
        return True, None
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return True, schema if isinstance(schema, dict) else None
    raise BadRequest("'response_format.type' is not supported", param="response_format.type")


def embedding_inputs(body: dict[str, Any]) -> list[str]:
    """The texts of an embeddings request (token arrays are not portable across providers)."""
    value = body.get("input")
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) for item in items):
        raise unsupported("this provider embeds text only, not token arrays", param="input")
    return [str(item) for item in items]
