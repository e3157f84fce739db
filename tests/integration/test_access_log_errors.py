"""A refused request explains itself in the access log: the line carries the error message
(redacted, bounded) and the field it names (``param``)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import orjson
import pytest

from sluice.observability.logging import ACCESS_LOGGER, JsonFormatter, TextFormatter
from sluice.observability.redact import RedactingFilter
from tests.integration.conftest import make_settings, running

SECRET = "sk-slc-abcd1234-" + "x" * 32


@pytest.mark.parametrize("fmt", ["json", "text"])
async def test_a_400_logs_its_message_and_param(tmp_path: Path, fmt: str) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(handler)
    try:
        async with running(make_settings(tmp_path)) as (app, client):
            logger.setLevel(logging.INFO)
            bad = {"model": "mock-gpt", "messages": [{"role": "user", "content": "Hi"}]}
            resp = await client.post("/v1/messages", json=bad)  # no max_tokens
            assert resp.status_code == 400
            resp = await client.post(
                "/v1/responses", json={"model": "mock-gpt", "input": "x", "stream": "yes"}
            )
            assert resp.status_code == 400
            secret = {"model": "mock-gpt", "input": "x", "previous_response_id": SECRET}
            resp = await client.post("/v1/responses", json=secret)
            assert resp.status_code == 404
            rt = app.runtime
            assert rt is not None
            await rt.usage.flush()
    finally:
        logger.removeHandler(handler)
    lines = [line for line in stream.getvalue().splitlines() if "request_id" in line]
    assert len(lines) == 3
    assert SECRET not in stream.getvalue()  # the error text is redacted before it is logged
    assert "previous_response_id" in lines[2] and "no response" in lines[2]
    if fmt == "json":
        first, second, _ = (orjson.loads(line) for line in lines)
        assert (first["status"], first["param"]) == (400, "max_tokens")
        assert first["error"] == "max_tokens: must be a positive integer"
        assert first["error_kind"] == "caller_bad_request"
        assert (second["param"], second["error"]) == ("stream", "'stream' must be a bool")
    else:
        assert "param=max_tokens" in lines[0]
        assert 'error="max_tokens: must be a positive integer"' in lines[0]
        assert "param=stream" in lines[1] and "error=\"'stream' must be a bool\"" in lines[1]
