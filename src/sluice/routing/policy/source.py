"""Policy files → one validated Cedar policy set with named policies.

Each file is parsed and validated against the schema on its own, so every problem names
its file (and the line of the policy, found by splitting the file into statements). A
policy's id is its ``@id("...")`` annotation, else ``<file name>#<n>`` (n counts from 1).
Nothing is half-loaded: any problem in any file rejects the whole set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.routing.policy.schema import ROUTE, SCHEMA
from sluice.routing.policy.usage import may_apply, policy_actions

if TYPE_CHECKING:  # imported where it runs: a gateway without policies never loads it
    import cedarpy

SUFFIX = ".cedar"


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One reason a policy set was rejected."""

    file: str
    message: str
    line: int | None = None
    policy: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return (
            f"{where}: [{self.policy}] {self.message}"
            if self.policy
            else f"{where}: {self.message}"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "policy": self.policy,
            "message": self.message,
        }


class PolicyLoadError(Exception):
    """The policy files could not be loaded; ``problems`` says where and why."""

    def __init__(self, problems: Sequence[PolicyProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """One loaded policy, for listings and explanations."""

    id: str
    file: str
    line: int | None
    effect: str
    """``permit`` or ``forbid``."""
    actions: tuple[str, ...] | None
    """The actions its scope admits; ``None``: every action."""
    source: str

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "file": self.file,
            "line": self.line,
            "effect": self.effect,
            "actions": list(self.actions) if self.actions is not None else None,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class LoadedSet:
    policy_set: cedarpy.PolicySet
    policies: tuple[PolicyInfo, ...]
    est: tuple[dict[str, Any], ...]
    """Each policy's JSON form, in the order of ``policies``."""
    files: tuple[str, ...]


def policy_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[PolicyProblem]]:
    """Files named directly, plus the ``*.cedar`` files of named directories (sorted);
    a file reached twice is read once."""
    files: list[Path] = []
    problems: list[PolicyProblem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix == SUFFIX and p.is_file())
            if not found:
                problems.append(PolicyProblem(str(path), f"no {SUFFIX} files in this directory"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(PolicyProblem(str(path), "no such file or directory"))
    unique: dict[Path, Path] = {}
    for path in files:
        unique.setdefault(path.resolve(), path)
    return list(unique.values()), problems


def load(paths: Iterable[str | Path]) -> LoadedSet:
    """Read, parse and validate every policy file; raise :class:`PolicyLoadError`."""
    import cedarpy

    files, problems = policy_files(paths)
    schema = cedarpy.Schema.from_str(SCHEMA)
    infos: list[PolicyInfo] = []
    ests: list[dict[str, Any]] = []
    for path in files:
        parsed = _load_file(path, schema, problems)
        for info, est in parsed:
            infos.append(info)
            ests.append(est)
    seen: dict[str, PolicyInfo] = {}
    for info in infos:
        first = seen.setdefault(info.id, info)
        if first is not info:
            problems.append(
                PolicyProblem(
                    info.file,
                    f"duplicate policy id (also at {first.file}:{first.line})",
                    line=info.line,
                    policy=info.id,
                )
            )
    if not problems and not any(e["effect"] == "permit" and may_apply(e, ROUTE) for e in ests):
        problems.append(
            PolicyProblem(
                ", ".join(str(f) for f in files),
                'no policy permits Sluice::Action::"route", so every deployment would be '
                "forbidden; add the default permit (examples/policies/default.cedar)",
            )
        )
    if problems:
        raise PolicyLoadError(problems)
    document = {
        "staticPolicies": {info.id: est for info, est in zip(infos, ests, strict=True)},
        "templates": {},
        "templateLinks": [],
    }
    policy_set = cedarpy.PolicySet.from_json_str(json.dumps(document))
    return LoadedSet(policy_set, tuple(infos), tuple(ests), tuple(str(f) for f in files))


def _load_file(
    path: Path, schema: cedarpy.Schema, problems: list[PolicyProblem]
) -> list[tuple[PolicyInfo, dict[str, Any]]]:
    import cedarpy

    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(PolicyProblem(name, f"cannot read: {exc}"))
        return []
    statements = split_statements(text)
    try:
        document = json.loads(cedarpy.policies_to_json_str(text))
    except ValueError as exc:
        problems.append(PolicyProblem(name, f"syntax error: {exc}", line=_error_line(statements)))
        return []
    if document.get("templates"):
        problems.append(PolicyProblem(name, "templates (?principal, ?resource) are not supported"))
        return []
    static = document.get("staticPolicies", {})
    positional = sorted(static, key=lambda pid: int(pid.removeprefix("policy")))
    aligned = len(statements) == len(positional)
    parsed: list[tuple[PolicyInfo, dict[str, Any]]] = []
    ids: dict[str, str] = {}
    for n, pid in enumerate(positional):
        est = static[pid]
        policy_id = est.get("annotations", {}).get("id") or f"{path.name}#{n + 1}"
        ids[pid] = policy_id
        line, source = statements[n] if aligned else (None, "")
        actions = _actions(est)
        parsed.append((PolicyInfo(policy_id, name, line, est["effect"], actions, source), est))
    result = cedarpy.validate_policies(text, schema)
    for error in result.errors:
        index = positional.index(error.policy_id) if error.policy_id in ids else None
        problems.append(
            PolicyProblem(
                name,
                _rename(error.error, ids),
                line=parsed[index][0].line if index is not None else None,
                policy=ids.get(error.policy_id),
            )
        )
    return parsed


def _actions(est: dict[str, Any]) -> tuple[str, ...] | None:
    actions = policy_actions(est)
    return tuple(sorted(actions)) if actions is not None else None


_POSITIONAL = re.compile(r"`(policy\d+)`")


def _rename(message: str, ids: dict[str, str]) -> str:
    return _POSITIONAL.sub(lambda m: f"`{ids.get(m.group(1), m.group(1))}`", message)


def _error_line(statements: list[tuple[int, str]]) -> int | None:
    """The line of the first statement that does not parse on its own (best effort)."""
    import cedarpy

    for line, source in statements:
        try:
            cedarpy.policies_to_json_str(source)
        except ValueError:
            return line
    return None


def split_statements(text: str) -> list[tuple[int, str]]:
    """Split policy text at top-level ``;`` into (first line, source) pairs.

    Knows string literals and ``//`` comments, enough to find where each policy starts;
    Cedar's own parser stays the judge of what is valid.
    """
    statements: list[tuple[int, str]] = []
    line, start, start_line = 1, None, 0
    i, size = 0, len(text)
    while i < size:
        char = text[i]
        if char == "\n":
            line += 1
        elif char == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            i = size if end < 0 else end
            continue
        elif not char.isspace() and start is None:
            start, start_line = i, line
        if char == '"':
            i += 1
            while i < size and text[i] != '"':
                if text[i] == "\n":
                    line += 1
                i += 2 if text[i] == "\\" else 1
        elif char == ";" and start is not None:
            statements.append((start_line, text[start : i + 1]))
            start = None
        i += 1
    if start is not None:
        statements.append((start_line, text[start:]))
    return statements
