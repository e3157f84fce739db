"""The per-event caps of upstream streams, fed reads split anywhere."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluice.errors import ErrorKind, GatewayError
from sluice.providers.reading import FrameCap, SSECap
from sluice.providers.sse import ChunkInspector


def feed(cap: SSECap | FrameCap, data: bytes, cuts: list[int]) -> None:
    last = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}):
        cap.check(data[last:cut])
        last = cut
    cap.check(data[last:])


def sse(sizes: list[int], sep: bytes) -> bytes:
    return b"".join(b"data: " + b"x" * n + sep for n in sizes)


@given(
    sizes=st.lists(st.integers(0, 200), min_size=1, max_size=8),
    cuts=st.lists(st.integers(0, 5000), max_size=12),
    crlf=st.booleans(),
)
def test_events_at_or_under_the_cap_pass_however_the_reads_fall(
    sizes: list[int], cuts: list[int], crlf: bool
) -> None:
    sep = b"\r\n\r\n" if crlf else b"\n\n"
    data = sse(sizes, sep)
    limit = max(sizes) + len(b"data: ") + 2  # an event and a stray byte of its blank line
    feed(SSECap(limit, "d"), data, cuts)


@given(
    before=st.lists(st.integers(0, 50), max_size=4),
    cuts=st.lists(st.integers(0, 5000), max_size=12),
    crlf=st.booleans(),
)
def test_an_event_over_the_cap_fails_however_the_reads_fall(
    before: list[int], cuts: list[int], crlf: bool
) -> None:
    sep = b"\r\n\r\n" if crlf else b"\n\n"
    data = sse([*before, 300], sep)
    with pytest.raises(GatewayError) as info:
        feed(SSECap(200, "dep/x"), data, cuts)
    assert info.value.kind is ErrorKind.PROVIDER_BAD_RESPONSE
    assert "dep/x" in info.value.message and "SLUICE_MAX_UPSTREAM_EVENT_BYTES" in info.value.message


def test_a_crlf_stream_whose_first_line_break_is_split() -> None:
    cap = SSECap(20, "d")
    for part in (b"data: 0123456789\r", b"\n", b"\r\n", b"data: 0123456789\r\n\r\n") * 3:
        cap.check(part)


def test_an_open_event_is_refused_before_it_ends() -> None:
    cap = SSECap(100, "d")
    cap.check(b"data: " + b"x" * 90)
    with pytest.raises(GatewayError):
        cap.check(b"x" * 20)


def frame(payload_size: int) -> bytes:
    total = 16 + payload_size
    return struct.pack(">II", total, 0) + b"\0" * 4 + b"p" * payload_size + b"\0" * 4


@given(cuts=st.lists(st.integers(0, 5000), max_size=12))
def test_event_stream_frames_are_measured_by_their_prelude(cuts: list[int]) -> None:
    data = frame(10) + frame(100) + frame(5)
    feed(FrameCap(116, "d"), data, cuts)
    with pytest.raises(GatewayError) as info:
        feed(FrameCap(115, "d"), data, cuts)
    assert info.value.kind is ErrorKind.PROVIDER_BAD_RESPONSE


def test_a_stream_is_finished_by_a_finish_reason_and_usage() -> None:
    inspector = ChunkInspector(include_usage=False)
    inspector.relay(b'{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}')
    assert not inspector.finished
    inspector.relay(b'{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}')
    assert not inspector.finished  # no usage yet: the stream may still be cut
    inspector.relay(b'{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}')
    assert inspector.finished
    # Usage in the finishing chunk itself (some servers) also counts.
    other = ChunkInspector(include_usage=True)
    other.relay(
        b'{"choices":[{"index":0,"delta":{},"finish_reason":"length"}],'
        b'"usage":{"prompt_tokens":3,"completion_tokens":1}}'
    )
    assert other.finished
