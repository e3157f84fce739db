"""Upstream answers are read within bounds, and streams end on what the provider sent: caps
on bodies and events, a complete stream without its terminal event, valid events before a
malformed one in the same read. Against the mock upstream (in this event loop), every adapter
where the behaviour is shared."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from sluice.errors import ErrorKind, GatewayError
from sluice.providers.anthropic.stream import MessagesRelay
from sluice.providers.base import ReadLimits, UpstreamCall
from tests.providers.conftest import CASES, Harness, chat_request, sse_objects

MESSAGES = [{"role": "user", "content": "Say something about sluices."}]
SMALL = ReadLimits(body_bytes=64 * 1024, event_bytes=16 * 1024)


def limited(call: UpstreamCall, limits: ReadLimits = SMALL) -> UpstreamCall:
    return dataclasses.replace(call, limits=limits)


async def collect(
    harness: Harness, script: str, **request: object
) -> tuple[bytes, GatewayError | None]:
    req = chat_request({"messages": MESSAGES}, stream=True, **request)  # type: ignore[arg-type]
    stream = await harness.provider.open_stream(req, limited(harness.call(script)))
    pieces: list[bytes] = []
    try:
        async for piece in stream:
            pieces.append(piece)
    except GatewayError as exc:
        return b"".join(pieces), exc
    finally:
        await stream.aclose()
    return b"".join(pieces), None


async def test_valid_events_read_with_a_malformed_one_are_relayed_first(harness: Harness) -> None:
    """The whole stream arrives in one read: the two valid content events before the bad
    one still reach the client, then the stream fails."""
    out, error = await collect(harness, "chat?malformed=2&one_write=1")
    assert error is not None and error.kind is ErrorKind.PROVIDER_BAD_RESPONSE
    text = "".join(
        (c["choices"][0].get("delta") or {}).get("content") or ""
        for c in sse_objects(out)
        if c.get("choices")
    )
    assert text.startswith("Sluice relays"), out


@pytest.mark.parametrize("case", [c for c in CASES if c.name == "openai"], ids=["openai"])
@pytest.mark.parametrize("chunked", [0, 1])
async def test_a_body_over_the_cap_is_a_bad_response(harness: Harness, chunked: int) -> None:
    """With ``Content-Length`` the answer is refused before it is read; chunked, it is
    refused once the cap is passed."""
    script = f"chat?pad_bytes={4 * 1024 * 1024}&chunked={chunked}"
    with pytest.raises(GatewayError) as info:
        await harness.provider.send(
            chat_request({"messages": MESSAGES}), limited(harness.call(script))
        )
    assert info.value.kind is ErrorKind.PROVIDER_BAD_RESPONSE
    assert info.value.status == 502
    assert (
        "65536 bytes" in info.value.message
        and "SLUICE_MAX_UPSTREAM_BODY_BYTES" in info.value.message
    )
    # Under the cap the same padded answer goes through.
    ok = await harness.provider.send(
        chat_request({"messages": MESSAGES}),
        limited(harness.call(f"chat?pad_bytes=1000&chunked={chunked}")),
    )
    assert len(orjson.loads(ok.body)["mock_padding"]) == 1000


@pytest.mark.parametrize("case", [c for c in CASES if c.name == "openai"], ids=["openai"])
async def test_a_stream_event_over_the_cap_fails_the_stream(harness: Harness) -> None:
    out, error = await collect(harness, "chat?pad_bytes=100000&chunk_delay_ms=5")
    assert error is not None and error.kind is ErrorKind.PROVIDER_BAD_RESPONSE
    assert "SLUICE_MAX_UPSTREAM_EVENT_BYTES" in error.message
    assert len(out) < SMALL.event_bytes  # the oversized event was never relayed
    out, error = await collect(harness, "chat?pad_bytes=1000")
    assert error is None


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.name in ("openai", "anthropic")], ids=["openai", "anthropic"]
)
async def test_a_finished_stream_without_its_terminal_event_is_complete(harness: Harness) -> None:
    """``finish_reason`` (Anthropic: the ``message_delta`` stop reason) and the usage arrived,
    then the body ended without ``[DONE]`` (``message_stop``): complete, not interrupted."""
    out, error = await collect(harness, "chat?no_done=1", include_usage=True)
    assert error is None
    chunks = sse_objects(out)
    assert any(c["choices"] and c["choices"][0].get("finish_reason") == "stop" for c in chunks)
    assert chunks[-1]["usage"]["completion_tokens"] == 64
    # Cut before the finish: still interrupted.
    out, error = await collect(harness, "chat?cut=3&chunk_delay_ms=5", include_usage=True)
    assert error is not None and error.kind is ErrorKind.PROVIDER_STREAM_INTERRUPTED


def test_the_native_messages_relay_adds_the_missing_message_stop() -> None:
    relay = MessagesRelay()
    events = [
        ("message_start", {"message": {"usage": {"input_tokens": 5, "output_tokens": 1}}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "hi"}}),
        ("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
    ]
    raw = b"".join(
        b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **obj}) + b"\n\n"
        for name, obj in events
    )
    assert relay.feed(raw) == raw
    assert b"message_stop" in relay.close()
    assert relay.usage is not None and relay.usage.completion_tokens == 2
    # Without the stop reason the same stream is cut.
    cut = MessagesRelay()
    cut.feed(raw.rsplit(b"event: message_delta", 1)[0])
    with pytest.raises(GatewayError) as info:
        cut.close()
    assert info.value.kind is ErrorKind.PROVIDER_STREAM_INTERRUPTED
