"""Speech through a real ``sluice serve`` to ``sluice mock-upstream``: the audio is relayed
as it arrives with its content type, and audio that breaks off mid-answer reaches the client
as a broken body (no event can mark it), recorded as a partial 502."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.e2e.support import Gateway, wait_row

TEXT = "A gateway relays this speech piece by piece"


async def test_speech_is_relayed_with_its_content_type(
    aclient: openai.AsyncOpenAI, gateway: Gateway
) -> None:
    async with aclient.audio.speech.with_streaming_response.create(
        model="m-chat", voice="alloy", input=TEXT * 4, response_format="wav"
    ) as resp:
        assert resp.headers["content-type"] == "audio/wav"
        assert resp.headers["x-sluice-units"] == f"{len(TEXT) * 4} characters"
        rid = resp.headers["x-request-id"]
        audio = b"".join([piece async for piece in resp.iter_bytes()])
    assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
    row = await wait_row(gateway.db_path, request_id=rid)
    assert (row["status"], row["streamed"], row["unit_kind"]) == (200, 1, "characters")
    assert row["units"] == len(TEXT) * 4 and row["endpoint"] == "audio.speech"


async def test_audio_cut_mid_answer_is_a_broken_body_and_a_partial_row(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    body = {"model": "m-cut", "voice": "alloy", "input": TEXT * 20, "response_format": "wav"}
    got = b""
    with pytest.raises(httpx.RemoteProtocolError):
        async with http.stream("POST", "/v1/audio/speech", json=body) as resp:
            assert resp.status_code == 200
            rid = resp.headers["x-request-id"]
            async for piece in resp.aiter_bytes():
                got += piece
    assert got[:4] == b"RIFF"  # what arrived before the break
    row = await wait_row(gateway.db_path, request_id=rid)
    assert (row["status"], row["partial"]) == (502, 1)
    assert row["error_kind"] == "provider_stream_interrupted"
    assert (row["units"], row["unit_kind"]) == (len(TEXT) * 20, "characters")
