"""The access line of a refused request: its error text bounded, one line whatever it holds."""

from __future__ import annotations

import logging

import orjson

from sluice.observability.logging import JsonFormatter, TextFormatter, access_fields
from sluice.usage.bounds import ERROR_MESSAGE_CHARS
from sluice.usage.event import UsageEvent


def _format(formatter: logging.Formatter, ev: UsageEvent) -> str:
    record = logging.makeLogRecord({"name": "sluice.access", "levelname": "INFO"})
    record.access_batch = [access_fields(ev)]
    return formatter.format(record)


def test_error_text_is_bounded_and_stays_on_one_line() -> None:
    ev = UsageEvent("req_1", 1.0, "messages", "key_a", "m", status=400)
    ev.error_message = "first line\nsecond line " + "x" * (3 * ERROR_MESSAGE_CHARS)
    ev.error_param = "messages.1.role"
    line = _format(JsonFormatter(), ev)
    fields = orjson.loads(line)
    assert len(fields["error"]) == ERROR_MESSAGE_CHARS
    assert fields["error"].startswith("first line\nsecond line")
    assert fields["param"] == "messages.1.role"
    text = _format(TextFormatter(), ev)
    assert "\n" not in text and 'error="first line\\nsecond line xxx' in text
    assert " param=messages.1.role " in text


def test_a_served_request_has_no_error_fields_in_text() -> None:
    text = _format(TextFormatter(), UsageEvent("req_1", 1.0, "chat", "key_a", "m"))
    assert "error=" not in text and "param=" not in text
