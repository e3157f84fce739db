"""Media requests on the wire, shared by the adapters that serve them natively (the OpenAI
family, the mock): the upstream form of a multipart request, and the billed units read back
from an answer."""

from __future__ import annotations

import mimetypes
from typing import Any

import aiohttp
import orjson

from sluice.types import Endpoint, ProviderRequest, UnitKind, Usage

MEDIA_PATHS = {
    Endpoint.SPEECH: "/audio/speech",
    Endpoint.TRANSCRIPTIONS: "/audio/transcriptions",
    Endpoint.TRANSLATIONS: "/audio/translations",
    Endpoint.IMAGES: "/images/generations",
    Endpoint.IMAGE_EDITS: "/images/edits",
    Endpoint.RERANK: "/rerank",
    Endpoint.MODERATIONS: "/moderations",
}
"""The path of each media endpoint under an OpenAI-style base URL (``.../v1``)."""


def form_data(req: ProviderRequest, upstream_model: str) -> aiohttp.FormData:
    """The multipart body sent upstream: the client's fields (``model`` renamed) and files."""
    form = aiohttp.FormData()
    for name, given in req.body.items():
        value = upstream_model if name == "model" else given
        for item in value if isinstance(value, list) else (value,):
            form.add_field(name, str(item))
    upload = req.upload
    if upload is not None:
        for part in (upload, *upload.extra):
            ctype = part.content_type or mimetypes.guess_type(part.filename)[0]
            form.add_field(
                part.field,
                part.data,
                filename=part.filename,
                content_type=ctype or "application/octet-stream",
            )
    return form


def json_body(req: ProviderRequest, upstream_model: str) -> bytes:
    if req.model == upstream_model:
        return req.raw
    body = dict(req.body)
    body["model"] = upstream_model
    return orjson.dumps(body)


def _int(value: Any) -> int:
    return value if type(value) is int and value > 0 else 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


def answer_usage(req: ProviderRequest, data: dict[str, Any] | None) -> Usage | None:
    """The usage of a media answer: the provider's counts where it sent them, else the
    request's own (speech characters, images asked for, searches), ``None`` when only the
    request's estimate is left (the pipeline then bills that, marked estimated)."""
    reserve = req.reserve
    endpoint = req.endpoint
    if endpoint is Endpoint.SPEECH and reserve is not None:
        return Usage(units=reserve.units, unit_kind=UnitKind.CHARACTERS)
    if data is None:
        return None
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    if endpoint in (Endpoint.TRANSCRIPTIONS, Endpoint.TRANSLATIONS):
        seconds = _number(usage.get("seconds")) if usage.get("type") == "duration" else None
        if seconds is None:
            seconds = _number(data.get("duration"))  # verbose_json
        tokens_in = _int(usage.get("input_tokens"))
        tokens_out = _int(usage.get("output_tokens"))
        if seconds is None and not (tokens_in or tokens_out):
            return None
        if seconds is None:
            seconds = reserve.units if reserve is not None else 0.0
        return Usage(tokens_in, tokens_out, units=seconds, unit_kind=UnitKind.AUDIO_SECONDS)
    if endpoint in (Endpoint.IMAGES, Endpoint.IMAGE_EDITS):
        images = data.get("data")
        count = len(images) if isinstance(images, list) else 0
        return Usage(
            _int(usage.get("input_tokens")),
            _int(usage.get("output_tokens")),
            units=count,
            unit_kind=UnitKind.IMAGES,
            unit_variant=None if reserve is None else reserve.unit_variant,
        )
    if endpoint is Endpoint.RERANK:
        meta = data.get("meta")
        billed = meta.get("billed_units") if isinstance(meta, dict) else None
        billed = billed if isinstance(billed, dict) else {}
        searches = _number(billed.get("search_units"))
        tokens = _int(usage.get("total_tokens")) or _int(billed.get("input_tokens"))
        if searches is None and not tokens:
            return None
        if searches is None:
            searches = reserve.units if reserve is not None else 1.0
        return Usage(tokens, units=searches, unit_kind=UnitKind.SEARCHES)
    if endpoint is Endpoint.MODERATIONS and usage:
        return Usage(_int(usage.get("prompt_tokens")) or _int(usage.get("input_tokens")))
    return None
