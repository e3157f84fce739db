"""Bedrock: Converse translation, the event-stream translator, SigV4 signing, credentials and
embeddings."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from sluice.config.providers import Timeouts, validate_provider
from sluice.config.secrets import NO_SECRETS, Secrets
from sluice.errors import ErrorKind, GatewayError
from sluice.providers.base import UpstreamCall
from sluice.providers.bedrock import embed
from sluice.providers.bedrock.auth import AwsCredentials, resolve_region, sign
from sluice.providers.bedrock.provider import ERRORS
from sluice.providers.bedrock.stream import ConverseTranslator
from sluice.providers.bedrock.transform import (
    JSON_TOOL,
    converse_request,
    converse_response,
    forces_json_tool,
)
from sluice.providers.mock import script as mock_script
from sluice.providers.mock.wire_bedrock import encode_message, frame, view
from sluice.types import Usage
from tests.providers.conftest import sse_objects

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
CALL = {
    "id": "tooluse_1",
    "type": "function",
    "function": {"name": "lookup", "arguments": '{"q":1}'},
}


def test_converse_request() -> None:
    out = converse_request(
        {
            "messages": [
                {"role": "system", "content": "Be terse."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Look"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/webp;base64,UklGRg=="},
                        },
                    ],
                },
                {"role": "assistant", "content": None, "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "tooluse_1", "content": "found"},
            ],
            "max_tokens": 20,
            "temperature": 0.1,
            "stop": ["X"],
            "tools": [TOOL],
            "tool_choice": "required",
        }
    )
    assert out["system"] == [{"text": "Be terse."}]
    assert out["messages"][0]["content"][1] == {
        "image": {"format": "webp", "source": {"bytes": "UklGRg=="}}
    }
    assert out["messages"][1] == {
        "role": "assistant",
        "content": [{"toolUse": {"toolUseId": "tooluse_1", "name": "lookup", "input": {"q": 1}}}],
    }
    assert out["messages"][2]["content"] == [
        {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "found"}]}}
    ]
    assert out["inferenceConfig"] == {"maxTokens": 20, "temperature": 0.1, "stopSequences": ["X"]}
    assert out["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}],
        "toolChoice": {"any": {}},
    }


def test_tool_choice_none_and_refusals() -> None:
    plain = {"messages": [{"role": "user", "content": "x"}], "tools": [TOOL], "tool_choice": "none"}
    assert "toolConfig" not in converse_request(plain)
    named = {**plain, "tool_choice": {"type": "function", "function": {"name": "lookup"}}}
    assert converse_request(named)["toolConfig"]["toolChoice"] == {"tool": {"name": "lookup"}}
    remote = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(GatewayError) as info:
        converse_request({"messages": [{"role": "user", "content": [remote]}]})
    assert info.value.kind is ErrorKind.CALLER_UNSUPPORTED
    assert info.value.param == "messages[0].content[0].image_url.url"


SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def test_response_format_forces_the_answer_tool() -> None:
    body = {
        "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": SCHEMA}},
    }
    out = converse_request(body)
    assert out["system"] == [{"text": "Be terse."}]  # no instruction: the tool holds the schema
    assert out["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": JSON_TOOL,
                    "description": "Answer with this JSON",
                    "inputSchema": {"json": SCHEMA},
                }
            }
        ],
        "toolChoice": {"tool": {"name": JSON_TOOL}},
    }
    assert forces_json_tool(out)
    loose = converse_request({**body, "response_format": {"type": "json_object"}})
    assert loose["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {
        "json": {"type": "object"}
    }
    # tool_choice "none" sends no tools: the answer tool is forced then too.
    unused = converse_request({**body, "tools": [TOOL], "tool_choice": "none"})
    assert forces_json_tool(unused)
    assert not forces_json_tool(converse_request({"messages": body["messages"]}))


def test_response_format_with_own_tools_becomes_an_instruction() -> None:
    body = {
        "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": SCHEMA}},
        "tools": [TOOL],
    }
    out = converse_request(body)
    assert not forces_json_tool(out)
    assert [t["toolSpec"]["name"] for t in out["toolConfig"]["tools"]] == ["lookup"]
    assert out["system"][0] == {"text": "Be terse."}
    assert out["system"][1]["text"].endswith(orjson.dumps(SCHEMA).decode())
    loose = converse_request({**body, "response_format": {"type": "json_object"}})
    assert "JSON object only" in loose["system"][1]["text"]


def test_answer_tool_input_is_the_answer_text() -> None:
    data = {
        "output": {
            "message": {
                "content": [
                    {"text": "Here you go:"},
                    {"toolUse": {"toolUseId": "t1", "name": JSON_TOOL, "input": {"a": 1}}},
                ]
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 5, "outputTokens": 2},
    }
    choice, usage = converse_response(data, json_tool=True)
    assert (choice.text, choice.tool_calls, choice.finish_reason) == ('{"a":1}', [], "stop")
    assert usage == Usage(5, 2)
    # Without the forced tool a tool of that name is the caller's own: a tool call.
    own, _ = converse_response(data)
    assert [c.name for c in own.tool_calls] == [JSON_TOOL] and own.finish_reason == "tool_calls"
    cut, _ = converse_response({**data, "stopReason": "max_tokens"}, json_tool=True)
    assert cut.finish_reason == "length"


def test_mock_answers_the_forced_tool_with_the_schema() -> None:
    converse = converse_request(
        {
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "r", "schema": SCHEMA},
            },
        }
    )
    converse["toolConfig"]["tools"].insert(0, {"toolSpec": {"name": "other"}})
    answer = mock_script.plan_answer(mock_script.MockScript(), view(converse))
    assert answer.tool_calls is not None
    call = answer.tool_calls[0]["function"]
    assert call["name"] == JSON_TOOL and orjson.loads(call["arguments"]) == {"a": 1}


def test_converse_response_and_cache_usage() -> None:
    choice, usage = converse_response(
        {
            "output": {
                "message": {
                    "content": [
                        {"text": "Hi"},
                        {"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {}}},
                    ]
                }
            },
            "stopReason": "tool_use",
            "usage": {
                "inputTokens": 5,
                "outputTokens": 2,
                "cacheReadInputTokens": 10,
                "cacheWriteInputTokens": 1,
            },
        }
    )
    assert (choice.text, choice.finish_reason) == ("Hi", "tool_calls")
    assert choice.tool_calls[0].arguments == "{}"
    assert usage == Usage(16, 2, 10, 1)
    filtered = converse_response(
        {"output": {"message": {"content": []}}, "stopReason": "guardrail_intervened"}
    )
    assert filtered[0].finish_reason == "content_filter"


def _event(kind: str, data: dict[str, object]) -> bytes:
    return frame(kind, orjson.dumps(data))


def test_event_stream_translation_across_frame_boundaries() -> None:
    raw = b"".join(
        [
            _event("messageStart", {"role": "assistant"}),
            _event(
                "contentBlockStart",
                {
                    "contentBlockIndex": 0,
                    "start": {"toolUse": {"toolUseId": "t1", "name": "lookup"}},
                },
            ),
            _event(
                "contentBlockDelta",
                {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"q"'}}},
            ),
            _event(
                "contentBlockDelta",
                {"contentBlockIndex": 0, "delta": {"toolUse": {"input": ":1}"}}},
            ),
            _event("contentBlockStop", {"contentBlockIndex": 0}),
            _event("messageStop", {"stopReason": "tool_use"}),
            _event("metadata", {"usage": {"inputTokens": 3, "outputTokens": 4}}),
        ]
    )
    translator = ConverseTranslator(include_usage=True, model="m")
    out = b"".join(translator.feed(raw[i : i + 11]) for i in range(0, len(raw), 11))
    assert translator.done
    chunks = sse_objects(out + translator.close())
    calls = [
        tc
        for c in chunks
        if c["choices"]
        for tc in c["choices"][0]["delta"].get("tool_calls") or ()
    ]
    assert calls[0]["id"] == "t1"
    assert "".join(tc["function"]["arguments"] for tc in calls) == '{"q":1}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["prompt_tokens"] == 3
    assert translator.usage == Usage(3, 4)


def _answer_tool_stream(stop: str) -> bytes:
    start = {"toolUse": {"toolUseId": "t1", "name": JSON_TOOL}}
    return b"".join(
        [
            _event("messageStart", {"role": "assistant"}),
            _event("contentBlockStart", {"contentBlockIndex": 0, "start": start}),
            _event(
                "contentBlockDelta",
                {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"a"'}}},
            ),
            _event(
                "contentBlockDelta",
                {"contentBlockIndex": 0, "delta": {"toolUse": {"input": ":1}"}}},
            ),
            _event("contentBlockStop", {"contentBlockIndex": 0}),
            _event("messageStop", {"stopReason": stop}),
            _event("metadata", {"usage": {"inputTokens": 3, "outputTokens": 4}}),
        ]
    )


def test_event_stream_answer_tool_streams_as_text() -> None:
    translator = ConverseTranslator(include_usage=False, model="m", json_tool=True)
    out = translator.feed(_answer_tool_stream("tool_use"))
    chunks = sse_objects(out + translator.close())
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert not any("tool_calls" in d for d in deltas)
    assert "".join(d.get("content") or "" for d in deltas) == '{"a":1}'
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert translator.completion_chars == len('{"a":1}')
    cut = ConverseTranslator(include_usage=False, model="m", json_tool=True)
    tail = sse_objects(cut.feed(_answer_tool_stream("max_tokens")) + cut.close())
    assert tail[-1]["choices"][0]["finish_reason"] == "length"
    # Not forced: a tool of that name is the caller's, streamed as a tool call.
    own = ConverseTranslator(include_usage=False, model="m")
    calls = sse_objects(own.feed(_answer_tool_stream("tool_use")) + own.close())
    assert calls[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == JSON_TOOL
    assert calls[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_event_stream_exceptions_and_corruption() -> None:
    throttled = encode_message(
        {":exception-type": "throttlingException", ":message-type": "exception"},
        b'{"message":"slow down"}',
    )
    translator = ConverseTranslator(include_usage=False, model="m")
    translator.feed(_event("messageStart", {"role": "assistant"}))
    with pytest.raises(GatewayError) as info:
        translator.feed(throttled)
    assert info.value.kind is ErrorKind.PROVIDER_RATE_LIMITED and info.value.message == "slow down"
    good = _event("messageStart", {"role": "assistant"})
    corrupt = good[:-1] + bytes([good[-1] ^ 0xFF])
    with pytest.raises(GatewayError) as info:
        ConverseTranslator(include_usage=False, model="m").feed(corrupt)
    assert info.value.kind is ErrorKind.PROVIDER_BAD_RESPONSE
    early = ConverseTranslator(include_usage=False, model="m")
    early.feed(good)
    with pytest.raises(GatewayError) as info:
        early.close()
    assert info.value.kind is ErrorKind.PROVIDER_STREAM_INTERRUPTED


def test_model_error_424_is_the_providers_fault() -> None:
    err = ERRORS.error(424, b'{"message":"model failed"}', {})
    assert err.kind is ErrorKind.PROVIDER_ERROR and err.status == 502 and err.retriable


def test_sigv4_headers() -> None:
    from botocore.credentials import Credentials

    url = "https://bedrock-runtime.eu-west-1.amazonaws.com/model/anthropic.claude-3%3A0/converse"
    headers = sign(
        Credentials("AKIDEXAMPLE", "secret", "session-token"),
        region="eu-west-1",
        url=url,
        body=b"{}",
        headers={"Content-Type": "application/json"},
    )
    auth = headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/bedrock/aws4_request" in auth
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token" in auth
    assert headers["X-Amz-Security-Token"] == "session-token"
    other = sign(
        Credentials("AKIDEXAMPLE", "secret"), region="eu-west-1", url=url, body=b"{ }", headers={}
    )
    assert other["Authorization"].split("Signature=")[1] != auth.split("Signature=")[1]


async def test_credentials_from_config_refs_and_the_aws_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLUICE_TEST_AWS_ID", "AKIDFROMREF")
    monkeypatch.setenv("SLUICE_TEST_AWS_SECRET", "s3cret")
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMCHAIN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "chain-secret")
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    async with aiohttp.ClientSession() as session:
        call = UpstreamCall("m", "d", "r", session, Timeouts())
        refs = validate_provider(
            {
                "type": "bedrock",
                "access_key_id": "env:SLUICE_TEST_AWS_ID",
                "secret_access_key": "env:SLUICE_TEST_AWS_SECRET",
            }
        )
        creds = await AwsCredentials("b", refs, Secrets.resolve(refs.credential_refs())).get(call)
        assert (creds.access_key, creds.secret_key, creds.token) == ("AKIDFROMREF", "s3cret", None)
        chain = validate_provider({"type": "bedrock"})
        creds = await AwsCredentials("b", chain, NO_SECRETS).get(call)
        assert (creds.access_key, creds.secret_key) == ("AKIDFROMCHAIN", "chain-secret")
        assert resolve_region(chain) == "ap-south-1"
        assert resolve_region(chain.model_copy(update={"region": "us-west-2"})) == "us-west-2"
    with pytest.raises(ValueError, match="given together"):
        validate_provider({"type": "bedrock", "access_key_id": "x"})


def test_embedding_transforms() -> None:
    assert embed.family("amazon.titan-embed-text-v2:0") == "titan"
    assert embed.family("us.cohere.embed-v4:0") == "cohere"
    with pytest.raises(GatewayError):
        embed.family("anthropic.claude-3")
    assert embed.titan_requests({"input": ["a", "b"], "dimensions": 256}) == [
        {"inputText": "a", "dimensions": 256},
        {"inputText": "b", "dimensions": 256},
    ]
    assert embed.titan_response({"embedding": [1, 2], "inputTextTokenCount": 4}) == ([1.0, 2.0], 4)
    assert embed.cohere_request({"input": "a", "input_type": "search_query"}) == {
        "texts": ["a"],
        "input_type": "search_query",
        "embedding_types": ["float"],
    }
    vectors, usage = embed.cohere_response(
        {"embeddings": {"float": [[0.5]]}}, {embed.TOKEN_HEADER: "7"}
    )
    assert vectors == [[0.5]] and usage == Usage(7)


async def test_a_credential_chain_that_hangs_or_fails_maps_to_the_error_tree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Resolving the chain (instance metadata, SSO) waits at most the call's time to first
    byte: a 504 ``provider_timeout``; a chain that fails is a 503, never a bare exception."""
    import threading

    import botocore.exceptions
    import botocore.session

    release = threading.Event()

    class Hanging:
        def get_frozen_credentials(self) -> object:
            release.wait(10)
            raise botocore.exceptions.NoCredentialsError()

    class Failing:
        def get_frozen_credentials(self) -> object:
            raise botocore.exceptions.CredentialRetrievalError(provider="sso", error_msg="x")

    chain = validate_provider({"type": "bedrock"})
    async with aiohttp.ClientSession() as session:
        call = UpstreamCall("m", "d", "r", session, Timeouts(ttfb_s=0.05))
        monkeypatch.setattr(botocore.session.Session, "get_credentials", lambda self: Hanging())
        try:
            with pytest.raises(GatewayError) as timed_out:
                await AwsCredentials("b", chain, NO_SECRETS).get(call)
        finally:
            release.set()
        monkeypatch.setattr(botocore.session.Session, "get_credentials", lambda self: Failing())
        # A deadline far beyond a thread hand-off on a loaded host: the failure, not it, ends
        # this call.
        patient = UpstreamCall("m", "d", "r", session, Timeouts(ttfb_s=30))
        with pytest.raises(GatewayError) as failed:
            await AwsCredentials("b", chain, NO_SECRETS).get(patient)
    assert timed_out.value.kind is ErrorKind.PROVIDER_TIMEOUT and timed_out.value.status == 504
    assert failed.value.kind is ErrorKind.GATEWAY_UNAVAILABLE and failed.value.status == 503
    assert "CredentialRetrievalError" in failed.value.message


def test_structured_output_uses_the_forced_tool_only_where_the_family_accepts_it() -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
    }
    for model in ("anthropic.claude-3-5-sonnet-20241022-v2:0", "us.amazon.nova-pro-v1:0", "chat"):
        out = converse_request(body, model=model)
        assert out["toolConfig"]["toolChoice"] == {"tool": {"name": "sluice_json_answer"}}
        assert "system" not in out
    llama = converse_request(body, model="meta.llama3-1-70b-instruct-v1:0")
    assert "toolConfig" not in llama
    assert "JSON schema" in llama["system"][0]["text"]
