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
    SPEECH = "audio.speech"
    TRANSCRIPTIONS = "audio.transcriptions"
    TRANSLATIONS = "audio.translations"
    IMAGES = "images.generations"
    IMAGE_EDITS = "images.edits"
    RERANK = "rerank"
    MODERATIONS = "moderations"


MEDIA_ENDPOINTS = frozenset(
    {
        Endpoint.SPEECH,
        Endpoint.TRANSCRIPTIONS,
        Endpoint.TRANSLATIONS,
        Endpoint.IMAGES,
        Endpoint.IMAGE_EDITS,
        Endpoint.RERANK,
        Endpoint.MODERATIONS,
    }
)
"""Endpoints billed by the unit the provider bills (seconds, characters, images, searches)
rather than by tokens alone; their answers are not kept by the response cache."""
FORM_ENDPOINTS = frozenset({Endpoint.TRANSCRIPTIONS, Endpoint.TRANSLATIONS, Endpoint.IMAGE_EDITS})
"""Endpoints whose requests are ``multipart/form-data`` with an uploaded file."""


class UnitKind(enum.StrEnum):
    """What a media request is billed by (``Usage.unit_kind``, the usage row's column)."""

    AUDIO_SECONDS = "audio_seconds"
    CHARACTERS = "characters"
    IMAGES = "images"
    SEARCHES = "searches"


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
    units: float = 0.0
    """Billed units of a media request (``unit_kind``): seconds of audio, characters of
    speech input, images, rerank searches; 0 for token-billed requests."""
    unit_kind: str | None = None
    """A :class:`UnitKind` value, or ``None`` when the request is billed by tokens only."""
    unit_variant: str | None = None
    """What an image's price depends on (its ``size``, e.g. ``1024x1024``); not stored."""

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
    upload: Upload | None = None
    """The file of a ``multipart/form-data`` request (transcriptions, image edits); its
    other form fields are in ``body`` (text values, ``[]`` fields as lists)."""
    reserve: Usage | None = None
    """A media request's estimate (units and tokens) that limits and budgets hold before
    the call; ``None``: the token estimate from the body."""


@dataclass(frozen=True, slots=True)
class Upload:
    """One uploaded file part, read whole (its size is bounded by the edge)."""

    field: str
    """The form field that carried it (``file``, ``image``, ``mask``)."""
    filename: str
    content_type: str
    data: bytes
    extra: tuple[Upload, ...] = ()
    """Further file parts (an image edit's ``mask``, more ``image[]`` parts)."""


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
