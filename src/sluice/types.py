"""Small value types shared by the pipeline and the provider adapters."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Endpoint(enum.StrEnum):
    """An operation a provider may support (a capability).

    ``CHAT``, ``COMPLETIONS`` and ``EMBEDDINGS`` take and return the OpenAI wire format.
    ``MESSAGES`` takes and returns the Anthropic Messages wire format unchanged (native
    pass-through, no double translation); ``RESPONSES`` the OpenAI Responses API's.
    """

    CHAT = "chat"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    MESSAGES = "messages"
    RESPONSES = "responses"


@dataclass(slots=True)
class Usage:
    """Token counts for one request. ``estimated`` when the gateway counted them itself."""

    prompt_tokens: int = 0
    """All input tokens, cached ones included."""
    completion_tokens: int = 0
    cached_tokens: int = 0
    """Input tokens read from the provider's prompt cache (part of ``prompt_tokens``)."""
    cache_write_tokens: int = 0
    """Input tokens written to the provider's prompt cache (part of ``prompt_tokens``)."""
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def usage_from_openai(obj: Any) -> Usage | None:
    """Read an OpenAI ``usage`` object; ``None`` when absent or malformed."""
    if not isinstance(obj, dict):
        return None
    prompt = obj.get("prompt_tokens", obj.get("input_tokens"))
    completion = obj.get("completion_tokens", obj.get("output_tokens", 0))
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    details = obj.get("prompt_tokens_details") or obj.get("input_tokens_details")
    cached = details.get("cached_tokens", 0) if isinstance(details, dict) else 0
    return Usage(prompt, completion, cached if isinstance(cached, int) else 0)


@dataclass(slots=True)
class ProviderRequest:
    """What the client asked for, as the pipeline hands it to an adapter.

    ``body`` is the client's parsed JSON (OpenAI shape); ``raw`` its original bytes, which
    an OpenAI-compatible adapter forwards untouched when it need not change anything.
    Adapters must not mutate ``body``.
    """

    endpoint: Endpoint
    body: dict[str, Any]
    raw: bytes
    model: str
    """The public model name the client asked for."""
    stream: bool = False
    include_usage: bool = False
    """The client asked for the final usage chunk (``stream_options.include_usage``)."""
    context: Any = None
    """State a dialect keeps for this request (e.g. the Responses conversation so far)."""


class FieldError(ValueError):
    """A value object refused its input; ``field`` names where (``limits.rpm``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A stored value this version cannot read (written by hand or by an older version).

    It is kept as stored, so an unrelated change writes it back untouched and the admin API
    shows it; whatever would enforce it refuses instead (a key with unreadable limits fails
    closed)."""

    raw: Any
    reason: str

    def to_json(self) -> Any:
        return self.raw
