"""Audio, images, rerank and moderations with the official openai SDK, end to end through the
gateway (in process) to ``sluice mock-upstream`` on loopback: every speech format and
transcript format, image generation and edits, rerank, moderations; limits and budgets on
each endpoint; usage rows with billed units and cost; bad input answered 400/413 naming the
field."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest

from sluice.app import SluiceApp
from sluice.providers.mock.media import speech as mock_speech
from sluice.usage.event import UsageEvent
from tests.integration.conftest import MASTER, make_settings, running
from tests.mock_upstream import mock_upstream

TEXT = "Sluice routes every request through honest budgets"


def config(base: str) -> str:
    return f"""
providers:
  oa: {{type: openai, base_url: "{base}/v1", api_key: sk-up}}
  vllm: {{type: vllm, base_url: "{base}/v1"}}
  local: {{type: ollama, base_url: "{base}/v1"}}
  mock: {{type: mock}}
models:
  - name: tts-1
    deployments: [{{provider: oa, model: tts-1}}]
  - name: whisper-1
    deployments: [{{provider: oa, model: whisper-1}}]
  - name: dall-e-3
    deployments: [{{provider: oa, model: dall-e-3}}]
    prices:
      micros_per_image: 80000
      micros_per_image_by_size: {{"256x256": 16000, "1024x1024": 40000}}
  - name: rerank-v3
    deployments: [{{provider: vllm, model: rerank-v3}}]
    prices: {{micros_per_search: 2000}}
  - name: omni-moderation-latest
    deployments: [{{provider: oa, model: omni-moderation-latest}}]
  - name: in-process-tts
    deployments: [{{provider: mock, model: tts}}]
    prices: {{micros_per_character: 30}}
  - name: chat-only
    deployments: [{{provider: local, model: chat}}]
