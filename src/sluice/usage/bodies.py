"""Prompt and response body logging: capture in the request (references only), redact and
store in the background writer.

The request path only keeps references to the bytes it already has (the request body, the
response body or stream chunks up to ``max_bytes``); decoding, redaction and the insert
happen in the usage writer, off the event loop where they cost anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sluice.config.body_logging import BodyLoggingConfig

REDACTED = "[REDACTED]"

BUILTIN_PATTERNS = (
    r"(?i)\bbearer\s+[a-z0-9._~+/=-]{8,}",
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{12,}",
    r"\bAKIA[0-9A-Z]{16}\b",
    r"(?i)([?&](?:key|api_key|apikey|access_token|token)=)[^&\s\"']+",
)
"""Bearer tokens, ``sk-``/``pk-``/``rk-`` keys (gateway and provider keys), AWS access key
ids, and secrets in URL query parameters."""


@dataclass(slots=True)
class BodyCapture:
    """Filled by the request: the request body and what was sent back, up to ``cap``."""

    cap: int
    request: bytes = b""
    parts: list[bytes] = field(default_factory=list)
    size: int = 0
    truncated: bool = False

    def add(self, data: bytes) -> None:
        if self.size >= self.cap:
            self.truncated = self.truncated or bool(data)
            return
        self.parts.append(data)
        self.size += len(data)


@dataclass(frozen=True, slots=True)
class StoredBody:
    request_id: str
    created_at: float
    org_id: str | None
    team_id: str | None
    request: str
    response: str
    truncated: bool


class BodyRepository(Protocol):
    async def insert_many(self, bodies: Sequence[StoredBody]) -> None:
        """Insert in one transaction; a body whose request id exists is skipped."""
        ...

    async def get(self, request_id: str) -> StoredBody | None: ...

    async def purge_before(self, cutoff: float, *, limit: int) -> int:
        """Delete at most ``limit`` bodies created before ``cutoff``; the number deleted."""
        ...


class BodyPolicy:
    """Which principals' requests are logged, and how a capture becomes a stored body."""

    def __init__(self, config: BodyLoggingConfig) -> None:
        self.enabled = config.enabled
        self.cap = config.max_bytes
        self.retention_days = config.retention_days
        self._orgs = frozenset(config.orgs)
        self._teams = frozenset(config.teams)
        # Built-in URL patterns keep the parameter name (group 1); configured patterns are
        # replaced whole, whatever groups they have.
        self._patterns: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
            (re.compile(p), (r"\1" + REDACTED) if re.compile(p).groups else REDACTED)
            for p in BUILTIN_PATTERNS
        ]
        self._patterns += [(re.compile(p), _whole) for p in config.redact]

    def wants(self, org_id: str | None, team_id: str | None) -> bool:
        return (org_id is not None and org_id in self._orgs) or (
            team_id is not None and team_id in self._teams
        )

    def redact(self, text: str) -> str:
        for pattern, replacement in self._patterns:
            text = pattern.sub(replacement, text)
        return text

    def render(
        self,
        capture: BodyCapture,
        *,
        request_id: str,
        created_at: float,
        org_id: str | None,
        team_id: str | None,
    ) -> StoredBody:
        """Decode, cut at the cap and redact (CPU work: run it off the event loop)."""
        request = capture.request[: self.cap]
        response = b"".join(capture.parts)[: self.cap]
        truncated = capture.truncated or len(capture.request) > self.cap or capture.size > self.cap
        return StoredBody(
            request_id=request_id,
            created_at=created_at,
            org_id=org_id,
            team_id=team_id,
            request=self.redact(_text(request)),
            response=self.redact(_text(response)),
            truncated=truncated,
        )


def _text(raw: bytes) -> str:
    """Storable text: invalid UTF-8 and NUL bytes (which PostgreSQL refuses) replaced."""
    return raw.decode("utf-8", "replace").replace("\x00", "\ufffd")


def _whole(_match: re.Match[str]) -> str:
    return REDACTED
