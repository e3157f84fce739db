"""What any input may make the mock allocate or wait for.

Script parameters come from model names and ``x-mock-*`` headers, request fields from the
caller: both are bounded here so the mock (in-process or ``sluice mock-upstream``) stays
small in memory and never sleeps past an hour, whatever it is sent. A script parameter
out of range is a :class:`~sluice.providers.mock.script.ScriptError`; a request field out of
range is a :class:`MockRequestError` (answered 400, as a real provider would).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_DELAY_MS = 3_600_000
"""``latency_ms``, ``ttft_ms`` and ``chunk_delay_ms`` (one hour)."""
SCRIPT_RANGES: dict[str, tuple[float, float]] = {
    "latency_ms": (0, MAX_DELAY_MS),
    "ttft_ms": (0, MAX_DELAY_MS),
    "chunk_delay_ms": (0, MAX_DELAY_MS),
    "chunks": (1, 10_000),
    "prompt_tokens": (0, 1_000_000_000),
    "completion_tokens": (0, 65_536),
    "retry_after_s": (0, 86_400),
    "flaky": (0, 1_000_000),
    "cut": (0, 1_000_000),
    "stall": (0, 1_000_000),
    "malformed": (0, 1_000_000),
    "dim": (1, 4096),
}
"""Inclusive range of each numeric script parameter."""
MAX_ERROR_CODE_CHARS = 200
MAX_N = 128
"""Choices per answer (``n``, ``best_of``), OpenAI's own bound."""
MAX_ANSWER_WORDS = 1_048_576
"""Words in one answer across its choices (``n`` times the words of one choice)."""
MAX_EMBEDDING_VALUES = 1_048_576
"""Numbers in one embeddings answer (inputs times ``dim``)."""
MAX_FLAKY_SCRIPTS = 4096
"""Scripts whose ``flaky`` calls are counted; beyond, the counts start over."""
MAX_BODY_BYTES = 32 * 1024 * 1024
"""Largest request body ``sluice mock-upstream`` reads (413 beyond)."""
MAX_HEADER_BYTES = 64 * 1024
"""Largest request line plus headers ``sluice mock-upstream`` reads (431 beyond)."""
MAX_QUEUED_REQUESTS = 8
"""Pipelined requests read ahead on one connection before reading pauses."""


class MockRequestError(ValueError):
    """A request field beyond the mock's bounds (answered 400 naming ``param``)."""

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message)
        self.param = param


def script_range_error(key: str, value: float | str | None) -> str | None:
    """Why a parsed script parameter is out of range, or ``None``."""
    if key == "error_code" and isinstance(value, str) and len(value) > MAX_ERROR_CODE_CHARS:
        return f"mock parameter 'error_code' is longer than {MAX_ERROR_CODE_CHARS} characters"
    bounds = SCRIPT_RANGES.get(key)
    if bounds is None or not isinstance(value, int | float):
        return None
    low, high = bounds
    if not low <= value <= high:  # also refuses NaN
        return f"mock parameter {key!r} must be between {low:g} and {high:g}"
    return None


def choices(body: Mapping[str, Any], *, words: int) -> int:
    """The answer's choice count (``n``; ``best_of`` bills more on completions), checked."""
    count = 1
    for field in ("n", "best_of"):
        value = body.get(field)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_N:
            raise MockRequestError(
                f"'{field}' must be an integer between 1 and {MAX_N}", param=field
            )
        count = max(count, value)
    if count * words > MAX_ANSWER_WORDS:
        raise MockRequestError(
            f"the answer would exceed the mock's {MAX_ANSWER_WORDS} words", param="n"
        )
    return count


def embedding_inputs(inputs: list[Any], dim: int) -> None:
    if len(inputs) * dim > MAX_EMBEDDING_VALUES:
        raise MockRequestError(
            f"inputs times dimension exceed the mock's {MAX_EMBEDDING_VALUES} numbers",
            param="input",
        )
