"""OpenAI's Batch API (also served by OpenAI-compatible servers that have it): the input as
a JSONL file (``POST /files``, ``purpose=batch``), ``POST /batches``, ``GET /batches/{id}``,
the output and error files read back (``GET /files/{id}/content``), ``POST
/batches/{id}/cancel``. Lines are sent as a live call would send them (the deployment's
model name, the body otherwise untouched)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson

from sluice.config.providers import OpenAIConfig
from sluice.errors import ErrorKind, GatewayError
from sluice.providers.base import UpstreamCall
from sluice.providers.batch_api import BatchLine, BatchResult, UpstreamBatch
from sluice.providers.batch_http import (
    RESULTS_MAX_BYTES,
    bad_answer,
    created_id,
    exchange,
    json_object,
)
from sluice.providers.native.io import ErrorMap
from sluice.providers.openai_compat import upstream_body
from sluice.providers.registry import OpenAIFamilyRow
from sluice.types import Endpoint, usage_from_openai

_ERRORS = ErrorMap()
_URLS = {
    Endpoint.CHAT: "/v1/chat/completions",
    Endpoint.COMPLETIONS: "/v1/completions",
    Endpoint.EMBEDDINGS: "/v1/embeddings",
}
_ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
MAX_LINES = 50_000
"""OpenAI's limit on requests per batch."""


class OpenAIBatchApi:
    """:class:`~sluice.providers.batch_api.BatchApi` over the OpenAI Batch API."""

    endpoints = frozenset(_URLS)
    max_lines = MAX_LINES

    def __init__(self, name: str, config: OpenAIConfig, row: OpenAIFamilyRow | None) -> None:
        base = config.base_url or (row.default_base_url if row is not None else None)
        if base is None:
            raise ValueError(f"provider {name!r}: base_url is required for {config.type}")
        self._name = name
        self._base = base.rstrip("/")
        self._config = config
        self._key_required = row is None or row.key_required

    def _headers(self, call: UpstreamCall) -> dict[str, str]:
        if call.credential is None and self._key_required:
            raise GatewayError(
                ErrorKind.GATEWAY_UNAVAILABLE, f"provider {self._name!r} has no credential"
            )
        headers = dict(self._config.headers)
        if call.credential:
            headers["Authorization"] = f"Bearer {call.credential}"
        return headers

    async def submit(self, lines: Sequence[BatchLine], call: UpstreamCall) -> str:
        endpoints = {line.request.endpoint for line in lines}
        if len(endpoints) != 1 or not endpoints <= self.endpoints:
            raise GatewayError(ErrorKind.CALLER_UNSUPPORTED, "one batch endpoint per submission")
        url = _URLS[endpoints.pop()]
        data = b"".join(
            b'{"custom_id":%s,"method":"POST","url":"%s","body":%s}\n'
            % (
                orjson.dumps(line.custom_id),
                url.encode(),
                upstream_body(line.request, call.upstream_model, stream_usage=False),
            )
            for line in lines
        )
        form = aiohttp.FormData()
        form.add_field("purpose", "batch")
        form.add_field(
            "file", data, filename=f"{call.request_id}.jsonl", content_type="application/jsonl"
        )
        headers = self._headers(call)
        uploaded = json_object(
            await exchange(
                call, "POST", f"{self._base}/files", headers=headers, errors=_ERRORS, data=form
            ),
            call,
        )
        file_id = uploaded.get("id")
        if not isinstance(file_id, str):
            raise bad_answer(call, "answer to the file upload")
        body = {"input_file_id": file_id, "endpoint": url, "completion_window": "24h"}
        created = json_object(
            await exchange(
                call,
                "POST",
                f"{self._base}/batches",
                headers={**headers, "Content-Type": "application/json"},
                errors=_ERRORS,
                data=orjson.dumps(body),
            ),
            call,
        )
        return created_id(created, call)

    async def poll(self, batch_id: str, call: UpstreamCall) -> UpstreamBatch:
        data = json_object(
            await exchange(
                call,
                "GET",
                f"{self._base}/batches/{batch_id}",
                headers=self._headers(call),
                errors=_ERRORS,
            ),
            call,
        )
        status = str(data.get("status") or "")
        refs = tuple(
            ref
            for ref in (data.get("output_file_id"), data.get("error_file_id"))
            if isinstance(ref, str) and ref
        )
        failed = _errors(data.get("errors")) if status == "failed" else None
        return UpstreamBatch(batch_id, status, status in _ENDED, refs, failed)

    async def results(self, batch: UpstreamBatch, call: UpstreamCall) -> list[BatchResult]:
        out: list[BatchResult] = []
        for ref in batch.refs:
            body = await exchange(
                call,
                "GET",
                f"{self._base}/files/{ref}/content",
                headers=self._headers(call),
                errors=_ERRORS,
                limit=RESULTS_MAX_BYTES,
            )
            out.extend(_result(line, call) for line in body.splitlines() if line.strip())
        return out

    async def cancel(self, batch_id: str, call: UpstreamCall) -> None:
        try:
            await exchange(
                call,
                "POST",
                f"{self._base}/batches/{batch_id}/cancel",
                headers=self._headers(call),
                errors=_ERRORS,
            )
        except GatewayError as exc:
            if exc.upstream_status != 409:  # already ended
                raise


def _errors(value: Any) -> str:
    items = value.get("data") if isinstance(value, dict) else None
    for item in items or ():
        if isinstance(item, dict) and isinstance(item.get("message"), str):
            return str(item["message"])[:500]
    return "the provider failed the batch"


def _result(line: bytes, call: UpstreamCall) -> BatchResult:
    item = json_object(line, call)
    custom_id = str(item.get("custom_id") or "")
    response = item.get("response")
    if isinstance(response, dict):
        status = response.get("status_code")
        body = response.get("body")
        if isinstance(status, int):
            usage = usage_from_openai(body.get("usage")) if isinstance(body, dict) else None
            return BatchResult(
                custom_id, status, orjson.dumps(body), usage if status < 400 else None
            )
    error: dict[str, Any] = item["error"] if isinstance(item.get("error"), dict) else {}
    message = str(error.get("message") or "the provider gave no answer for this line")
    envelope = {"error": {"message": message, "type": "provider_error", "param": None,
                          "code": error.get("code")}}  # fmt: skip
    return BatchResult(custom_id, 502, orjson.dumps(envelope), None)
