"""The core never names a provider; adapters live in providers/ only."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from sluice.providers.registry import PROVIDER_TYPES

SRC = Path(__file__).resolve().parents[2] / "src" / "sluice"
CORE = ["pipeline", "routing", "api", "auth", "storage", "usage"]
EXTRA_NAMES = ["anthropic", "gemini", "vertex", "bedrock", "cohere", "litellm"]


def _code_strings(tree: ast.AST) -> list[ast.Constant]:
    """String constants that are not docstrings."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
    ]


def test_core_never_names_a_provider() -> None:
    """No provider name as a value in the core: nothing there can branch on a provider.

    Prose may name wire formats (clients speak the OpenAI and Anthropic Messages formats), so
    docstrings and comments are not checked; string values and identifiers are.
    """
    names = {n.lower() for n in PROVIDER_TYPES if n != "mock"} | set(EXTRA_NAMES)
    word = re.compile(r"[a-z_]+")
    offenders = []
    for folder in CORE:
        for path in (SRC / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for const in _code_strings(tree):
                found = names & set(word.findall(const.value.lower()))
                if found - {"openai"} or const.value.lower() == "openai":
                    offenders.append(f"{path.relative_to(SRC)}:{const.lineno}: {const.value!r}")
            for node in ast.walk(tree):
                if isinstance(node, ast.Name | ast.Attribute):
                    ident = node.id if isinstance(node, ast.Name) else node.attr
                    if ident.lower() in names - {"openai"}:
                        offenders.append(f"{path.relative_to(SRC)}:{node.lineno}: {ident}")
    assert offenders == []


def test_only_the_composition_root_imports_concrete_backends() -> None:
    concrete = re.compile(
        r"^\s*(from|import) sluice\.storage\.sql"
        r"|^\s*(from|import) sluice\.providers\.(openai_compat|mock)"
    )
    allowed = {
        "app.py",
        "lifespan.py",
        "runtime.py",
        "wiring.py",
        "cli.py",
        "cli_tenancy.py",
        "cli_routing.py",
    }
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if rel.parts[0] in ("storage", "providers") or str(rel) in allowed:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if concrete.search(line):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert offenders == []
