"""Secret references: ``env:NAME`` or a literal, never shown in ``repr`` or logs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from sluice.settings import env_value

_ENV_PREFIX = "env:"


class SecretRef:
    """A credential as written in config: ``env:NAME`` (read when resolved) or a literal.

    ``repr`` and ``str`` never show the value; call :meth:`resolve` where it is sent.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: str) -> None:
        self._raw = raw

    @property
    def env_name(self) -> str | None:
        return self._raw[len(_ENV_PREFIX) :] if self._raw.startswith(_ENV_PREFIX) else None

    def resolve(self) -> str | None:
        """The secret's value; ``None`` when it names an unset environment variable."""
        name = self.env_name
        return env_value(name) if name is not None else self._raw

    def __repr__(self) -> str:
        name = self.env_name
        return f"SecretRef(env:{name})" if name else "SecretRef(***)"

    def __str__(self) -> str:
        """For messages: ``the environment variable OPENAI_API_KEY`` or ``a value written
        in the config`` (never the value)."""
        name = self.env_name
        return f"the environment variable {name}" if name else "a value written in the config"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretRef) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def parse(value: str) -> SecretRef:
            if value.startswith(_ENV_PREFIX) and not value[len(_ENV_PREFIX) :]:
                raise ValueError("env: reference needs a variable name, e.g. env:OPENAI_API_KEY")
            return cls(value)

        return core_schema.no_info_after_validator_function(
            parse,
            core_schema.str_schema(min_length=1),
            serialization=core_schema.plain_serializer_function_ser_schema(repr),
        )


class Secrets:
    """Secret references resolved by the core (when a provider's adapter is built), so the
    adapter gets values and never reads the environment itself."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[SecretRef, str | None] | None = None) -> None:
        self._values = dict(values or {})

    @classmethod
    def resolve(cls, refs: Iterable[SecretRef]) -> Secrets:
        return cls({ref: ref.resolve() for ref in refs})

    def value(self, ref: SecretRef | None) -> str | None:
        """The value of ``ref`` as resolved (``None``: an unset ``env:`` variable, or no
        ``ref``); ``KeyError`` for a reference that was not resolved."""
        return None if ref is None else self._values[ref]

    def __repr__(self) -> str:
        return f"Secrets({', '.join(repr(r) for r in self._values)})"


NO_SECRETS = Secrets()
