"""Media requests' billed units: what a request reserves, how units are priced (genai-prices,
then per-unit config prices), and what the uploads are."""

from __future__ import annotations

import orjson
import pytest

from sluice.budgets.pricing import Pricer
from sluice.budgets.unit_prices import unit_micros
from sluice.config.model import Prices
from sluice.errors import BadRequest
from sluice.media_bytes import sniff_audio, sniff_image, wav_seconds
from sluice.pipeline import media
from sluice.providers.media_wire import answer_usage
from sluice.providers.mock import media as mock
from sluice.providers.mock.media_images import png
from sluice.types import Endpoint, UnitKind, Upload, Usage


def test_genai_prices_knows_audio_seconds_and_characters() -> None:
    pricer = Pricer()
    seconds = Usage(units=90, unit_kind=UnitKind.AUDIO_SECONDS)
    chars = Usage(units=1000, unit_kind=UnitKind.CHARACTERS)
    assert pricer.cost(seconds, provider="openai", model="whisper-1").micros == 9000
    assert pricer.cost(chars, provider="openai", model="tts-1").micros == 15000
    assert pricer.cost(chars, provider="openai", model="tts-1-hd").micros == 30000
    images = Usage(units=2, unit_kind=UnitKind.IMAGES, unit_variant="1024x1024")
    assert pricer.cost(images, provider="openai", model="dall-e-3").micros == 0  # no table


def test_config_unit_prices_win_and_pick_the_size() -> None:
    prices = Prices(
        micros_per_image=50_000,
        micros_per_image_by_size={"1024x1024": 40_000, "1024x1024/hd": 80_000},
        micros_per_audio_second=50,
    )

    def cost(variant: str | None) -> int:
        usage = Usage(units=2, unit_kind=UnitKind.IMAGES, unit_variant=variant)
        return unit_micros(usage, provider="openai", model="dall-e-3", prices=prices)

    assert (cost("1024x1024"), cost("1024x1024/hd"), cost("1024x1024/standard")) == (
        80_000,
        160_000,
        80_000,
    )
    assert cost("512x512") == cost(None) == 100_000
    seconds = Usage(units=10.5, unit_kind=UnitKind.AUDIO_SECONDS)
    assert unit_micros(seconds, provider="openai", model="whisper-1", prices=prices) == 525
    # a unit the override leaves unset comes from the table
    chars = Usage(units=10, unit_kind=UnitKind.CHARACTERS)
    assert unit_micros(chars, provider="openai", model="tts-1", prices=prices) == 150


def test_tokens_and_units_add_up() -> None:
    usage = Usage(1000, 0, units=4, unit_kind=UnitKind.IMAGES, unit_variant="auto")
    prices = Prices(input_usd_per_mtok=5.0, micros_per_image=1000)
    assert Pricer().cost(usage, provider="openai", model="gpt-image-1", prices=prices).micros == (
        5000 + 4000
    )


def test_requests_reserve_their_units() -> None:
    speech = media.speech(orjson.dumps({"model": "t", "voice": "a", "input": "héllo"}))
    assert speech.reserve is not None and speech.reserve.units == 5
    image = media.images(
        orjson.dumps({"model": "d", "prompt": "p", "n": 3, "quality": "hd", "size": "1024x1024"})
    )
    assert image.reserve == Usage(
        1, units=3, unit_kind=UnitKind.IMAGES, unit_variant="1024x1024/hd"
    )
    docs = ["d"] * 150
    rerank = media.rerank(orjson.dumps({"model": "r", "query": "q", "documents": docs}))
    assert rerank.reserve is not None and rerank.reserve.units == 2  # 100 documents a search


def test_transcriptions_reserve_exact_wav_seconds_or_a_size_bound() -> None:
    wav = mock.speech({"input": "abc", "response_format": "wav"}).body
    exact = media.form_request(
        Endpoint.TRANSCRIPTIONS, {"model": "w"}, [Upload("file", "a.wav", "", wav)]
    )
    assert exact.reserve is not None and not exact.reserve.estimated
    assert exact.reserve.units == pytest.approx(3 * mock.SECONDS_PER_CHAR)
    mp3 = b"ID3" + b"\0" * 39_997
    bound = media.form_request(
        Endpoint.TRANSCRIPTIONS, {"model": "w"}, [Upload("file", "a.mp3", "", mp3)]
    )
    assert bound.reserve is not None and bound.reserve.estimated
    assert bound.reserve.units == 40_000 / media.AUDIO_BYTES_PER_SECOND_BOUND


@pytest.mark.parametrize(
    ("fields", "uploads", "param"),
    [
        ({"model": "w"}, [], "file"),
        ({"model": "w"}, [Upload("file", "a.wav", "", b"RIFF....WAVEfmt ")], "file"),
        ({}, [Upload("file", "a.mp3", "", b"ID3")], "model"),
        ({"model": "w", "stream": "yes"}, [Upload("file", "a.mp3", "", b"ID3")], "stream"),
        ({"model": "w", "temperature": "2"}, [Upload("file", "a.mp3", "", b"ID3")], "temperature"),
    ],
)
def test_bad_forms_name_the_field(
    fields: dict[str, str], uploads: list[Upload], param: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        media.form_request(Endpoint.TRANSCRIPTIONS, fields, uploads)
    assert refused.value.param == param


def test_containers_are_recognised_and_a_wav_header_read() -> None:
    wav = mock.speech({"input": "hello", "response_format": "wav"}).body
    assert sniff_audio(wav) == "wav"
    assert wav_seconds(wav) == pytest.approx(5 * mock.SECONDS_PER_CHAR)
    assert wav_seconds(wav[:20]) is None and sniff_audio(wav[:20]) is None
    assert sniff_audio(mock.speech({"input": "x", "response_format": "mp3"}).body) == "mp3"
    assert sniff_audio(b"plain text") is None
    assert sniff_image(png(2, 3, b"abc")) == "png"
    assert sniff_image(b"GIF89a") is None


def test_mock_transcripts_in_subtitle_formats() -> None:
    wav = mock.speech({"input": "one two three", "response_format": "wav"}).body
    srt = mock.transcript(Endpoint.TRANSCRIPTIONS, {"response_format": "srt"}, wav).body
    assert srt.decode() == "1\n00:00:00,000 --> 00:00:00,780\none two three\n\n"
    vtt = mock.transcript(Endpoint.TRANSCRIPTIONS, {"response_format": "vtt"}, wav).body
    assert vtt.decode() == "WEBVTT\n\n00:00:00.000 --> 00:00:00.780\none two three\n\n"


def test_answer_usage_reads_the_providers_counts() -> None:
    req = media.images(orjson.dumps({"model": "d", "prompt": "p", "n": 2, "size": "256x256"}))
    usage = answer_usage(req, {"data": [{}, {}], "usage": {"input_tokens": 9, "output_tokens": 7}})
    assert usage == Usage(9, 7, units=2, unit_kind=UnitKind.IMAGES, unit_variant="256x256")
    upload = [Upload("file", "a.mp3", "", b"ID3")]
    audio = media.form_request(Endpoint.TRANSCRIPTIONS, {"model": "w"}, upload)
    said = answer_usage(audio, {"text": "x", "usage": {"type": "duration", "seconds": 7}})
    assert said is not None and said.units == 7
    assert answer_usage(audio, {"text": "x"}) is None  # the pipeline bills the estimate
