"""Audio, image, rerank and moderation requests: what the gateway checks and estimates.

The bodies follow OpenAI's (``/v1/audio/*``, ``/v1/images/*``, ``/v1/moderations``) and
Cohere's ``/v2/rerank`` (as served by Jina and vLLM at ``/v1/rerank``). Only the fields
governance needs are read and checked (400 naming the field); the rest is forwarded. Each
request carries its estimate (:attr:`~sluice.types.ProviderRequest.reserve`) in the unit its
provider bills: characters of speech input, seconds of audio, images of a size, searches.
"""

from __future__ import annotations

import math
import re
from typing import Any

from sluice.errors import BadRequest
from sluice.media_bytes import AUDIO_FORMATS, sniff_audio, sniff_image, wav_seconds
from sluice.pipeline.parse import check_model_length, parse_json
from sluice.tokens import estimate_prompt, estimate_text
from sluice.types import FORM_ENDPOINTS, Endpoint, ProviderRequest, UnitKind, Upload, Usage

SPEECH_FORMATS = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
"""``response_format`` of ``/v1/audio/speech`` → the answer's content type (OpenAI's)."""
TRANSCRIPT_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("word", "segment")
MAX_SPEECH_CHARS = 4096
MAX_IMAGES = 10
MAX_RERANK_DOCUMENTS = 1000
DOCUMENTS_PER_SEARCH = 100
"""Cohere bills one search unit per query over up to 100 documents."""
AUDIO_BYTES_PER_SECOND_BOUND = 2000
"""The reservation for compressed audio whose duration is not in its header: its size at
16 kbit/s (the lowest common speech bitrate), an upper bound for nearly all uploads. The
usage row has the seconds the provider reports."""
DEFAULT_MODERATION_MODEL = "omni-moderation-latest"
_SIZE = re.compile(r"^(auto|[1-9][0-9]{1,4}x[1-9][0-9]{1,4})$")


def _type_error(field: str, expected: str) -> BadRequest:
    return BadRequest(f"'{field}' must be {expected}", param=field)


def _model(body: dict[str, Any], default: str | None = None) -> str:
    model = body.get("model", default)
    if model is None:
        raise BadRequest("'model' is required", param="model")
    if not isinstance(model, str) or not model:
        raise _type_error("model", "a non-empty string")
    check_model_length(model)
    return model


def _text(body: dict[str, Any], field: str, *, limit: int | None = None) -> str:
    value = body.get(field)
    if value is None:
        raise BadRequest(f"'{field}' is required", param=field)
    if not isinstance(value, str) or not value:
        raise _type_error(field, "a non-empty string")
    if limit is not None and len(value) > limit:
        raise BadRequest(f"'{field}' must be at most {limit} characters", param=field)
    return value


def _choice(body: dict[str, Any], field: str, allowed: Any, default: str) -> str:
    value = body.get(field, default)
    if value not in allowed:
        raise BadRequest(f"'{field}' must be one of {', '.join(sorted(allowed))}", param=field)
    return str(value)


def _int(body: dict[str, Any], field: str, *, low: int, high: int, default: int) -> int:
    value = body.get(field, default)
    if isinstance(value, str) and value.isdigit():  # a form field
        value = int(value)
    if type(value) is not int or not low <= value <= high:
        raise BadRequest(f"'{field}' must be an integer from {low} to {high}", param=field)
    return value