"""


Gateway = tuple[SluiceApp, openai.AsyncOpenAI, httpx.AsyncClient]


@asynccontextmanager
async def gateway(tmp_path: Path, **settings: Any) -> AsyncIterator[Gateway]:
    async with (
        mock_upstream() as base,
        running(make_settings(tmp_path, **settings), config(base)) as (app, admin),
    ):
        http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))
        client = openai.AsyncOpenAI(
            api_key=MASTER, base_url="http://gw/v1", http_client=http, max_retries=0
        )
        try:
            yield app, client, admin
        finally:
            await http.aclose()


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with gateway(tmp_path) as made:
        yield made


async def rows(app: SluiceApp) -> list[UsageEvent]:
    rt = app.runtime
    assert rt is not None
    await rt.usage.flush()
    return sorted(await rt.storage.usage.recent(limit=1000), key=lambda r: r.created_at)


async def _wav(client: openai.AsyncOpenAI, text: str = TEXT) -> bytes:
    spoken = await client.audio.speech.create(
        model="tts-1", voice="alloy", input=text, response_format="wav"
    )
    return spoken.content


SPEECH_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}


async def test_speech_in_every_format_with_its_content_type_and_characters_billed(
    gw: Gateway,
) -> None:
    app, client, _ = gw
    seen: dict[str, bytes] = {}
    for fmt, ctype in SPEECH_TYPES.items():
        spoken = await client.audio.speech.create(
            model="tts-1",
            voice="alloy",
            input=TEXT,
            response_format=fmt,  # type: ignore[arg-type]
        )
        assert spoken.response.headers["content-type"] == ctype
        seen[fmt] = spoken.content
    wav = seen["wav"]
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert seen["mp3"][:2] == b"\xff\xfb" and seen["flac"][:4] == b"fLaC"
    again = await client.audio.speech.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="wav"
    )
    assert again.content == wav  # deterministic
    got = [r for r in await rows(app) if r.endpoint == "audio.speech"]
    assert len(got) == len(SPEECH_TYPES) + 1
    for row in got:
        assert (row.status, row.unit_kind, row.units) == (200, "characters", len(TEXT))
        assert row.cost_micros == 15 * len(TEXT)  # genai-prices: tts-1 is $15/M characters
        assert (row.provider, row.upstream_model) == ("oa", "tts-1")


async def test_speech_streams_through_the_sdk_and_the_in_process_mock(gw: Gateway) -> None:
    app, client, _ = gw
    async with client.audio.speech.with_streaming_response.create(
        model="in-process-tts", voice="nova", input="hello", response_format="pcm"
    ) as resp:
        assert resp.headers["content-type"] == "audio/pcm"
        pcm = b"".join([chunk async for chunk in resp.iter_bytes()])
    assert len(pcm) > 0 and len(pcm) % 2 == 0
    [row] = [r for r in await rows(app) if r.model == "in-process-tts"]
    assert (row.units, row.unit_kind, row.cost_micros) == (5, "characters", 5 * 30)


async def test_transcription_in_every_response_format(gw: Gateway) -> None:
    app, client, _ = gw
    wav = await _wav(client)
    seconds = _wav_seconds(wav)
    as_json = await client.audio.transcriptions.create(model="whisper-1", file=("a.wav", wav))
    assert as_json.text == TEXT  # the mock hears the text its own speech carries
    text = await client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", wav), response_format="text"
    )
    assert text.strip() == TEXT
    srt = await client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", wav), response_format="srt"
    )
    assert srt.startswith("1\n00:00:00,000 --> ") and TEXT.split(maxsplit=1)[0] in srt
    vtt = await client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", wav), response_format="vtt"
    )
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> ")
    verbose = await client.audio.transcriptions.create(
        model="whisper-1",
        file=("a.wav", wav),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert verbose.text == TEXT and verbose.duration == pytest.approx(seconds, abs=0.001)
    assert verbose.words is not None and [w.word for w in verbose.words] == TEXT.split()
    assert verbose.segments is not None and verbose.segments[0].start == 0.0
    got = [r for r in await rows(app) if r.endpoint == "audio.transcriptions"]
    assert len(got) == 5
    for row in got:
        assert row.unit_kind == "audio_seconds" and row.status == 200
        assert row.units == pytest.approx(seconds, abs=1.0)  # provider's count, whole seconds
        # genai-prices: whisper-1 is $0.36 an hour, 100 micro-dollars a second
        assert row.cost_micros == round(100 * row.units)


async def test_translation_and_a_streamed_transcript(gw: Gateway) -> None:
    app, client, _ = gw
    wav = await _wav(client, "Bonjour tout le monde")
    with pytest.warns(DeprecationWarning, match="deprecated"):  # the SDK marks it so
        translated = await client.audio.translations.create(model="whisper-1", file=("b.wav", wav))
    assert translated.text == "Bonjour tout le monde"
    stream = await client.audio.transcriptions.create(
        model="whisper-1", file=("b.wav", wav), stream=True
    )
    events = [event async for event in stream]
    assert [e.type for e in events[:-1]] == ["transcript.text.delta"] * 4
    assert events[-1].type == "transcript.text.done"
    assert "".join(e.delta for e in events[:-1]) == "Bonjour tout le monde"  # type: ignore[union-attr]
    got = {r.endpoint: r for r in await rows(app)}
    assert got["audio.translations"].unit_kind == "audio_seconds"
    streamed = got["audio.transcriptions"]
    assert streamed.streamed and streamed.status == 200 and streamed.units


async def test_images_generate_and_edit_priced_per_image_and_size(gw: Gateway) -> None:
    app, client, _ = gw
    made = await client.images.generate(
        model="dall-e-3", prompt="a lighthouse", n=2, size="256x256", response_format="b64_json"
    )
    assert made.data is not None and len(made.data) == 2
    pngs = [base64.b64decode(d.b64_json or "") for d in made.data]
    for png in pngs:
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", png[16:24]) == (256, 256)
    assert pngs[0] != pngs[1]
    edited = await client.images.edit(
        model="dall-e-3", image=("in.png", pngs[0], "image/png"), prompt="at night", size="256x256"
    )
    assert edited.data is not None and (edited.data[0].url or "").startswith("data:image/png")
    big = await client.images.generate(model="dall-e-3", prompt="x", size="1792x1024")
    assert big.data is not None and len(big.data) == 1
    got = [r for r in await rows(app) if r.endpoint.startswith("images.")]
    assert [(r.endpoint, r.units, r.unit_kind, r.cost_micros) for r in got] == [
        ("images.generations", 2, "images", 2 * 16000),
        ("images.edits", 1, "images", 16000),
        ("images.generations", 1, "images", 80000),  # a size without its own price
    ]


async def test_rerank_and_moderations(gw: Gateway) -> None:
    app, client, admin = gw
    ranked = await admin.post(
        "/v1/rerank",
        json={
            "model": "rerank-v3",
            "query": "budget limits",
            "documents": ["a recipe for bread", "limits and budgets for teams", "the weather"],
            "top_n": 2,
            "return_documents": True,
        },
    )
    assert ranked.status_code == 200, ranked.text
    results = ranked.json()["results"]
    assert [r["index"] for r in results] == [1, results[1]["index"]] and len(results) == 2
    assert results[0]["document"]["text"] == "limits and budgets for teams"
    assert results[0]["relevance_score"] > results[1]["relevance_score"]
    v2 = await admin.post(
        "/v2/rerank", json={"model": "rerank-v3", "query": "q", "documents": ["d"]}
    )
    assert v2.status_code == 200
    verdict = await client.moderations.create(input=["I will attack", "hello there"])
    assert [r.flagged for r in verdict.results] == [True, False]
    assert verdict.results[0].categories.violence is True
    got = [r for r in await rows(app) if r.endpoint in ("rerank", "moderations")]
    assert [(r.endpoint, r.units, r.unit_kind, r.cost_micros) for r in got] == [
        ("rerank", 1, "searches", 2000),
        ("rerank", 1, "searches", 2000),
        ("moderations", None, None, 0),
    ]
    assert got[0].prompt_tokens > 0  # the provider's token count


async def _key(admin: httpx.AsyncClient, **body: object) -> openai.AsyncOpenAI:
    created = await admin.post("/api/v1/keys", json={"name": "k", **body})
    assert created.status_code == 201, created.text
    transport = admin._transport  # the same in-process app
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=transport.app))  # type: ignore[attr-defined]
    return openai.AsyncOpenAI(
        api_key=created.json()["key"], base_url="http://gw/v1", http_client=http, max_retries=0
    )


async def test_rate_limits_apply_to_every_media_endpoint(gw: Gateway) -> None:
    app, client, admin = gw
    wav = await _wav(client)
    drawn = await client.images.generate(
        model="dall-e-3", prompt="p", size="256x256", response_format="b64_json"
    )
    assert drawn.data is not None
    png = base64.b64decode(drawn.data[0].b64_json or "")
    calls = {
        "speech": lambda c: c.audio.speech.create(model="tts-1", voice="alloy", input="hi"),
        "transcription": lambda c: c.audio.transcriptions.create(
            model="whisper-1", file=("a.wav", wav)
        ),
        "image": lambda c: c.images.generate(model="dall-e-3", prompt="p", size="256x256"),
        "edit": lambda c: c.images.edit(
            model="dall-e-3", image=("a.png", png, "image/png"), prompt="p", size="256x256"
        ),
        "moderation": lambda c: c.moderations.create(input="hello"),
        "rerank": lambda c: c.post(
            "/rerank", cast_to=object, body={"model": "rerank-v3", "query": "q", "documents": ["d"]}
        ),
    }
    for name, call in calls.items():
        limited = await _key(admin, limits={"rpm": 1})
        await call(limited)
        with pytest.raises(openai.RateLimitError) as refused:
            await call(limited)
        assert refused.value.code == "rate_limit_exceeded", name
    refused_rows = [r for r in await rows(app) if r.status == 429]
    assert sorted(r.endpoint for r in refused_rows) == [
        "audio.speech",
        "audio.transcriptions",
        "images.edits",
        "images.generations",
        "moderations",
        "rerank",
    ]
    assert all(r.attempts == 0 and r.cost_micros is None for r in refused_rows)


async def test_budgets_hold_the_unit_estimate_and_refuse_what_does_not_fit(gw: Gateway) -> None:
    app, _, admin = gw
    # Room for 2 images of 256x256 (16,000 micro-dollars each), not 3.
    key = await _key(admin, budget={"usd": 0.04, "period": "month"})
    two = await key.images.generate(model="dall-e-3", prompt="p", n=2, size="256x256")
    assert two.data is not None and len(two.data) == 2
    with pytest.raises(openai.RateLimitError) as refused:
        await key.images.generate(model="dall-e-3", prompt="p", n=1, size="256x256")
    assert refused.value.code == "budget_exceeded"
    # Speech: 15 micro-dollars a character; 8,000 left holds 533 characters, not 600.
    with pytest.raises(openai.RateLimitError):
        await key.audio.speech.create(model="tts-1", voice="alloy", input="x" * 600)
    ok = await key.audio.speech.create(model="tts-1", voice="alloy", input="x" * 500)
    assert len(ok.content) > 0
    # 500 micro-dollars left: 5 seconds of Whisper. The WAV header says how long it is.
    long_wav = mock_speech({"input": "x" * 100, "response_format": "wav"}).body  # 6 s
    with pytest.raises(openai.RateLimitError) as too_long:
        await key.audio.transcriptions.create(model="whisper-1", file=("l.wav", long_wav))
    assert too_long.value.code == "budget_exceeded"
    short_wav = mock_speech({"input": "x" * 50, "response_format": "wav"}).body  # 3 s
    heard = await key.audio.transcriptions.create(model="whisper-1", file=("s.wav", short_wav))
    assert heard.text == "x" * 50
    got = await rows(app)
    assert [(r.endpoint, r.status) for r in got] == [
        ("images.generations", 200),
        ("images.generations", 429),
        ("audio.speech", 429),
        ("audio.speech", 200),
        ("audio.transcriptions", 429),
        ("audio.transcriptions", 200),
    ]
    rt = app.runtime
    assert rt is not None
    [(scope, spec)] = [c for c in rt.keys.budget_checks() if c[0].endswith(got[0].key_id or "")]
    assert await rt.budgets.spent(scope, spec) == 2 * 16000 + 500 * 15 + 3 * 100


async def _error(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error: dict[str, Any] = resp.json()["error"]
    return error


async def test_bad_input_is_a_4xx_naming_the_field(tmp_path: Path) -> None:
    async with gateway(tmp_path, max_upload_bytes=64 * 1024) as (app, client, admin):
        wav = await _wav(client, "short")
        url = "/v1/audio/transcriptions"
        wrong_type = await admin.post(url, json={"model": "whisper-1"})
        assert (await _error(wrong_type, 400))["param"] == "file"
        no_file = await admin.post(url, data={"model": "whisper-1"}, files={"x": ("n", b"")})
        assert (await _error(no_file, 400))["param"] == "file"
        corrupt = await admin.post(
            url, data={"model": "whisper-1"}, files={"file": ("a.wav", b"RIFF\0\0\0\0WAVEjunk")}
        )
        error = await _error(corrupt, 400)
        assert error["param"] == "file" and "audio" in error["message"]
        noise = await admin.post(
            url, data={"model": "whisper-1"}, files={"file": ("a.mp3", b"hello world")}
        )
        assert (await _error(noise, 400))["param"] == "file"
        huge = await admin.post(
            url, data={"model": "whisper-1"}, files={"file": ("a.wav", wav + b"\0" * 70_000)}
        )
        assert (await _error(huge, 413))["param"] == "file"
        fmt = await admin.post(
            url,
            data={"model": "whisper-1", "response_format": "docx"},
            files={"file": ("a.wav", wav)},
        )
        assert (await _error(fmt, 400))["param"] == "response_format"
        grains = await admin.post(
            url,
            data={"model": "whisper-1", "timestamp_granularities[]": "word"},
            files={"file": ("a.wav", wav)},
        )
        assert (await _error(grains, 400))["param"] == "timestamp_granularities"
        no_voice = await admin.post("/v1/audio/speech", json={"model": "tts-1", "input": "x"})
        assert (await _error(no_voice, 400))["param"] == "voice"
        long = await admin.post(
            "/v1/audio/speech", json={"model": "tts-1", "voice": "a", "input": "x" * 5000}
        )
        assert (await _error(long, 400))["param"] == "input"
        size = await admin.post(
            "/v1/images/generations", json={"model": "dall-e-3", "prompt": "p", "size": "huge"}
        )
        assert (await _error(size, 400))["param"] == "size"
        many = await admin.post(
            "/v1/images/generations", json={"model": "dall-e-3", "prompt": "p", "n": 11}
        )
        assert (await _error(many, 400))["param"] == "n"
        bad_image = await admin.post(
            "/v1/images/edits",
            data={"model": "dall-e-3", "prompt": "p"},
            files={"image": ("a.png", b"not an image")},
        )
        assert (await _error(bad_image, 400))["param"] == "image"
        docs = await admin.post("/v1/rerank", json={"model": "rerank-v3", "query": "q"})
        assert (await _error(docs, 400))["param"] == "documents"
        unsupported = await admin.post(
            "/v1/audio/speech", json={"model": "chat-only", "voice": "a", "input": "x"}
        )
        assert (await _error(unsupported, 400))["param"] == "model"
        got = await rows(app)
        assert len([r for r in got if r.status >= 400]) == 14  # one row per request


def _wav_seconds(wav: bytes) -> float:
    rate = struct.unpack_from("<I", wav, 28)[0]
    pos = 12
    while pos + 8 <= len(wav):
        size = struct.unpack_from("<I", wav, pos + 4)[0]
        if wav[pos : pos + 4] == b"data":
            return float(size / rate)
        pos += 8 + size + (size & 1)
    raise AssertionError("no data chunk")


async def test_native_imagen_and_cohere_rerank(tmp_path: Path) -> None:
    """Gemini's Imagen (``:predict``) and Cohere's ``/v2/rerank`` behind the OpenAI and
    rerank formats, against the mock upstream's native wire formats."""
    async with mock_upstream() as base:
        text = f"""
providers:
  gem: {{type: gemini, base_url: "{base}", api_key: g-key}}
  co: {{type: cohere, base_url: "{base}", api_key: c-key}}
models:
  - name: imagen
    deployments: [{{provider: gem, model: imagen-3.0-generate-002}}]
    prices: {{micros_per_image_by_size: {{"1024x1024": 30000}}}}
  - name: co-rerank
    deployments: [{{provider: co, model: rerank-v3.5}}]
    prices: {{micros_per_search: 2000}}
"""
        async with running(make_settings(tmp_path), text) as (app, admin):
            http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))
            client = openai.AsyncOpenAI(
                api_key=MASTER, base_url="http://gw/v1", http_client=http, max_retries=0
            )
            made = await client.images.generate(
                model="imagen", prompt="a fox", n=2, size="1024x1024", response_format="b64_json"
            )
            assert made.data is not None and len(made.data) == 2
            png = base64.b64decode(made.data[0].b64_json or "")
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            assert struct.unpack(">II", png[16:24]) == (1024, 1024)
            ranked = await admin.post(
                "/v2/rerank",
                json={"model": "co-rerank", "query": "fox", "documents": ["a fox", "a box"]},
            )
            assert ranked.status_code == 200, ranked.text
            assert ranked.json()["results"][0]["index"] == 0
            await http.aclose()
            got = [(r.endpoint, r.provider, r.units, r.cost_micros) for r in await rows(app)]
            assert got == [("images.generations", "gem", 2, 60000), ("rerank", "co", 1, 2000)]
