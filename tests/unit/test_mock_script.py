from __future__ import annotations

import base64
import math
import struct

import pytest

from sluice.providers.mock import caps, embed
from sluice.providers.mock import script as s


def test_parse_defaults_and_parameters() -> None:
    assert s.MockScript.parse("chat") == s.MockScript()
    script = s.MockScript.parse("chat?ttft_ms=3000&chunks=5&usage=0", {"status": "429"})
    assert (script.ttft_ms, script.chunks, script.usage, script.status) == (3000.0, 5, False, 429)
    assert script.first_delay_s == 3.0


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("chat?nope=1", "unknown mock parameter 'nope'"),
        ("chat?chunks=many", "bad value"),
        ("chat?status=200", "HTTP error status"),
    ],
)
def test_parse_errors(model: str, message: str) -> None:
    with pytest.raises(s.ScriptError, match=message):
        s.MockScript.parse(model)


def test_flaky_fails_exactly_n_times_per_script() -> None:
    counter = s.FlakyCounter()
    script = s.MockScript.parse("chat?flaky=2")
    results = [counter.fails("a", script) for _ in range(4)]
    assert results == [503, 503, None, None]
    assert counter.fails("b", script) == 503
    always = s.MockScript.parse("chat?status=500")
    assert [counter.fails("c", always) for _ in range(3)] == [500, 500, 500]


def test_max_tokens_caps_the_answer() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 3}
    out = s.chat_completion(s.MockScript(), body, rid="1", created=0)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "length"
    assert len(choice["message"]["content"].split()) == 3
    assert out["usage"]["completion_tokens"] == 3
    assert out["usage"]["prompt_tokens"] > 0


def test_stream_chunks_join_to_the_non_streaming_text() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    script = s.MockScript.parse("chat?chunks=7&completion_tokens=30")
    full = s.chat_completion(script, body, rid="1", created=0)["choices"][0]["message"]["content"]
    chunks, usage = s.stream_chunks(script, body, rid="1", created=0, chat=True)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == full
    assert len(chunks) == 8  # 7 content chunks + the finish chunk
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert usage is not None and usage["choices"] == []


def test_tools_answer_with_a_tool_call_matching_the_schema() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    body = {"model": "m", "messages": [{"role": "user", "content": "?"}], "tools": [tool]}
    out = s.chat_completion(s.MockScript(), body, rid="1", created=0)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"mock"}'}


def test_json_schema_response_format() -> None:
    fmt = {
        "type": "json_schema",
        "json_schema": {
            "name": "x",
            "schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
        },
    }
    body = {"model": "m", "messages": [{"role": "user", "content": "?"}], "response_format": fmt}
    out = s.chat_completion(s.MockScript(), body, rid="1", created=0)
    assert out["choices"][0]["message"]["content"] == '{"n":1}'


def test_embeddings_are_deterministic_unit_vectors_in_both_encodings() -> None:
    script = s.MockScript.parse("embed?dim=16")
    a = embed.embeddings(script, {"input": ["alpha", "beta"]})
    b = embed.embeddings(script, {"input": "alpha"})
    va, vb = a["data"][0]["embedding"], b["data"][0]["embedding"]
    assert va == vb and len(va) == 16
    assert math.isclose(sum(v * v for v in va), 1.0, rel_tol=1e-4)
    assert a["data"][1]["embedding"] != va
    encoded = embed.embeddings(script, {"input": "alpha", "encoding_format": "base64"})
    decoded = struct.unpack("<16f", base64.b64decode(encoded["data"][0]["embedding"]))
    assert all(math.isclose(x, y, abs_tol=1e-6) for x, y in zip(decoded, va, strict=True))


def test_flaky_counts_are_bounded() -> None:
    counter = s.FlakyCounter()
    script = s.MockScript(flaky=1)
    for i in range(caps.MAX_FLAKY_SCRIPTS * 2):
        counter.fails(f"chat?flaky=1&n={i}", script)
    assert len(counter._calls) <= caps.MAX_FLAKY_SCRIPTS


def test_the_last_turn_decides_between_a_tool_call_and_text() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    asked = [{"role": "user", "content": "?"}]
    called = [*asked, {"role": "assistant", "tool_calls": [{"id": "c"}]}]
    formats = {
        "openai": {"role": "tool", "tool_call_id": "c", "content": "sunny"},
        "anthropic": {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "c", "content": "sunny"}],
        },
        "gemini": {"role": "user", "content": [{"functionResponse": {"response": "sunny"}}]},
        "bedrock": {"role": "user", "content": [{"toolResult": {"content": [{"text": "sunny"}]}}]},
    }
    first = s.plan_answer(s.MockScript(), {"messages": asked, "tools": [tool]})
    assert first.finish_reason == "tool_calls"
    for result in formats.values():
        body = {"messages": [*called, result], "tools": [tool]}
        answer = s.plan_answer(s.MockScript(), body)
        assert answer.finish_reason == "stop" and answer.tool_calls is None
        assert answer.text == "The tool returned: sunny"
        limited = s.plan_answer(s.MockScript(), {**body, "max_tokens": 2})
        assert (limited.text, limited.finish_reason) == ("The tool", "length")
        forced = s.plan_answer(s.MockScript(), {**body, "tool_choice": "required"})
        assert forced.finish_reason == "tool_calls"
    # A new question after the answer to a tool result calls the tool again.
    again = [*called, formats["openai"], {"role": "assistant", "content": "x"}, *asked]
    assert s.plan_answer(s.MockScript(), {"messages": again, "tools": [tool]}).tool_calls


def test_bag_of_words_embeddings_make_paraphrases_near() -> None:
    script = s.MockScript.parse("embed?dim=64&bow=1")
    assert script.bow and script.dim == 64
    texts = ["What is the capital city of France?", "what is the capital of France", "Bake bread"]
    data = embed.embeddings(script, {"input": texts})["data"]
    a, b, c = (d["embedding"] for d in data)
    assert all(abs(sum(v * v for v in e) - 1.0) < 1e-4 for e in (a, b, c))
    assert sum(x * y for x, y in zip(a, b, strict=True)) > 0.9
    assert abs(sum(x * y for x, y in zip(a, c, strict=True))) < 0.3
    # the default stays random-like per text, as before
    plain = embed.embeddings(s.MockScript.parse("embed?dim=64"), {"input": texts[:2]})["data"]
    assert sum(x * y for x, y in zip(*(d["embedding"] for d in plain), strict=True)) < 0.5
