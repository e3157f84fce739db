"""The mock's images: valid PNG files of the requested size, coloured from the prompt's
digest (and the edited image's bytes), for ``/v1/images/*`` and Imagen's ``:predict``."""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from sluice.providers.mock.caps import MockRequestError
from sluice.types import UnitKind, Usage

MAX_SIDE = 4096
"""Largest image side the mock draws (a larger ``size`` is refused, 400 naming it)."""


@dataclass(frozen=True, slots=True)
class MediaAnswer:
    """One mock media answer: its body, its media type, its billed usage."""

    body: bytes
    content_type: str | None
    """``None``: a JSON object."""
    usage: Usage


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def png(width: int, height: int, seed: bytes) -> bytes:
    """A valid RGB PNG: a colour from ``seed`` with a diagonal band, rows compressed."""
    r, g, b = seed[0], seed[1], seed[2]
    raw = bytearray()
    for y in range(height):
        band = (y * 4 // max(1, height)) & 1
        pixel = bytes((r, g, b)) if not band else bytes((255 - r, 255 - g, 255 - b))
        raw += b"\0" + pixel * width

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + tag
            + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 6))
        + chunk(b"IEND", b"")
    )


_SIZE = re.compile(r"^([0-9]{1,5})x([0-9]{1,5})$")


def images(fields: dict[str, Any], source: bytes = b"", *, created: int) -> MediaAnswer:
    """``n`` PNG images of ``size`` (``auto``: 1024x1024) from the prompt (and the edited
    image's bytes)."""
    size = str(fields.get("size") or "auto")
    if size == "auto":
        size = "1024x1024"
    found = _SIZE.match(size)
    if found is None or not all(0 < int(v) <= MAX_SIDE for v in found.groups()):
        raise MockRequestError(f"unsupported size {size!r}", param="size")
    width, height = int(found.group(1)), int(found.group(2))
    n = int(fields.get("n") or 1)
    prompt = str(fields.get("prompt", ""))
    fmt = fields.get("response_format") or "url"
    data = []
    for i in range(n):
        picture = png(width, height, _digest(f"{prompt}|{i}".encode() + source))
        encoded = base64.b64encode(picture).decode()
        item: dict[str, Any] = (
            {"b64_json": encoded}
            if fmt == "b64_json"
            else {"url": "data:image/png;base64," + encoded}
        )
        item["revised_prompt"] = prompt
        data.append(item)
    usage = Usage(units=n, unit_kind=UnitKind.IMAGES, unit_variant=size)
    return MediaAnswer(orjson.dumps({"created": created, "data": data}), None, usage)


_RATIO_SIZES = {"1:1": "1024x1024", "3:4": "768x1024", "4:3": "1024x768"}


def imagen_predictions(body: dict[str, Any]) -> dict[str, Any]:
    """The mock's Imagen ``:predict`` answer: ``sampleCount`` PNG images of the prompt
    (1024 pixels on the long side, a smaller square for other ratios)."""
    instance = body["instances"][0] if body.get("instances") else {}
    parameters = body.get("parameters") or {}
    count = parameters.get("sampleCount", 1)
    if type(count) is not int or not 1 <= count <= 8:
        raise MockRequestError("sampleCount must be 1 to 8", param="parameters.sampleCount")
    size = _RATIO_SIZES.get(str(parameters.get("aspectRatio", "1:1")), "512x512")
    width, height = (int(v) for v in size.split("x"))
    prompt = str(instance.get("prompt", ""))
    predictions = [
        {
            "bytesBase64Encoded": base64.b64encode(
                png(width, height, _digest(f"{prompt}|{i}".encode()))
            ).decode(),
            "mimeType": "image/png",
        }
        for i in range(count)
    ]
    return {"predictions": predictions}
