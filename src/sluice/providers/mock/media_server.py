"""``sluice mock-upstream``'s media routes: ``/v1/audio/*``, ``/v1/images/*``,
``/v1/rerank`` and ``/v1/moderations``, answered by :mod:`sluice.providers.mock.media` with
the same scripted failures as chat (model name and ``x-mock-*`` headers: status, flaky,
latency, reset)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

import orjson
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from sluice.providers.mock import media
from sluice.providers.mock import script as s
from sluice.providers.mock.caps import MockRequestError
from sluice.providers.mock.reply import HOLD_S, CutStream, Reply, json_reply
from sluice.sse import frame
from sluice.types import Endpoint


class MockApp(Protocol):
    """What the media routes use of the mock upstream (``server.MockApp``)."""

    flaky: s.FlakyCounter
    requests: int


ROUTES = {
    "/audio/speech": Endpoint.SPEECH,
    "/audio/transcriptions": Endpoint.TRANSCRIPTIONS,
    "/audio/translations": Endpoint.TRANSLATIONS,
    "/images/generations": Endpoint.IMAGES,
    "/images/edits": Endpoint.IMAGE_EDITS,
    "/rerank": Endpoint.RERANK,
    "/v2/rerank": Endpoint.RERANK,  # Cohere's path
    "/moderations": Endpoint.MODERATIONS,
}
"""Paths (under ``/v1``, which is optional) the mock upstream answers with media."""
_LISTS = ("timestamp_granularities[]", "include[]")


def _bad(message: str, param: str | None) -> Reply:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    return json_reply(400, {"error": error})


def parse_form(raw: bytes, content_type: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A whole multipart body: its text fields and its files by field name (the first)."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise MockRequestError("the body must be multipart/form-data", param="file")
    parts: list[tuple[dict[bytes, bytes], bytearray]] = []
    head: dict[bytes, bytes] = {}
    name = value = b""

    def header_field(data: bytes, start: int, end: int) -> None:
        nonlocal name
        name += data[start:end]

    def header_value(data: bytes, start: int, end: int) -> None:
        nonlocal value
        value += data[start:end]

    def header_end() -> None:
        nonlocal name, value
        head[name.strip().lower()] = value.strip()
        name = value = b""

    def headers_done() -> None:
        parts.append((dict(head), bytearray()))
        head.clear()

    def part_data(data: bytes, start: int, end: int) -> None:
        parts[-1][1].extend(data[start:end])

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": header_field,
            "on_header_value": header_value,
            "on_header_end": header_end,
            "on_headers_finished": headers_done,
            "on_part_data": part_data,
        },
    )
    try:
        parser.write(raw)
        parser.finalize()
    except FormParserError as exc:
        raise MockRequestError(f"malformed multipart body ({exc})", param="file") from None
    fields: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    for headers, data in parts:
        _, opts = parse_options_header(headers.get(b"content-disposition", b""))
        field = opts.get(b"name", b"").decode()
        if b"filename" in opts:
            files.setdefault(field, bytes(data))
        elif field in _LISTS:
            fields.setdefault(field, []).append(data.decode("utf-8", "replace"))
        else:
            fields[field] = data.decode("utf-8", "replace")
    return fields, files


async def media_reply(app: MockApp, path: str, headers: dict[str, str], raw: bytes) -> Reply | None:
    """The answer to a media request, or ``None`` when ``path`` is no media route."""
    endpoint = ROUTES.get(path)
    if endpoint is None:
        return None
    app.requests += 1
    files: dict[str, bytes] = {}
    try:
        if endpoint in (Endpoint.TRANSCRIPTIONS, Endpoint.TRANSLATIONS, Endpoint.IMAGE_EDITS):
            fields, files = parse_form(raw, headers.get("content-type", ""))
        else:
            loaded = orjson.loads(raw)
            if not isinstance(loaded, dict):
                raise MockRequestError("the body must be a JSON object", param="model")
            fields = loaded
        overrides = {
            k[7:].replace("-", "_"): v for k, v in headers.items() if k.startswith("x-mock-")
        }
        script = s.MockScript.parse(str(fields.get("model", "media")), overrides)
    except MockRequestError as exc:
        return _bad(str(exc), exc.param)
    except (ValueError, orjson.JSONDecodeError) as exc:
        return _bad(str(exc), None)
    if script.hang:
        await asyncio.sleep(HOLD_S)
    status = app.flaky.fails(str(fields.get("model")), script)
    if script.reset and (status is not None or script.flaky == 0):
        return Reply(0, abort=True)
    if script.first_delay_s:
        await asyncio.sleep(script.first_delay_s)
    if status is not None:
        extra = (
            (("retry-after", f"{script.retry_after_s:g}"),)
            if script.retry_after_s is not None
            else ()
        )
        return json_reply(status, s.error_body(status, script.error_code), extra)
    upload = files.get("file") or files.get("image") or files.get("image[]")
    try:
        if fields.get("stream") == "true" and endpoint is Endpoint.TRANSCRIPTIONS:
            events, _ = media.transcript_events(fields, upload)
            return Reply(200, stream=_events(events))
        made = media.answer(
            endpoint, fields, upload, rid=f"mock-{app.requests:x}", created=int(time.time())
        )
    except MockRequestError as exc:
        return _bad(str(exc), exc.param)
    if script.cut is not None and endpoint is Endpoint.SPEECH:  # the audio breaks off
        return Reply(200, stream=_cut(made.body, script.cut), content_type=made.content_type)
    return Reply(200, made.body, content_type=made.content_type)


AUDIO_PIECE = 4096


async def _cut(audio: bytes, pieces: int) -> AsyncIterator[bytes]:
    """``pieces`` pieces of the audio, then the connection drops."""
    for i in range(pieces):
        yield audio[i * AUDIO_PIECE : (i + 1) * AUDIO_PIECE]
    raise CutStream


async def _events(events: list[bytes]) -> AsyncIterator[bytes]:
    for event in events:
        yield frame(event)
