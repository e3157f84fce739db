"""How admin API input for providers and models is checked: by the config file's frozen
models and cross-entry rules, with the config file's wording, each error naming the field
inside the entry (``deployments[0].weight``) as the 400's ``param``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from sluice.config import GatewayConfig
from sluice.config.catalog import Loc, format_loc, reference_problems
from sluice.config.loader import validation_problems
from sluice.config.model import ModelConfig
from sluice.config.providers import ProviderConfig, validate_provider
from sluice.errors import BadRequest, ErrorKind, GatewayError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$")
"""A stored model's name (``/`` allowed: ``team/model``)."""
PROVIDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""A stored provider's name: one URL path segment."""
ENV_ONLY = ("access_key_id", "secret_access_key", "session_token")
"""Credential fields a stored provider may set only as ``env:NAME`` references (its
``api_key`` may be a value too: it is sealed like today's stored credentials)."""
ENV_REF = re.compile(r"^env:[A-Za-z_][A-Za-z0-9_]{0,127}$")
HIDDEN = "***"


def bad(loc: Loc, message: str) -> BadRequest:
    path = format_loc(loc)
    return BadRequest(f"{path}: {message}" if path else message, param=path or None)


MAX_TEXT = 4096
"""Longest string anywhere in an entry."""
MAX_ITEMS = 512
"""Most items in any list or mapping of an entry (deployments, aliases, headers, ...)."""
MAX_DEPTH = 8


def check_bounds(value: Any, loc: Loc = (), depth: int = 0) -> None:
    """What a caller sends is bounded before anything else looks at it: string length, no
    NUL character (PostgreSQL cannot store it), list and mapping sizes, nesting."""
    if depth > MAX_DEPTH:
        raise bad(loc, f"nested more than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise bad(loc, f"at most {MAX_TEXT} characters")
        if "\x00" in value:
            raise bad(loc, "must not contain NUL characters")
    elif isinstance(value, Mapping):
        if len(value) > MAX_ITEMS:
            raise bad(loc, f"at most {MAX_ITEMS} entries")
        for key, item in value.items():
            check_bounds(key, loc, depth + 1)
            check_bounds(item, (*loc, str(key)), depth + 1)
    elif isinstance(value, list | tuple):
        if len(value) > MAX_ITEMS:
            raise bad(loc, f"at most {MAX_ITEMS} items")
        for i, item in enumerate(value):
            check_bounds(item, (*loc, i), depth + 1)


def check_name(kind: str, value: Any) -> str:
    if kind == "provider":
        if not isinstance(value, str) or not PROVIDER_NAME.match(value):
            raise bad(
                ("name",),
                "a provider name is 1 to 64 letters, digits or ._- starting with a letter or digit",
            )
        return value
    if not isinstance(value, str) or not NAME.match(value):
        raise bad(
            ("name",),
            f"a {kind} name is 1 to 128 letters, digits or ._:/@- starting with a letter or digit",
        )
    return value


def _relative(problems: list[tuple[Loc, str]], prefix: Loc) -> BadRequest:
    loc, message = problems[0]
    return bad(loc[len(prefix) :] if loc[: len(prefix)] == prefix else loc, message)


def provider_from(name: str, spec: Mapping[str, Any]) -> ProviderConfig:
    """A provider from API input (as written under ``providers.<name>`` in the file)."""
    if not isinstance(spec, Mapping):
        raise bad((), "a provider is a JSON object")
    check_bounds(spec)
    for field in ENV_ONLY:
        value = spec.get(field)
        if value is not None and not (isinstance(value, str) and ENV_REF.match(value)):
            raise bad((field,), "must be an env: reference (env:NAME); it is not stored")
    data = {"providers": {name: dict(spec)}}
    try:
        return validate_provider(spec)
    except ValidationError as exc:
        # Placed where it sits in a file, so the file's wording and tag-stripping apply.
        try:
            GatewayConfig.model_validate(data)
        except ValidationError as full:
            raise _relative(validation_problems(full, data), ("providers", name)) from None
        raise _relative(validation_problems(exc, {}), ()) from None


def model_from(spec: Mapping[str, Any]) -> ModelConfig:
    """A model from API input (as written as one item of ``models`` in the file)."""
    if not isinstance(spec, Mapping):
        raise bad((), "a model is a JSON object")
    check_bounds(spec)
    try:
        return ModelConfig.model_validate(spec)
    except ValidationError:
        data = {"models": [dict(spec)]}
        try:
            GatewayConfig.model_validate(data)
        except ValidationError as full:
            problems = [
                (loc, m) for loc, m in validation_problems(full, data) if loc[:2] == ("models", 0)
            ]
            if problems:
                raise _relative(problems, ("models", 0)) from None
        raise


def check_references(
    models: Sequence[ModelConfig],
    providers: Mapping[str, ProviderConfig],
    *,
    blame: int | None,
    base: GatewayConfig,
) -> GatewayConfig:
    """The whole table after a change, checked like the file; ``blame``: the index of the
    model the change is about (its problems name fields inside it). The candidate config is
    returned (the one to build the new route table from)."""
    problems = reference_problems(models, providers)
    if problems:
        ours = [p for p in problems if blame is not None and p[0][:2] == ("models", blame)]
        if ours and blame is not None:
            raise _relative(ours, ("models", blame))
        loc, message = problems[0]
        other = models[loc[1]].name if isinstance(loc[1], int) else "?"
        raise GatewayError(
            ErrorKind.CALLER_BAD_REQUEST,
            f"model {other!r} would break: {format_loc(loc[2:])}: {message}",
            status=409,
            code="conflict",
        )
    candidate = base.model_copy(update={"models": tuple(models), "providers": dict(providers)})
    try:
        revalidated(candidate)
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise GatewayError(
            ErrorKind.CALLER_BAD_REQUEST, message, status=409, code="conflict"
        ) from None
    return candidate


def revalidated(candidate: GatewayConfig) -> GatewayConfig:
    """``candidate`` (a copy with other providers and models) checked as a whole by the
    config's own validators: its sections are the validated objects already, so only the
    document-wide rules run again. Raises :class:`pydantic.ValidationError`."""
    return GatewayConfig.model_validate(dict(candidate))


def stored_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What is stored of a provider (its validated input, as in the file, without the name):
    a literal ``api_key`` is left out (it is sealed with the provider credentials);
    references stay ``env:NAME``."""
    out = {k: v for k, v in spec.items() if k != "name"}
    key = out.get("api_key")
    if isinstance(key, str) and not ENV_REF.match(key):
        out.pop("api_key")
    return out


def shown_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A stored provider's spec for audit entries and API answers: header values hidden."""
    out = dict(spec)
    headers = out.get("headers")
    if isinstance(headers, Mapping):
        out["headers"] = dict.fromkeys(headers, HIDDEN)
    return out


def model_spec(model: ModelConfig) -> dict[str, Any]:
    """What is stored of a model: its fields as written in the file, defaults left out."""
    return model.model_dump(mode="json", exclude_defaults=True)
