"""Load the YAML config and turn validation failures into located, readable errors."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sluice.config.model import REFERENCES_CHECKED, GatewayConfig
from sluice.config.providers import UNION_TAGS, accepted_by
from sluice.config.references import format_loc, reference_problems
from sluice.config.terms import CONFIG_DIR


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    file: str
    path: str
    """Dotted location in the document, e.g. ``models[0].deployments[1].provider``."""
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """The config file cannot be used; ``problems`` lists every error found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _line_index(text: str) -> dict[tuple[int | str, ...], int]:
    """Map each node path of the YAML document to its 1-based line."""
    index: dict[tuple[int | str, ...], int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return index

    def walk(node: yaml.Node, path: tuple[int | str, ...]) -> None:
        index[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, str(key.value))
                index[child] = key.start_mark.line + 1
                walk(value, child)
                index[child] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    if root is not None:
        walk(root, ())
    return index


def _nearest_line(
    index: dict[tuple[int | str, ...], int], loc: tuple[int | str, ...]
) -> int | None:
    for cut in range(len(loc), -1, -1):
        line = index.get(loc[:cut])
        if line is not None:
            return line
    return None


def _provider_loc(
    loc: tuple[int | str, ...], data: dict[str, Any]
) -> tuple[tuple[int | str, ...], str | None]:
    """A provider's errors carry its family's tag after its name (``providers.p.openai.x``);
    drop it, and say which type the provider has."""
    if len(loc) < 3 or loc[0] != "providers" or loc[2] not in UNION_TAGS:
        return loc, None
    entry = (data.get("providers") or {}).get(loc[1])
    kind = entry.get("type") if isinstance(entry, dict) else None
    return (*loc[:2], *loc[3:]), kind if isinstance(kind, str) else None


def _foreign(field: str, provider_type: str) -> str:
    families = accepted_by(field)
    where = f" ({field} is a field of {', '.join(families)} providers)" if families else ""
    return f" for provider type {provider_type!r}{where}"


def _yaml_problem(exc: yaml.YAMLError, source: str) -> ConfigProblem:
    """A YAML syntax error in the config's own words: what, and where in which file."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    what = ", ".join(p for p in parts if p) or "cannot be parsed"
    column = f" (column {mark.column + 1})" if mark is not None else ""
    return ConfigProblem(source, "", line, f"invalid YAML: {what}{column}")


def parse_config(text: str, *, source: str) -> GatewayConfig:
    """Validate config text; raise :class:`ConfigError` listing every problem: schema errors
    and cross-references (unknown providers, models, duplicate names) together, each at its
    own line and path."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc, source)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(source, "", 1, "the config must be a mapping")])
    index = _line_index(text)
    problems = [
        ConfigProblem(source, format_loc(loc), _nearest_line(index, loc), message)
        for loc, message in reference_problems(data)
    ]
    try:
        # Files the config names (``auth.terms.file``) are relative to the config file.
        context = {CONFIG_DIR: str(Path(source).parent), REFERENCES_CHECKED: True}
        config = GatewayConfig.model_validate(data, context=context)
    except ValidationError as exc:
        problems.extend(
            ConfigProblem(source, format_loc(loc), _nearest_line(index, loc), message)
            for loc, message in validation_problems(exc, data)
        )
        problems.sort(key=lambda p: p.line or 0)
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def validation_problems(
    exc: ValidationError, data: dict[str, Any]
) -> list[tuple[tuple[int | str, ...], str]]:
    """Each error of validating ``data`` (a config document, or a part of one placed where
    it sits in the file) as ``(location, readable message)``: the config file and the admin
    API word their errors alike through this."""
    problems: list[tuple[tuple[int | str, ...], str]] = []
    errors = exc.errors()
    located = [tuple(e["loc"]) for e in errors]
    for err in errors:
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        loc, provider_type = _provider_loc(loc, data)
        if err["type"] == "too_short" and any(
            other[: len(err["loc"])] == tuple(err["loc"]) and len(other) > len(err["loc"])
            for other in located
        ):
            continue  # only because an item inside failed; that error says why
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}" if loc else "unknown key"
            if provider_type is not None and len(loc) == 3:
                message += _foreign(str(loc[-1]), provider_type)
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        problems.append((loc, message))
    return problems


def load_config(path: Path) -> GatewayConfig:
    """Read and validate a config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), "", None, f"cannot read: {exc}")]) from None
    return parse_config(text, source=str(path))


DEFAULT_CONFIG_NAME = "default.yaml"


def default_config_text() -> str:
    return resources.files("sluice.config").joinpath(DEFAULT_CONFIG_NAME).read_text("utf-8")


def load_default_config() -> GatewayConfig:
    """The packaged demo config: mock models that answer with no internet."""
    return parse_config(default_config_text(), source=f"<sluice>/{DEFAULT_CONFIG_NAME}")
