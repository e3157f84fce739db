"""Imagen image generation (``:predict``), shared by the Gemini API and Vertex AI: an OpenAI
``/v1/images/generations`` request in, OpenAI's image list out.

Imagen takes an aspect ratio, not a size: the request's ``size`` picks the nearest ratio
Imagen offers, and the answer is priced by that ``size`` (``micros_per_image_by_size``).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from sluice.errors import ErrorKind, GatewayError
from sluice.providers.base import UpstreamCall, UpstreamResponse
from sluice.providers.gemini.errors import ERRORS
from sluice.providers.native import io
from sluice.types import ProviderRequest, UnitKind, Usage

RATIOS = {"1:1": 1.0, "3:4": 0.75, "4:3": 4 / 3, "9:16": 9 / 16, "16:9": 16 / 9}


def aspect_ratio(size: Any) -> str:
    """The Imagen aspect ratio nearest ``WIDTHxHEIGHT`` (``1:1`` for ``auto``)."""
    if not isinstance(size, str) or "x" not in size:
        return "1:1"
    width, _, height = size.partition("x")
    if not (width.isdigit() and height.isdigit()) or int(height) == 0:
        return "1:1"
    ratio = int(width) / int(height)
    return min(RATIOS, key=lambda name: abs(RATIOS[name] - ratio))


def imagen_request(body: dict[str, Any]) -> bytes:
    parameters: dict[str, Any] = {
        "sampleCount": body.get("n", 1),
        "aspectRatio": aspect_ratio(body.get("size")),
    }
    return orjson.dumps({"instances": [{"prompt": body.get("prompt")}], "parameters": parameters})


def imagen_response(
    req: ProviderRequest, answer: dict[str, Any], deployment: str
) -> UpstreamResponse:
    predictions = answer.get("predictions")
    if not isinstance(predictions, list):
        raise GatewayError(
            ErrorKind.PROVIDER_BAD_RESPONSE, f"deployment {deployment} sent no predictions"
        )
    url = req.body.get("response_format", "url") == "url"
    data = []
    for p in predictions:
        encoded = p.get("bytesBase64Encoded") if isinstance(p, dict) else None
        if not isinstance(encoded, str):
            continue  # filtered by the provider's safety settings
        mime = p.get("mimeType") or "image/png"
        data.append({"url": f"data:{mime};base64,{encoded}"} if url else {"b64_json": encoded})
    reserve = req.reserve
    usage = Usage(
        units=len(data),
        unit_kind=UnitKind.IMAGES,
        unit_variant=None if reserve is None else reserve.unit_variant,
    )
    body = orjson.dumps({"created": int(time.time()), "data": data})
    return UpstreamResponse(body=body, usage=usage)


async def generate_images(
    req: ProviderRequest, call: UpstreamCall, *, url: str, headers: dict[str, str]
) -> UpstreamResponse:
    """One ``:predict`` call to the Imagen model at ``url``."""
    resp = await io.post(
        call, url + ":predict", data=imagen_request(req.body), headers=headers, errors=ERRORS
    )
    return imagen_response(req, await io.read_json(resp, call), call.deployment)
