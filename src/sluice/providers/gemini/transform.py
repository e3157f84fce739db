"""OpenAI chat ↔ Gemini ``generateContent``: pure request and response translation.

Shared by Google AI Studio (``gemini``) and Vertex AI (``vertex``), which take the same body.

Gemini has no tool call ids and (from Gemini 3 on) requires the ``thoughtSignature`` of a
function call to come back with it in later turns. The OpenAI tool call id carries both: a
random part and, when Gemini sent one, the signature in URL-safe base64 after ``__ts_``.
"""

from __future__ import annotations

import mimetypes
import secrets
from typing import Any

import orjson

from sluice.errors import BadRequest
from sluice.providers.native import openai_in as oi
from sluice.providers.native.openai_out import ChoiceOut, ToolCallOut, count
from sluice.types import Usage

_SIG = "__ts_"
SKIP_SIGNATURE = "skip_thought_signature_validator"
"""Google's documented stand-in when a function call in history has no signature."""

BLOCKED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "LANGUAGE",
    }
)
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(BLOCKED, "content_filter"),
}


def call_id(signature: str | None) -> str:
    ident = "call_" + secrets.token_hex(6)
    if not signature:
        return ident
    return ident + _SIG + signature.replace("+", "-").replace("/", "_").rstrip("=")


def signature_of(ident: str) -> str | None:
    _, sep, sig = ident.partition(_SIG)
    if not sep or not sig:
        return None
    sig = sig.replace("-", "+").replace("_", "/")
    return sig + "=" * (-len(sig) % 4)


def finish_reason(reason: Any, *, has_calls: bool) -> str:
    if has_calls and reason in (None, "STOP"):
        return "tool_calls"
    return FINISH_REASONS.get(str(reason), "stop")


def generate_request(body: dict[str, Any]) -> dict[str, Any]:
    """A ``generateContent`` body for an OpenAI chat body."""
    system, contents = _contents(body.get("messages") or [])
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    tools = oi.function_tools(body)
    if tools:
        declarations = []
        for t in tools:
            decl: dict[str, Any] = {"name": t.name, "parametersJsonSchema": t.parameters}
            if t.description:
                decl["description"] = t.description
            declarations.append(decl)
        out["tools"] = [{"functionDeclarations": declarations}]
    choice = oi.tool_choice(body)
    if choice is not None and tools:
        mode = {"auto": "AUTO", "required": "ANY", "none": "NONE", "named": "ANY"}[choice.mode]
        config: dict[str, Any] = {"mode": mode}
        if choice.name:
            config["allowedFunctionNames"] = [choice.name]
        out["toolConfig"] = {"functionCallingConfig": config}
    generation = _generation_config(body)
    if generation:
        out["generationConfig"] = generation
    return out


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    limit = oi.max_tokens(body)
    if limit is not None:
        out["maxOutputTokens"] = limit
    stops = oi.stop_sequences(body)
    if stops:
        out["stopSequences"] = stops
    for src, dst in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        value = body.get(src)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[dst] = value
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        out["candidateCount"] = n
    wants_json, schema = oi.json_schema_format(body)
    if wants_json:
        out["responseMimeType"] = "application/json"
        if schema is not None:
            out["responseJsonSchema"] = schema
    return out


