"""Anthropic's Message Batches API: ``POST /v1/messages/batches`` with every request's
``custom_id`` and ``params`` (an OpenAI chat line translated as the live adapter translates
it), ``GET /v1/messages/batches/{id}``, the ``results_url`` JSONL read back and each
``message`` translated to an OpenAI chat completion, ``POST .../cancel``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from sluice.config.providers import AnthropicConfig
from sluice.errors import ErrorKind, GatewayError
from sluice.providers.anthropic import transform
from sluice.providers.anthropic.errors import ERRORS, STATUS_OF_TYPE
from sluice.providers.anthropic.provider import DEFAULT_BASE_URL, DEFAULT_VERSION
from sluice.providers.base import UpstreamCall
from sluice.providers.batch_api import BatchLine, BatchResult, UpstreamBatch
from sluice.providers.batch_http import (
    RESULTS_MAX_BYTES,
    bad_answer,
    created_id,
    exchange,
    json_object,
)
from sluice.providers.native.openai_out import chat_completion
from sluice.types import Endpoint

MAX_LINES = 100_000
"""Anthropic's limit on requests per message batch."""


class AnthropicBatchApi:
    """:class:`~sluice.providers.batch_api.BatchApi` over Anthropic's Message Batches."""

    endpoints = frozenset({Endpoint.CHAT})
    max_lines = MAX_LINES

    def __init__(self, name: str, config: AnthropicConfig, options: object = None) -> None:
        self._name = name
        self._config = config
        base = (config.base_url or DEFAULT_BASE_URL).rstrip("/").removesuffix("/v1")
        self._url = base + "/v1/messages/batches"
        self._version = config.api_version or DEFAULT_VERSION

    def _headers(self, call: UpstreamCall) -> dict[str, str]:
        if not call.credential:
            raise GatewayError(
                ErrorKind.GATEWAY_UNAVAILABLE, f"provider {self._name!r} has no credential"
            )
        return {
            "Content-Type": "application/json",
            "anthropic-version": self._version,
            **self._config.headers,
            "x-api-key": call.credential,
        }

    async def submit(self, lines: Sequence[BatchLine], call: UpstreamCall) -> str:
        requests = []
        for line in lines:
            if line.request.endpoint is not Endpoint.CHAT:
                raise GatewayError(ErrorKind.CALLER_UNSUPPORTED, "only chat lines can go")
            params = transform.chat_request(
                line.request.body, model=call.upstream_model, stream=False
            )
            requests.append({"custom_id": line.custom_id, "params": params})
        data = orjson.dumps({"requests": requests})
        made = json_object(
            await exchange(
                call, "POST", self._url, headers=self._headers(call), errors=ERRORS, data=data
            ),
            call,
        )
        return created_id(made, call)

    async def poll(self, batch_id: str, call: UpstreamCall) -> UpstreamBatch:
        data = json_object(
            await exchange(
                call, "GET", f"{self._url}/{batch_id}", headers=self._headers(call), errors=ERRORS
            ),
            call,
        )
        status = str(data.get("processing_status") or "")
        url = data.get("results_url")
        refs = (url,) if isinstance(url, str) and url else ()
        return UpstreamBatch(batch_id, status, status == "ended", refs)

    async def results(self, batch: UpstreamBatch, call: UpstreamCall) -> list[BatchResult]:
        out: list[BatchResult] = []
        for url in batch.refs:
            if not url.startswith(self._url.removesuffix("/v1/messages/batches")):
                raise bad_answer(call, "results URL (not on the provider's host)")
            body = await exchange(
                call, "GET", url, headers=self._headers(call), errors=ERRORS,
                limit=RESULTS_MAX_BYTES,
            )  # fmt: skip
            for line in body.splitlines():
                if line.strip():
                    result = _result(json_object(line, call), call)
                    if result is not None:
                        out.append(result)
        return out

    async def cancel(self, batch_id: str, call: UpstreamCall) -> None:
        await exchange(
            call, "POST", f"{self._url}/{batch_id}/cancel", headers=self._headers(call),
            errors=ERRORS,
        )  # fmt: skip


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _result(item: dict[str, Any], call: UpstreamCall) -> BatchResult | None:
    """A line's answer; ``None`` for a line that never ran (cancelled or expired)."""
    custom_id = str(item.get("custom_id") or "")
    result: dict[str, Any] = _dict(item.get("result"))
    kind = result.get("type")
    if kind == "succeeded" and isinstance(result.get("message"), dict):
        message = result["message"]
        choice, usage = transform.chat_response(message)
        body = chat_completion(
            ident=str(message.get("id") or "chatcmpl"),
            model=str(message.get("model") or call.upstream_model),
            choices=[choice],
            usage=usage,
        )
        return BatchResult(custom_id, 200, body, usage)
    if kind == "errored":
        outer = _dict(result.get("error"))
        error = _dict(outer.get("error")) or outer
        status = STATUS_OF_TYPE.get(str(error.get("type")), 502)
        message = str(error.get("message") or "the provider could not answer this line")
        envelope = {"error": {"message": message, "type": str(error.get("type") or "api_error"),
                              "param": None, "code": None}}  # fmt: skip
        return BatchResult(custom_id, status, orjson.dumps(envelope), None)
    return None
