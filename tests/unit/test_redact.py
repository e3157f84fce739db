"""Redaction: every kind of secret the gateway handles is masked in text and log records."""

from __future__ import annotations

import io
import logging

import pytest

from sluice.observability.logging import JsonFormatter
from sluice.observability.redact import RedactingFilter, Redactor, scrub

GATEWAY_KEY = "sk-slc-abcd1234-" + "x" * 32
SECRETS = [
    (GATEWAY_KEY, f"key {GATEWAY_KEY} was refused"),
    ("sk-proj-AbCdEf0123456789", "Incorrect API key provided: sk-proj-AbCdEf0123456789."),
    ("sk-ant-api03-zzzzyyyyxxxx", '{"x-api-key": "sk-ant-api03-zzzzyyyyxxxx"}'),
    ("AIzaSyA1b2C3d4E5f6G7h8I9j0KLmnop", "GET /v1/models?key=AIzaSyA1b2C3d4E5f6G7h8I9j0KLmnop"),
    ("tok3n.v4lue~x", "Authorization: Bearer tok3n.v4lue~x"),
    ("plain-hidden-value", "POST https://h/v1/x?alt=sse&key=plain-hidden-value&y=1"),
    ("hunter2hunter2", "api-key: hunter2hunter2"),
    ("AKIAIOSFODNN7EXAMPLE", "credential AKIAIOSFODNN7EXAMPLE/20240101"),
    ("sigvalue123", "https://s3/x?X-Amz-Signature=sigvalue123"),
]


@pytest.mark.parametrize(("secret", "text"), SECRETS)
def test_patterns_mask_every_kind_of_secret(secret: str, text: str) -> None:
    masked = scrub(text)
    assert secret not in masked
    assert "***" in masked


def test_configured_values_are_masked_by_value_longest_first() -> None:
    redact = Redactor(["short", "no-pattern-secret", "no-pattern-secret-longer"])
    text = "upstream said no-pattern-secret-longer and no-pattern-secret; short stays"
    out = redact(text)
    assert "no-pattern-secret" not in out
    assert "short stays" in out  # under the minimum length: not a secret by value
    redact.add(["added-later-value"])
    assert "added-later-value" not in redact("x added-later-value y")


def test_ordinary_text_is_left_alone() -> None:
    text = "model=mock-gpt status=200 deployment=mock/chat key_id=key_abc123 tokens=12"
    assert Redactor()(text) == text


def test_masking_is_idempotent() -> None:
    once = scrub(SECRETS[0][1] + " " + SECRETS[4][1])
    assert scrub(once) == once


def test_filter_masks_message_args_exception_and_access_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter(redactor=Redactor(["configured-credential"])))
    logger = logging.getLogger("sluice.test.redact")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.warning("calling with %s", "Bearer sk-live-0123456789")
        try:
            raise RuntimeError(f"failed on https://x/?key={GATEWAY_KEY}")
        except RuntimeError:
            logger.exception("boom configured-credential")
        logger.info("request", extra={"access": {"model": "m", "error": "api_key=abcdefgh1"}})
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    for secret in ("sk-live-0123456789", GATEWAY_KEY, "configured-credential", "abcdefgh1"):
        assert secret not in out
    assert out.count("\n") == 3 and '"model":"m"' in out


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_access_batch_is_one_line_per_request_and_masks_the_model(fmt: str) -> None:
    from sluice.observability.logging import AccessLog, TextFormatter
    from sluice.usage.event import UsageEvent

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(f"sluice.test.access.{fmt}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    events = [UsageEvent(f"req_{i}", 1.0, "chat", "key_a", "m") for i in range(3)]
    events[1].model = GATEWAY_KEY  # a caller who pasted a key as the model name
    try:
        AccessLog(logger)(events)
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and GATEWAY_KEY not in stream.getvalue()
    assert all(f"req_{i}" in line for i, line in enumerate(lines))
    if fmt == "json":
        import json

        assert [json.loads(line)["request_id"] for line in lines] == ["req_0", "req_1", "req_2"]
