"""The CLI goes through the services and prints for people (issue #21, point 5): the same
validation as the API, tables that fit 80 columns without cutting an id, ``--wide``,
``--json`` and ``--quiet``; the README's CLI synopsis is what ``--help`` says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli import app
from tests.integration.conftest import make_settings

README = Path(__file__).parents[2] / "README.md"


def _cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args), terminal_width=80)
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path)
    monkeypatch.setenv("SLUICE_DATABASE_URL", settings.resolved_database_url())
    monkeypatch.setenv("COLUMNS", "80")


def test_users_create_refuses_what_the_api_refuses(db: None) -> None:
    out = _cli("users", "create", "not-an-email", code=1)
    assert "email must be an email address" in out
    assert json.loads(_cli("users", "list", "--json")) == []


def test_tables_fit_80_columns_and_never_cut_an_id(db: None) -> None:
    team = _cli("teams", "create", _cli("orgs", "create", "acme", "-q").strip(), "lab", "-q")
    assert re.fullmatch(r"team_\w+\n", team)
    _cli("users", "create", "ada.lovelace.with.a.long.address@university.example.org", "-q")
    keys = [
        json.loads(_cli("keys", "create", "--name", f"key number {i}", "--json"))["id"]
        for i in range(3)
    ]
    for args in (("keys", "list"), ("users", "list"), ("teams", "list"), ("orgs", "list")):
        table = _cli(*args)
        assert max(len(line) for line in table.splitlines()) <= 80, table
        assert "…" not in table, table
    listed = _cli("keys", "list")
    for key_id in keys:
        assert key_id in listed
    assert "active" in listed and "preview" not in listed
    assert "acme/lab" in _cli("teams", "list")
    wide = _cli("keys", "list", "--wide")
    assert "preview" in wide and "last used at" in wide
    assert [k["id"] for k in json.loads(_cli("keys", "list", "--json"))] == keys


def _synopsis() -> list[str]:
    text = README.read_text()
    block = text.split("## CLI\n", 1)[1].split("```\n", 2)[1]
    return [line for line in block.splitlines() if line.startswith("sluice ")]


def _commands(line: str) -> list[tuple[list[str], list[str]]]:
    """``sluice g a ARGS | b ARGS`` → ``[(["g", "a"], its options), (["g", "b"], ...)]``."""
    groups = {g.name for g in app.registered_groups}
    words = line.split()[1:]
    group = [words[0]] if words[0] in groups else []
    parts, depth, current = [], 0, ""
    for char in " ".join(words[len(group) :]) + " | ":
        depth += {"[": 1, "]": -1}.get(char, 0)
        current += char
        if depth == 0 and current.endswith(" | "):
            parts.append(current[:-3].strip())
            current = ""
    return [([*group, p.split()[0]], re.findall(r"--[a-z-]+", p)) for p in parts if p]


def test_readme_synopsis_matches_help() -> None:
    seen: set[str] = set()
    for line in _synopsis():
        for path, options in _commands(line):
            help_text = _cli(*path, "--help")
            seen.add(" ".join(path))
            for option in options:
                assert option in help_text, (line, path, option)
    groups = [c.name for c in app.registered_groups]
    commands = [
        c.name or c.callback.__name__.replace("_", "-")
        for c in app.registered_commands
        if c.callback is not None
    ]
    for name in commands:
        assert name in seen, f"`sluice {name}` is missing from the README"
    for group in groups:
        assert any(s.startswith(f"{group} ") for s in seen), f"`sluice {group}` is missing"
