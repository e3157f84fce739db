"""The ``body_logging`` section of the gateway config: which requests keep their bodies."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator


class BodyLoggingConfig(BaseModel):
    """Store prompt and response bodies of some organisations' or teams' requests.

    Off unless ``orgs`` or ``teams`` lists an id. Bodies are redacted (bearer tokens,
    ``sk-...`` style keys, ``key=``/``api_key=`` URL parameters, and ``redact`` patterns)
    by the background usage writer, kept for ``retention_days``, and readable through
    ``GET /api/v1/analytics/requests/{id}`` by whoever may see that request.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    orgs: tuple[str, ...] = ()
    """Organisation ids whose requests are logged."""
    teams: tuple[str, ...] = ()
    """Team ids whose requests are logged (in addition to ``orgs``)."""
    retention_days: int = Field(default=7, ge=1, le=3650)
    """Days a logged body is kept (its usage row follows ``SLUICE_USAGE_RETENTION_DAYS``)."""
    max_bytes: int = Field(default=65_536, ge=256, le=16 * 1024 * 1024)
    """Bytes kept of each request and each response; a stream keeps the SSE text as sent
    to the client up to this size (``truncated`` says when it was cut)."""
    redact: tuple[str, ...] = ()
    """Extra regular expressions; every match is replaced by ``[REDACTED]``."""

    @field_validator("redact")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for i, pattern in enumerate(value):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"redact[{i}]: not a regular expression: {exc}") from exc
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.orgs or self.teams)
