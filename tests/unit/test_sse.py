from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluice.errors import ErrorKind, GatewayError
from sluice.providers.sse import ChunkInspector
from sluice.sse import SSESplitter

EVENTS = [
    b'{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}',
    b'{"choices":[{"index":0,"delta":{"content":"lo"}}]}',
    b'{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}',
    b"[DONE]",
]
STREAM = b"".join(b"data: " + e + b"\n\n" for e in EVENTS)


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_splitter_is_independent_of_how_bytes_arrive(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    splitter = SSESplitter()
    out = [payload for piece in pieces for payload in splitter.feed(piece)]
    assert out == EVENTS
    assert splitter.pending == b""


def test_splitter_handles_crlf_comments_and_fields() -> None:
    raw = (
        b': keep-alive\r\n\r\nevent: message\r\nid: 7\r\ndata: {"a":1}\r\n\r\ndata: x\ndata: y\n\n'
    )
    assert SSESplitter().feed(raw) == [b'{"a":1}', b"x\ny"]


def test_inspector_counts_and_drops_the_usage_chunk_unless_asked() -> None:
    quiet = ChunkInspector(include_usage=False)
    relayed = [quiet.relay(e) for e in EVENTS[:3]]
    assert relayed[0] == b"data: " + EVENTS[0] + b"\n\n"
    assert relayed[2] is None
    assert quiet.completion_chars == 5
    assert quiet.usage is not None and quiet.usage.completion_tokens == 2

    asked = ChunkInspector(include_usage=True)
    assert asked.relay(EVENTS[2]) == b"data: " + EVENTS[2] + b"\n\n"


def test_inspector_counts_tool_call_arguments() -> None:
    chunk = {
        "choices": [{"delta": {"tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}}]
    }
    inspector = ChunkInspector(include_usage=False)
    inspector.relay(orjson.dumps(chunk))
    assert inspector.completion_chars == 3


@pytest.mark.parametrize("payload", [b"{not json", b"[1,2]"])
def test_malformed_chunk_is_a_provider_error(payload: bytes) -> None:
    with pytest.raises(GatewayError) as info:
        ChunkInspector(include_usage=False).relay(payload)
    assert info.value.kind is ErrorKind.PROVIDER_BAD_RESPONSE


def test_error_event_mid_stream_is_raised_with_its_status() -> None:
    with pytest.raises(GatewayError) as info:
        ChunkInspector(include_usage=False).relay(b'{"error":{"message":"overloaded","code":529}}')
    assert info.value.kind is ErrorKind.PROVIDER_UNAVAILABLE
    assert info.value.message == "overloaded"
