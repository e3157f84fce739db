"""House rules of DESIGN.md §4 besides the import direction (``test_layering.py``): modules
stay small, and the core never names a provider (providers come from the registry table)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from sluice.providers.registry import PROVIDER_TYPES

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "sluice"
MAX_LINES = 800

PROVIDER_NAMES = frozenset(PROVIDER_TYPES) | {"litellm"}  # a peer gateway: nothing to branch on
"""The registry's type names: a string or an identifier naming one is a provider special case."""

# Where the core may name a provider: (module path under src/sluice, the string containing
# the name). The test fails when an entry no longer matches, so the list can only shrink.
ALLOWED_MENTIONS: frozenset[tuple[str, str]] = frozenset(
    {
        # the CLI command serving the mock upstream out of process (DESIGN.md §6), and what
        # it prints
        ("cli.py", "mock-upstream"),
        ("cli.py", "mock upstream on http://"),
        # the wire formats clients speak, in the CLI's help
        ("cli.py", "OpenAI- and Anthropic-compatible"),
        # the start banner's hint: the SDK clients use, and the package it comes in
        ("cli.py", "SDK:  OpenAI(base_url="),
        ("cli.py", "(Python: pip install openai)"),
    }
)

_TOKEN = re.compile(r"[a-z0-9_]+")


def _prose(tree: ast.AST) -> set[int]:
    """Docstrings, also attribute docstrings: every string that is a statement of its own."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def _identifier(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.arg | ast.keyword):
        return node.arg
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name
    if isinstance(node, ast.alias):
        return node.asname or node.name
    return None


def _mentions(path: Path) -> list[tuple[int, str, str]]:
    """``(line, what, the names)`` for each string or identifier naming a provider."""
    tree = ast.parse(path.read_text(), str(path))
    prose = _prose(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in prose:
                names = PROVIDER_NAMES & set(_TOKEN.findall(node.value.lower()))
                if names:
                    found.append((node.lineno, node.value, ", ".join(sorted(names))))
            continue
        ident = _identifier(node)
        if ident is not None and ident.lower() in PROVIDER_NAMES:
            found.append((getattr(node, "lineno", 0), ident, ident.lower()))
    return found


SCHEMA_MODULES = frozenset({"config/providers.py"})
"""The YAML schema of each provider family, one model per value of the registry's ``config``
column: naming the families is what it is for (nothing branches on them)."""


def _core() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if p.relative_to(PACKAGE).parts[0] != "providers"
        and p.relative_to(PACKAGE).as_posix() not in SCHEMA_MODULES
    )


def test_no_module_is_over_800_lines() -> None:
    sizes = {p: len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    assert len(sizes) > 200
    over = sorted(f"{p.relative_to(SRC)}: {n}" for p, n in sizes.items() if n > MAX_LINES)
    assert over == []


def test_the_core_never_names_a_provider() -> None:
    """No provider name in a string or an identifier outside ``providers/``: nothing there
    can branch on a provider. Docstrings are prose and not checked."""
    offenders = []
    used = set()
    for path in _core():
        rel = path.relative_to(PACKAGE).as_posix()
        for line, text, names in _mentions(path):
            allowed = {(f, s) for f, s in ALLOWED_MENTIONS if f == rel and s in text}
            used |= allowed
            if not allowed:
                offenders.append(f"{rel}:{line}: {names} in {text[:80]!r}")
    assert offenders == []
    assert used >= ALLOWED_MENTIONS, f"delete from ALLOWED_MENTIONS: {ALLOWED_MENTIONS - used}"


def test_the_name_check_sees_strings_and_identifiers(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        '"""Docstrings may say bedrock."""\n'
        'LIMIT = 3\n"""Attribute docstrings too: vertex."""\n'
        "def f(bedrock):\n"
        '    if kind == "mock":\n'
        "        return cfg.gemini\n"
        '    return "x-azure-region"\n'
    )
    assert sorted((line, names) for line, _, names in _mentions(probe)) == [
        (4, "bedrock"),
        (5, "mock"),
        (6, "gemini"),
        (7, "azure"),
    ]
