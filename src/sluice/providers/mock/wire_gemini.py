"""The mock's Google formats: the Gemini API (``/v1beta/models/{m}:{method}``, API key) and
Vertex AI (``/v1/projects/.../publishers/google/models/{m}:{method}``, OAuth token from the
mock's ``/token``), plus the OAuth token endpoint itself."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from sluice.providers.mock import media_images as media
from sluice.providers.mock import script as s
from sluice.providers.mock import wire_common as w
from sluice.providers.mock.caps import MockRequestError
from sluice.providers.mock.reply import Reply, json_reply

_STUDIO = re.compile(r"^/v1(?:beta)?/models/([^/:]+):(\w+)$")
_VERTEX = re.compile(
    r"^/v1/projects/[^/]+/locations/[^/]+/publishers/google/models/([^/:]+):(\w+)$"
)
_METHODS = {
    "generateContent": "chat",
    "streamGenerateContent": "stream",
    "embedContent": "embed",
    "batchEmbedContents": "batch",
    "predict": "predict",
}
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
SIGNATURE = base64.b64encode(b"mock thought signature \xfa\xfb").decode()
"""What the mock sends as a function call's ``thoughtSignature`` (and expects back)."""
_SKIP = "skip_thought_signature_validator"


def route(path: str) -> tuple[str, str] | None:
    if path == "/token":
        return "token", ""
    for pattern, prefix in ((_STUDIO, ""), (_VERTEX, "vertex-")):
        match = pattern.match(path)
        if match and match.group(2) in _METHODS:
            return prefix + _METHODS[match.group(2)], unquote(match.group(1))
    return None


def auth(op: str, headers: Mapping[str, str]) -> int | None:
    if op.startswith("vertex-"):
        return None if headers.get("authorization", "").startswith("Bearer ya29.") else 401
    return None if headers.get("x-goog-api-key") else 403


def error(status: int, message: str, *, retry_after_s: float | None) -> Reply:
    err: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _STATUS.get(status, "UNKNOWN"),
    }
    if retry_after_s is not None:
        err["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{retry_after_s:g}s",
            }
        ]
    return json_reply(status, {"error": err})


def token_reply(raw: bytes) -> Reply:
    """OAuth 2.0 JWT bearer grant: any well-formed signed JWT gets a token."""
    form = {k: v[0] for k, v in parse_qs(raw.decode("latin-1")).items()}
    assertion = form.get("assertion", "")
    if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
        return json_reply(400, {"error": "unsupported_grant_type"})
    if assertion.count(".") != 2:
        return json_reply(400, {"error": "invalid_grant", "error_description": "bad assertion"})
    return json_reply(
        200, {"access_token": "ya29.mock-token", "expires_in": 3599, "token_type": "Bearer"}
    )


def check(op: str, body: dict[str, Any]) -> str:
    op = op.removeprefix("vertex-")
    if op == "embed":
        w.require(
            isinstance((body.get("content") or {}).get("parts"), list), "content.parts required"
        )
    elif op == "batch":
        w.require(isinstance(body.get("requests"), list), "requests required")
    elif op == "predict":
        w.require(isinstance(body.get("instances"), list), "instances required")
    else:
        _check_contents(body)
    return ""


def _check_contents(body: dict[str, Any]) -> None:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise w.WireError("contents must not be empty")
    calls: list[str] = []
    for i, content in enumerate(contents):
        role = content.get("role") if isinstance(content, dict) else None
        w.require(role in ("user", "model"), f"contents[{i}].role must be user or model")
        parts = content.get("parts")
        w.require(isinstance(parts, list) and bool(parts), f"contents[{i}].parts must not be empty")
        names = [p["functionCall"]["name"] for p in parts if "functionCall" in p]
        if names:
            first = next(p for p in parts if "functionCall" in p)
            w.require(
                first.get("thoughtSignature") in (SIGNATURE, _SKIP),
                f"contents[{i}]: function call is missing a thought_signature",
            )
        for part in parts:
            if "functionResponse" in part:
                w.require(
                    part["functionResponse"].get("name") in calls,
                    f"contents[{i}]: function response does not match a function call",
                )
        calls = names or (calls if role == "user" else [])