def _contents(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        role = message.get("role")
        if role in ("system", "developer"):
            text = oi.text_of(message.get("content"), param=f"{param}.content")
            if text:
                system.append({"text": text})
            continue
        if role == "user":
            parts = _user_parts(message.get("content"), param=f"{param}.content")
        elif role == "assistant":
            role = "model"
            parts = _model_parts(message, param=param, names=names)
        elif role == "tool":
            role = "user"
            parts = [_function_response(message, param=param, names=names)]
        else:
            raise oi.unsupported(f"message role {role!r} is not supported", param=f"{param}.role")
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    if not contents:
        raise BadRequest("'messages' needs at least one user message", param="messages")
    return system, contents


def _user_parts(content: Any, *, param: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(oi.content_parts(content, param=param)):
        where = f"{param}[{j}]"
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                parts.append({"text": str(part["text"])})
        elif kind == "image_url":
            url = oi.image_url(part, param=where)
            data = oi.parse_data_url(url, param=f"{where}.image_url.url")
            if data is not None:
                parts.append({"inlineData": {"mimeType": data.media_type, "data": data.data}})
            else:
                mime = mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
                parts.append({"fileData": {"mimeType": mime, "fileUri": url}})
        elif kind == "file":
            file, _ = oi.file_data(part, param=where)
            parts.append({"inlineData": {"mimeType": file.media_type, "data": file.data}})
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            fmt = audio.get("format") or "wav"
            parts.append({"inlineData": {"mimeType": f"audio/{fmt}", "data": audio.get("data")}})
        else:
            raise oi.unsupported(f"content part type {kind!r} is not supported", param=where)
    return parts


def _model_parts(
    message: dict[str, Any], *, param: str, names: dict[str, str]
) -> list[dict[str, Any]]:
    text = oi.text_of(message.get("content"), param=f"{param}.content")
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    for k, (ident, name, args) in enumerate(oi.tool_calls(message, param=param)):
        names[ident] = name
        part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
        signature = signature_of(ident)
        if signature is None and k == 0:
            signature = SKIP_SIGNATURE
        if signature is not None:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _function_response(
    message: dict[str, Any], *, param: str, names: dict[str, str]
) -> dict[str, Any]:
    ident = oi.tool_call_id(message, param=param)
    name = names.get(ident)
    if name is None:
        raise BadRequest(
            f"'{param}.tool_call_id' does not match a tool call of an earlier assistant message",
            param=f"{param}.tool_call_id",
        )
    text = oi.text_of(message.get("content"), param=f"{param}.content")
    try:
        value = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        value = text
    response = value if isinstance(value, dict) else {"content": value}
    return {"functionResponse": {"name": name, "response": response}}


def usage_from(meta: Any) -> Usage | None:
    """``usageMetadata``: the prompt count includes cached tokens; thinking tokens are billed
    as output."""
    if not isinstance(meta, dict) or not isinstance(meta.get("promptTokenCount"), int):
        return None
    return Usage(
        prompt_tokens=count(meta, "promptTokenCount") + count(meta, "toolUsePromptTokenCount"),
        completion_tokens=count(meta, "candidatesTokenCount") + count(meta, "thoughtsTokenCount"),
        cached_tokens=count(meta, "cachedContentTokenCount"),
    )


def candidate_parts(candidate: dict[str, Any]) -> tuple[str, list[ToolCallOut]]:
    """A candidate's text (thought summaries left out) and function calls."""
    content = candidate.get("content") or {}
    texts = []
    calls = []
    for part in content.get("parts") or ():
        if not isinstance(part, dict) or part.get("thought"):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        fn = part.get("functionCall")
        if isinstance(fn, dict):
            args = orjson.dumps(fn.get("args") or {}).decode()
            ident = call_id(part.get("thoughtSignature"))
            calls.append(ToolCallOut(ident, str(fn.get("name")), args))
    return "".join(texts), calls


def generate_response(data: dict[str, Any]) -> tuple[list[ChoiceOut], Usage | None]:
    candidates = [c for c in data.get("candidates") or () if isinstance(c, dict)]
    choices = []
    for i, cand in enumerate(candidates):
        text, calls = candidate_parts(cand)
        reason = finish_reason(cand.get("finishReason"), has_calls=bool(calls))
        index = cand.get("index", i)
        choices.append(ChoiceOut((text or None) if calls else text, calls, reason, index))
    if not choices:
        # The prompt itself was blocked (promptFeedback.blockReason): nothing was generated.
        choices.append(ChoiceOut(None, [], "content_filter"))
    return choices, usage_from(data.get("usageMetadata"))
