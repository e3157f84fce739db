"""Gemini / Vertex AI: the pure translation, the stream translator, embeddings and errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.providers.gemini import embed
from sluice.providers.gemini.errors import ERRORS
from sluice.providers.gemini.stream import GeminiTranslator
from sluice.providers.gemini.transform import (
    SKIP_SIGNATURE,
    call_id,
    generate_request,
    generate_response,
    signature_of,
)
from sluice.providers.vertex.provider import default_base_url, publisher_of
from sluice.types import Usage
from tests.providers.conftest import sse_objects

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "additionalProperties": False,
}
TOOL = {
    "type": "function",
    "function": {"name": "weather", "description": "d", "parameters": SCHEMA},
}


def test_request_shape() -> None:
    out = generate_request(
        {
            "messages": [
                {"role": "system", "content": "Be terse."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
                        {"type": "image_url", "image_url": {"url": "gs://bucket/cat.png"}},
                    ],
                },
                {"role": "assistant", "content": "A cat."},
                {"role": "user", "content": "Sure?"},
            ],
            "max_tokens": 50,
            "temperature": 0.2,
            "top_p": 0.5,
            "stop": ["END"],
            "seed": 3,
            "n": 2,
            "response_format": {"type": "json_schema", "json_schema": {"schema": SCHEMA}},
        }
    )
    assert out["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    assert [c["role"] for c in out["contents"]] == ["user", "model", "user"]
    assert out["contents"][0]["parts"][1] == {
        "inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}
    }
    assert out["contents"][0]["parts"][2] == {
        "fileData": {"mimeType": "image/png", "fileUri": "gs://bucket/cat.png"}
    }
    assert out["generationConfig"] == {
        "maxOutputTokens": 50,
        "stopSequences": ["END"],
        "temperature": 0.2,
        "topP": 0.5,
        "seed": 3,
        "candidateCount": 2,
        "responseMimeType": "application/json",
        "responseJsonSchema": SCHEMA,
    }


def test_tools_and_named_choice() -> None:
    out = generate_request(
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [TOOL],
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
        }
    )
    assert out["tools"] == [
        {
            "functionDeclarations": [
                {"name": "weather", "parametersJsonSchema": SCHEMA, "description": "d"}
            ]
        }
    ]
    assert out["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}
    }


def test_signature_travels_in_the_tool_call_id() -> None:
    signature = "CiQB+/8="
    ident = call_id(signature)
    assert ident.startswith("call_") and "+" not in ident and "/" not in ident and "=" not in ident
    assert signature_of(ident) == signature
    assert signature_of(call_id(None)) is None


def _history(call: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": call["id"], "content": "plain text"},
    ]


def test_function_calls_and_responses() -> None:
    ident = call_id("c2ln")
    call = {
        "id": ident,
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
    }
    out = generate_request({"messages": _history(call)})
    model_turn, user_turn = out["contents"][1], out["contents"][2]
    assert model_turn == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "weather", "args": {"city": "Oslo"}},
                "thoughtSignature": "c2ln",
            }
        ],
    }
    assert user_turn["parts"] == [
        {"functionResponse": {"name": "weather", "response": {"temp": 21}}},
        {"functionResponse": {"name": "weather", "response": {"content": "plain text"}}},
    ]
    foreign = {**call, "id": "toolu_from_elsewhere"}
    parts = generate_request({"messages": _history(foreign)})["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == SKIP_SIGNATURE


def test_unknown_tool_call_id_is_a_bad_request() -> None:
    with pytest.raises(BadRequest) as info:
        generate_request(
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "tool", "tool_call_id": "nope", "content": "1"},
                ]
            }
        )
    assert info.value.param == "messages[1].tool_call_id"


def test_response_mapping() -> None:
    choices, usage = generate_response(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "thinking...", "thought": True},
                            {
                                "functionCall": {"name": "weather", "args": {"city": "Oslo"}},
                                "thoughtSignature": "c2ln",
                            },
                        ],
                    },
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 100,
                "cachedContentTokenCount": 60,
                "candidatesTokenCount": 5,
                "thoughtsTokenCount": 20,
                "toolUsePromptTokenCount": 3,
            },
        }
    )
    (choice,) = choices
    assert choice.text is None and choice.finish_reason == "tool_calls"
    assert signature_of(choice.tool_calls[0].id) == "c2ln"
    assert orjson.loads(choice.tool_calls[0].arguments) == {"city": "Oslo"}
    assert usage == Usage(103, 25, 60)
    safety = generate_response(
        {"candidates": [{"content": {"parts": []}, "finishReason": "SAFETY"}]}
    )
    assert safety[0][0].finish_reason == "content_filter"
    blocked = generate_response({"promptFeedback": {"blockReason": "SAFETY"}})
    assert blocked[0][0].finish_reason == "content_filter" and blocked[0][0].text is None


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\r\n\r\n"


def test_stream_translation() -> None:
    translator = GeminiTranslator(include_usage=True)
    raw = _sse(
        {"candidates": [{"content": {"parts": [{"text": "Hel"}]}, "index": 0}], "responseId": "r1"}
    )
    raw += _sse(
        {
            "candidates": [
                {"content": {"parts": [{"text": "lo"}]}, "finishReason": "MAX_TOKENS", "index": 0}
            ],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2},
        }
    )
    out = (
        b"".join(translator.feed(raw[i : i + 5]) for i in range(0, len(raw), 5))
        + translator.close()
    )
    chunks = sse_objects(out)
    assert chunks[0]["id"] == "r1"
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        == "Hello"
    )
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["total_tokens"] == 6


def test_stream_without_finish_is_interrupted_and_errors_map() -> None:
    translator = GeminiTranslator(include_usage=False)
    translator.feed(_sse({"candidates": [{"content": {"parts": [{"text": "Hel"}]}, "index": 0}]}))
    with pytest.raises(GatewayError) as info:
        translator.close()
    assert info.value.kind is ErrorKind.PROVIDER_STREAM_INTERRUPTED
    with pytest.raises(GatewayError) as info:
        GeminiTranslator(include_usage=False).feed(
            _sse({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
        )
    assert info.value.kind is ErrorKind.PROVIDER_RATE_LIMITED


def test_retry_info_gives_the_retry_delay() -> None:
    body = orjson.dumps(
        {
            "error": {
                "code": 429,
                "message": "Quota exceeded",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}
                ],
            }
        }
    )
    err = ERRORS.error(429, body, {})
    assert err.kind is ErrorKind.PROVIDER_RATE_LIMITED
    assert (err.retry_after_s, err.message) == (17.0, "Quota exceeded")


def test_embedding_transforms() -> None:
    method, one = embed.studio_request(
        {"input": "hi", "dimensions": 8, "task_type": "RETRIEVAL_QUERY"}, "models/e"
    )
    assert method == "embedContent"
    assert one == {
        "content": {"parts": [{"text": "hi"}]},
        "outputDimensionality": 8,
        "taskType": "RETRIEVAL_QUERY",
    }
    method, batch = embed.studio_request({"input": ["a", "b"]}, "models/e")
    assert method == "batchEmbedContents"
    assert [r["model"] for r in batch["requests"]] == ["models/e", "models/e"]
    assert embed.studio_response({"embeddings": [{"values": [1, 0]}, {"values": [0, 1]}]}) == (
        [[1.0, 0.0], [0.0, 1.0]],
        None,
    )
    assert embed.vertex_request({"input": ["a"], "dimensions": 4}) == {
        "instances": [{"content": "a"}],
        "parameters": {"outputDimensionality": 4},
    }
    vectors, usage = embed.vertex_response(
        {"predictions": [{"embeddings": {"values": [0.5], "statistics": {"token_count": 3}}}]}
    )
    assert vectors == [[0.5]] and usage == Usage(3)
    with pytest.raises(GatewayError):
        embed.studio_request({"input": [[1, 2, 3]]}, "models/e")


def test_vertex_routing_helpers() -> None:
    assert publisher_of("gemini-2.5-pro") == ("google", "gemini-2.5-pro")
    assert publisher_of("claude-sonnet-4-5@20250929") == ("anthropic", "claude-sonnet-4-5@20250929")
    assert publisher_of("meta/llama-4") == ("meta", "llama-4")
    assert default_base_url("global") == "https://aiplatform.googleapis.com"
    assert default_base_url("europe-west4") == "https://europe-west4-aiplatform.googleapis.com"