def _number(body: dict[str, Any], field: str, *, low: float, high: float) -> None:
    value = body.get(field)
    if value is None:
        return
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _type_error(field, "a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadRequest(f"'{field}' must be a number from {low:g} to {high:g}", param=field)


def _request(
    endpoint: Endpoint, body: dict[str, Any], raw: bytes, model: str, reserve: Usage, **kw: Any
) -> ProviderRequest:
    return ProviderRequest(endpoint, body, raw, model, reserve=reserve, **kw)


def speech(raw: bytes) -> ProviderRequest:
    body = parse_json(raw)
    model = _model(body)
    text = _text(body, "input", limit=MAX_SPEECH_CHARS)
    voice = body.get("voice")
    if voice is None:
        raise BadRequest("'voice' is required", param="voice")
    if not isinstance(voice, str | dict) or not voice:
        raise _type_error("voice", "a voice name")
    _choice(body, "response_format", SPEECH_FORMATS, "mp3")
    _number(body, "speed", low=0.25, high=4.0)
    _choice(body, "stream_format", ("audio", "sse"), "audio")
    reserve = Usage(prompt_tokens=estimate_text(len(text)), units=len(text))
    reserve.unit_kind = UnitKind.CHARACTERS
    # Relayed as it arrives (the audio, or the provider's speech events).
    return _request(Endpoint.SPEECH, body, raw, model, reserve, stream=True)


def images(raw: bytes) -> ProviderRequest:
    body = parse_json(raw)
    model = _model(body)
    return _request(Endpoint.IMAGES, body, raw, model, _image_reserve(body))


def _image_reserve(body: dict[str, Any]) -> Usage:
    prompt = _text(body, "prompt", limit=32_000)
    n = _int(body, "n", low=1, high=MAX_IMAGES, default=1)
    size = body.get("size", "auto")
    if not isinstance(size, str) or not _SIZE.match(size):
        raise BadRequest("'size' must be WIDTHxHEIGHT (e.g. 1024x1024) or auto", param="size")
    _choice(body, "response_format", ("url", "b64_json"), "url")
    quality = body.get("quality")
    variant = size if not isinstance(quality, str) else f"{size}/{quality}"
    return Usage(
        prompt_tokens=estimate_text(len(prompt)),
        units=n,
        unit_kind=UnitKind.IMAGES,
        unit_variant=variant,
    )


def rerank(raw: bytes) -> ProviderRequest:
    body = parse_json(raw)
    model = _model(body)
    query = _text(body, "query")
    documents = body.get("documents")
    if not isinstance(documents, list) or not documents:
        raise BadRequest("'documents' must be a non-empty array", param="documents")
    if len(documents) > MAX_RERANK_DOCUMENTS:
        raise BadRequest(
            f"'documents' must hold at most {MAX_RERANK_DOCUMENTS} documents", param="documents"
        )
    chars = len(query)
    for i, doc in enumerate(documents):
        text = doc.get("text") if isinstance(doc, dict) else doc
        if not isinstance(text, str):
            raise _type_error(f"documents[{i}]", "a string or an object with a 'text' string")
        chars += len(text)
    if "top_n" in body:
        _int(body, "top_n", low=1, high=MAX_RERANK_DOCUMENTS, default=1)
    searches = math.ceil(len(documents) / DOCUMENTS_PER_SEARCH)
    reserve = Usage(prompt_tokens=estimate_text(chars), units=searches)
    reserve.unit_kind = UnitKind.SEARCHES
    return _request(Endpoint.RERANK, body, raw, model, reserve)


def moderations(raw: bytes) -> ProviderRequest:
    body = parse_json(raw)
    model = _model(body, DEFAULT_MODERATION_MODEL)
    value = body.get("input")
    if value is None:
        raise BadRequest("'input' is required", param="input")
    if not isinstance(value, str | list) or not value:
        raise _type_error("input", "a non-empty string or array")
    return _request(
        Endpoint.MODERATIONS, body, raw, model, Usage(prompt_tokens=estimate_prompt(body))
    )


JSON_PARSERS = {
    Endpoint.SPEECH: speech,
    Endpoint.IMAGES: images,
    Endpoint.RERANK: rerank,
    Endpoint.MODERATIONS: moderations,
}


def form_request(
    endpoint: Endpoint, fields: dict[str, Any], uploads: list[Upload]
) -> ProviderRequest:
    """A multipart request (transcription, translation, image edit) from its text fields
    and file parts; 400 naming the field that is missing or wrong."""
    assert endpoint in FORM_ENDPOINTS
    model = _model(fields)
    if endpoint is Endpoint.IMAGE_EDITS:
        return _image_edit(fields, uploads, model)
    files = [u for u in uploads if u.field == "file"]
    if not files:
        raise BadRequest("'file' is required: the audio to transcribe", param="file")
    audio = files[0]
    kind = sniff_audio(audio.data)
    if kind is None:
        raise BadRequest(
            "'file' is not a readable audio file (supported: " + ", ".join(AUDIO_FORMATS) + ")",
            param="file",
        )
    fmt = _choice(fields, "response_format", TRANSCRIPT_FORMATS, "json")
    grains = fields.get("timestamp_granularities[]", fields.get("timestamp_granularities"))
    if grains is not None:
        grains = grains if isinstance(grains, list) else [grains]
        if endpoint is Endpoint.TRANSLATIONS or any(g not in GRANULARITIES for g in grains):
            raise BadRequest(
                "'timestamp_granularities' must be word and/or segment (transcriptions only)",
                param="timestamp_granularities",
            )
        if fmt != "verbose_json":
            raise BadRequest(
                "'timestamp_granularities' needs response_format verbose_json",
                param="timestamp_granularities",
            )
    _number(fields, "temperature", low=0.0, high=1.0)
    stream = fields.get("stream", "false")
    if stream not in ("true", "false"):
        raise _type_error("stream", "true or false")
    if stream == "true" and fmt not in ("json", "text"):
        raise BadRequest("'stream' needs response_format json or text", param="stream")
    seconds = wav_seconds(audio.data) if kind == "wav" else None
    reserve = Usage(
        units=round(seconds if seconds is not None else _bound_seconds(audio.data), 3),
        unit_kind=UnitKind.AUDIO_SECONDS,
        estimated=seconds is None,
    )
    return ProviderRequest(
        endpoint,
        fields,
        b"",
        model,
        stream=stream == "true",
        upload=Upload(audio.field, audio.filename, audio.content_type, audio.data),
        reserve=reserve,
    )


def _bound_seconds(data: bytes) -> float:
    return max(1.0, len(data) / AUDIO_BYTES_PER_SECOND_BOUND)


def _image_edit(fields: dict[str, Any], uploads: list[Upload], model: str) -> ProviderRequest:
    images = [u for u in uploads if u.field in ("image", "image[]")]
    if not images:
        raise BadRequest("'image' is required: the image to edit", param="image")
    for part in uploads:
        if sniff_image(part.data) is None:
            raise BadRequest(f"'{part.field}' is not a PNG, JPEG or WebP image", param=part.field)
    rest = tuple(u for u in uploads if u is not images[0])
    first = images[0]
    return ProviderRequest(
        Endpoint.IMAGE_EDITS,
        fields,
        b"",
        model,
        upload=Upload(first.field, first.filename, first.content_type, first.data, rest),
        reserve=_image_reserve(fields),
    )


def speech_headers(req: ProviderRequest) -> list[tuple[bytes, bytes]]:
    """The headers of a streamed speech answer: its content type (from ``response_format``,
    as OpenAI answers) and its billed characters (known before the first byte)."""
    if req.body.get("stream_format") == "sse":
        ctype = "text/event-stream"
    else:
        ctype = SPEECH_FORMATS[str(req.body.get("response_format", "mp3"))]
    units = 0 if req.reserve is None else req.reserve.units
    return [
        (b"content-type", ctype.encode()),
        (b"x-sluice-units", f"{units:g} {UnitKind.CHARACTERS}".encode()),
    ]
