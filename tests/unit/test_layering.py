"""The core never names a provider; adapters live in providers/ only."""

from __future__ import annotations

import re
from pathlib import Path

from sluice.providers.registry import PROVIDER_TYPES

SRC = Path(__file__).resolve().parents[2] / "src" / "sluice"
CORE = ["pipeline", "routing", "api", "auth", "storage", "usage"]
EXTRA_NAMES = ["anthropic", "gemini", "vertex", "bedrock", "cohere", "litellm"]


def test_core_never_names_a_provider() -> None:
    # "OpenAI" names the wire format every client speaks, which is the gateway's own; the
    # provider rows are checked by their other names and the native providers below.
    names = [n for n in PROVIDER_TYPES if n not in ("mock", "openai")] + EXTRA_NAMES
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b", re.IGNORECASE)
    offenders = []
    for folder in CORE:
        for path in (SRC / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert offenders == []


def test_only_the_composition_root_imports_concrete_backends() -> None:
    concrete = re.compile(
        r"^\s*(from|import) sluice\.storage\.sql"
        r"|^\s*(from|import) sluice\.providers\.(openai_compat|mock)"
    )
    allowed = {"app.py", "lifespan.py", "cli.py"}
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if rel.parts[0] in ("storage", "providers") or str(rel) in allowed:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if concrete.search(line):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert offenders == []
