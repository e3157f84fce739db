"""One HTTP exchange with a provider's batch API: the call's deadlines (connect, first byte,
idle, and ``total_s`` for the whole exchange), an error answer translated by status, the
body read up to a bound."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from sluice.errors import ErrorKind, GatewayError
from sluice.providers.base import UpstreamCall
from sluice.providers.http import map_transport_error
from sluice.providers.native.io import ErrorMap, client_timeout
from sluice.providers.reading import read_capped, read_small

RESULTS_MAX_BYTES = 512 * 1024 * 1024
"""Largest results file read back from a provider (a batch's answers, all at once)."""


async def exchange(
    call: UpstreamCall,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    errors: ErrorMap,
    data: bytes | aiohttp.FormData | None = None,
    limit: int | None = None,
) -> bytes:
    """The answer's body (at most ``limit``, else ``call.limits.body_bytes``)."""
    cap = limit or call.limits.body_bytes
    try:
        async with asyncio.timeout(call.timeouts.total_s):
            async with call.session.request(
                method, url, data=data, headers=dict(headers), timeout=client_timeout(call)
            ) as resp:
                if resp.status >= 400:
                    raise errors.error(resp.status, await read_small(resp), resp.headers)
                return await read_capped(resp, limit=cap, deployment=call.deployment)
    except GatewayError:
        raise
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise map_transport_error(exc, deployment=call.deployment, started=False) from exc


def bad_answer(call: UpstreamCall, what: str) -> GatewayError:
    return GatewayError(
        ErrorKind.PROVIDER_BAD_RESPONSE, f"deployment {call.deployment}: unexpected {what}"
    )


def json_object(body: bytes, call: UpstreamCall) -> dict[str, Any]:
    """An answer body that must be a JSON object; anything else is ``bad_answer``."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise bad_answer(call, "answer (not JSON)") from None
    if not isinstance(data, dict):
        raise bad_answer(call, "answer")
    return data


def created_id(answer: dict[str, Any], call: UpstreamCall) -> str:
    """The ``id`` of a batch creation's answer (a string, else ``bad_answer``)."""
    batch_id = answer.get("id")
    if not isinstance(batch_id, str):
        raise bad_answer(call, "answer to the batch creation")
    return batch_id
