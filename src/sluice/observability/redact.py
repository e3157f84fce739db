"""Masking secrets in text: gateway keys, provider keys, bearer tokens, ``?key=`` URL
parameters, and exact values the process knows to be secret (configured credentials).

Pure functions over strings (stdlib only), so the error boundary, the log filter and the
usage writer can all use them. Masks keep a short recognisable prefix and never any of the
secret's own characters beyond that prefix.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"
MIN_SECRET_LENGTH = 8
"""Configured values shorter than this are not masked by value (too likely to be words)."""

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Gateway keys (sk-slc-...), then any other sk-... key (OpenAI, Anthropic sk-ant-, ...).
    (re.compile(r"\bsk-slc-[A-Za-z0-9_\-]+"), "sk-slc-" + MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), "sk-" + MASK),
    # Google API keys.
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{16,}"), "AIza" + MASK),
    # AWS access key ids.
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{12,}"), "AKIA" + MASK),
    # Authorization: Bearer <token> / Basic <token>.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{4,}"), r"\1 " + MASK),
    # api-key: value, x-api-key=value, "api_key": "value", x-goog-api-key ...
    (
        re.compile(
            r"(?i)((?:x-goog-|x-)?api[-_]?key|access[-_]?token|secret[-_]?access[-_]?key"
            r"|client[-_]?secret|password)(['\"]?\s*[:=]\s*['\"]?)[^'\"\s&,;}]+"
        ),
        r"\1\2" + MASK,
    ),
    # URL query parameters that carry credentials.
    (
        re.compile(
            r"(?i)([?&](?:key|api_key|api-key|apikey|access_token|token|sig|signature"
            r"|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&\s'\"#]+"
        ),
        r"\1" + MASK,
    ),
)


_TRIGGERS = (
    "sk-",
    "aiza",
    "akia",
    "asia",
    "bearer",
    "basic",
    "key=",
    "key:",
    'key"',
    "key'",
    "token",
    "secret",
    "password",
    "sig",
    "credential",
)
"""Lower-case substrings without which no pattern can match: text with none of them (most
log lines) skips the regular expressions."""


def _suspect(text: str) -> bool:
    low = text.lower()
    return any(t in low for t in _TRIGGERS)


class Redactor:
    """Masks known patterns and the exact secret values it was given.

    :meth:`add` may be called at any time (the lifespan adds credentials as it loads them);
    values shorter than :data:`MIN_SECRET_LENGTH` are ignored.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._values: tuple[str, ...] = ()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        fresh = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
        if fresh - set(self._values):
            # Longest first, so a secret that contains another is masked whole.
            self._values = tuple(sorted(fresh | set(self._values), key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return scrub(text)


def scrub(text: str) -> str:
    """Mask the known patterns only (no configured values)."""
    if not _suspect(text):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in every record it sees: the formatted message,
    the exception and stack text, and string ``extra`` fields. Attach it to handlers (the
    lifespan does, for the root, ``sluice`` and uvicorn handlers), so records from every
    logger are masked before any formatter writes them."""

    def __init__(self, name: str = "", redactor: Redactor | None = None) -> None:
        super().__init__(name)
        self.redactor = redactor or Redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self.redactor
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw text, masked
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None  # the text above is what formatters print
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            for k, v in access.items():
                if isinstance(v, str):
                    access[k] = redact(v)
        batch = getattr(record, "access_batch", None)
        if isinstance(batch, list):
            masked: dict[str, str] = {}  # a batch repeats a few model names
            for fields in batch:  # the caller-written field; the rest is generated
                model = fields.get("model")
                if isinstance(model, str):
                    clean = masked.get(model)
                    if clean is None:
                        clean = masked[model] = redact(model)
                    fields["model"] = clean
        return True
