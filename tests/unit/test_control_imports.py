"""The admin API and the console share the control plane's services, not each other's code:
neither imports the lifespan or the runtime, the console imports no admin handler, and only
the composition root imports the lifespan."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "sluice"


def _imports(path: Path) -> set[str]:
    """Every module a file imports (at top level, in functions and under TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def _offenders(folder: str, banned: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path.relative_to(SRC)}: {name}"
        for path in (SRC / folder).rglob("*.py")
        for name in _imports(path)
        if name.startswith(banned)
    )


def test_the_admin_api_and_the_console_reach_no_resources_or_each_other() -> None:
    resources = ("sluice.lifespan", "sluice.runtime", "sluice.wiring", "sluice.background")
    assert _offenders("api/admin", (*resources, "sluice.console")) == []
    assert _offenders("console", (*resources, "sluice.api.admin")) == []


def test_only_the_composition_root_imports_the_lifespan() -> None:
    importers = sorted(
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if any(name.startswith("sluice.lifespan") for name in _imports(path))
    )
    assert importers == ["app.py"]