def view(body: dict[str, Any]) -> dict[str, Any]:
    system = (body.get("systemInstruction") or {}).get("parts")
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": c["role"], "content": c["parts"]} for c in body["contents"]]
    config = body.get("generationConfig") or {}
    out: dict[str, Any] = {"messages": messages, "max_tokens": config.get("maxOutputTokens")}
    declarations = [d for t in body.get("tools") or () for d in t.get("functionDeclarations") or ()]
    if declarations:
        out["tools"] = [
            w.tool_view(d.get("name"), d.get("parametersJsonSchema") or d.get("parameters"))
            for d in declarations
        ]
    mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
    if mode == "NONE":
        out["tool_choice"] = "none"
    elif mode == "ANY":
        out["tool_choice"] = "required"
    if config.get("responseMimeType") == "application/json":
        schema = config.get("responseJsonSchema")
        out["response_format"] = (
            {"type": "json_schema", "json_schema": {"schema": schema}}
            if schema
            else {"type": "json_object"}
        )
    return out


def _usage(answer: s.Answer) -> dict[str, int]:
    return {
        "promptTokenCount": answer.prompt_tokens,
        "candidatesTokenCount": answer.completion_tokens,
        "totalTokenCount": answer.prompt_tokens + answer.completion_tokens,
    }


def _response(
    parts: list[dict[str, Any]], finish: str | None, rid: str, model: str
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "modelVersion": model, "responseId": f"mock-{rid}"}


async def answer(script: s.MockScript, req: w.Request) -> Reply:
    op = req.op.removeprefix("vertex-")
    if op in ("embed", "batch", "predict"):
        await w.first_delay(script)
        return _embeddings(script, op, req.body)
    answer = w.plan(script, view(req.body))
    finish = "MAX_TOKENS" if answer.finish_reason == "length" else "STOP"
    call = answer.tool_calls[0] if answer.tool_calls else None
    if call is not None:
        fn = {"name": call["function"]["name"], "args": orjson.loads(call["function"]["arguments"])}
        parts: list[dict[str, Any]] = [{"functionCall": fn, "thoughtSignature": SIGNATURE}]
    else:
        parts = [{"text": answer.text or ""}]
    if op == "chat":
        await w.first_delay(script)
        out = _response(parts, finish, req.rid, req.model)
        if script.usage:
            out["usageMetadata"] = _usage(answer)
        return json_reply(200, out)

    def frame(obj: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps(obj) + b"\r\n\r\n"

    chunks = (
        [parts]
        if call is not None
        else [[{"text": p}] for p in w.pieces(answer.text or "", script)]
    )
    body = [frame(_response(c, None, req.rid, req.model)) for c in chunks]
    last = _response([{"text": ""}], finish, req.rid, req.model)
    if script.usage:
        last["usageMetadata"] = _usage(answer)
    return Reply(
        200, stream=w.paced(script, [], body, [frame(last)], malformed=b"data: {not json\r\n\r\n")
    )


def _embeddings(script: s.MockScript, op: str, body: dict[str, Any]) -> Reply:
    if op == "predict" and body["instances"] and "prompt" in body["instances"][0]:
        try:  # Imagen: image generation
            return json_reply(200, media.imagen_predictions(body))
        except MockRequestError as exc:
            return error(400, str(exc), retry_after_s=None)
    if op == "predict":
        texts = [str(i.get("content")) for i in body["instances"]]
        dim = (body.get("parameters") or {}).get("outputDimensionality")
        vectors, _ = w.vectors(script, texts, dim)
        predictions = [
            {
                "embeddings": {
                    "values": v,
                    "statistics": {"token_count": w.token_count(t), "truncated": False},
                }
            }
            for v, t in zip(vectors, texts, strict=True)
        ]
        return json_reply(200, {"predictions": predictions})
    requests = body["requests"] if op == "batch" else [body]
    texts = ["".join(p.get("text", "") for p in r["content"]["parts"]) for r in requests]
    vectors, _ = w.vectors(script, texts, requests[0].get("outputDimensionality"))
    if op == "embed":
        return json_reply(200, {"embedding": {"values": vectors[0]}})
    return json_reply(200, {"embeddings": [{"values": v} for v in vectors]})
