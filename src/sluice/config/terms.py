"""``auth.terms`` in the config file: the terms of service people accept before they use the
gateway.

The text is Markdown, given inline (``text``) or as a file (``file``, resolved relative to
the config file). It is read once, when the config is loaded; a missing or empty file stops
the start with the file and line of the ``file:`` key. Publishing a new ``version`` asks
everyone again (acceptances are recorded per version).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

CONFIG_DIR = "config_dir"
"""Validation-context entry: the directory of the config file (relative paths start there)."""

MAX_TERMS_CHARS = 200_000


class TermsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    """The published version (e.g. ``2026-12``); a new value asks everyone again."""
    file: str | None = None
    """A Markdown file holding the terms, relative to the config file (or absolute)."""
    text: Annotated[str | None, Field(min_length=1, max_length=MAX_TERMS_CHARS)] = None
    """The terms as Markdown, inline; set ``file`` or ``text``, not both."""
    exempt_admins: bool = True
    """Global admins use the console and their keys without accepting."""
    title: Annotated[str, Field(min_length=1, max_length=120)] = "Terms of service"
    """The heading of the console's terms page."""

    _body: str = PrivateAttr("")

    @field_validator("file")
    @classmethod
    def _resolve(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        path = Path(value).expanduser()
        base = (info.context or {}).get(CONFIG_DIR)
        if not path.is_absolute() and base is not None:
            path = Path(base) / path
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ValueError(f"cannot read the terms file {path}: {reason}") from None
        if not text.strip():
            raise ValueError(f"the terms file {path} is empty")
        if len(text) > MAX_TERMS_CHARS:
            raise ValueError(f"the terms file {path} is over {MAX_TERMS_CHARS} characters")
        return str(path)

    @model_validator(mode="after")
    def _one_source(self) -> TermsConfig:
        if (self.file is None) == (self.text is None):
            raise ValueError("set exactly one of file (a Markdown file) or text (inline)")
        if self.file is not None:
            self._body = Path(self.file).read_text(encoding="utf-8")
        else:
            assert self.text is not None
            self._body = self.text
        return self

    @property
    def body(self) -> str:
        """The terms as Markdown (the file's content, read when the config was loaded)."""
        return self._body
