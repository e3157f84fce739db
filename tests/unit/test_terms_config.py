"""``auth.terms``: inline text or a file beside the config, located errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sluice.config.loader import ConfigError, load_config, parse_config


def test_no_terms_by_default() -> None:
    assert parse_config("{}", source="c.yaml").auth.terms is None


def test_inline_text() -> None:
    config = parse_config(
        "auth:\n  terms:\n    version: '2026-12'\n    text: \"# Rules\\n\\nBe kind.\"\n",
        source="c.yaml",
    )
    terms = config.auth.terms
    assert terms is not None
    assert (terms.version, terms.exempt_admins, terms.body) == (
        "2026-12",
        True,
        "# Rules\n\nBe kind.",
    )


def test_a_file_is_read_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "legal").mkdir()
    (tmp_path / "legal" / "terms.md").write_text("# Terms\n\nNo abuse.\n", encoding="utf-8")
    config_file = tmp_path / "sluice.yaml"
    config_file.write_text(
        "auth:\n  terms:\n    version: v2\n    file: legal/terms.md\n    exempt_admins: false\n"
    )
    terms = load_config(config_file).auth.terms
    assert terms is not None
    assert terms.file == str(tmp_path / "legal" / "terms.md")
    assert terms.body == "# Terms\n\nNo abuse.\n"
    assert terms.exempt_admins is False


@pytest.mark.parametrize(
    ("block", "line", "path", "message"),
    [
        ("    version: v1\n    text: t\n    colour: red\n", 6, "auth.terms.colour", "unknown key"),
        ("    version: v1\n", 3, "auth.terms", "exactly one of file"),
        ("    version: v1\n    text: t\n    file: t.md\n", 3, "auth.terms", "exactly one of"),
        ("    version: v1\n    file: missing.md\n", 5, "auth.terms.file", "cannot read"),
        ("    version: 'has space'\n    text: t\n", 4, "auth.terms.version", "pattern"),
        ("    version: v1\n    file: empty.md\n", 5, "auth.terms.file", "is empty"),
    ],
)
def test_config_errors_name_file_and_line(
    tmp_path: Path, block: str, line: int, path: str, message: str
) -> None:
    (tmp_path / "empty.md").write_text("  \n", encoding="utf-8")
    (tmp_path / "t.md").write_text("terms", encoding="utf-8")
    config_file = tmp_path / "sluice.yaml"
    config_file.write_text("# terms\nauth:\n  terms:\n" + block)
    with pytest.raises(ConfigError) as caught:
        load_config(config_file)
    problem = caught.value.problems[0]
    assert problem.file == str(config_file)
    assert problem.path == path
    assert message in problem.message
    assert str(caught.value).startswith(f"{config_file}:{line}: {path}: ")


def test_the_documented_example_parses(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "terms.md"
    block = re.search(r"```yaml\n(auth:\n.*?)```", docs.read_text(), re.S)
    assert block is not None
    (tmp_path / "legal").mkdir()
    (tmp_path / "legal" / "terms.md").write_text("# Acceptable use\n", encoding="utf-8")
    config = parse_config(block.group(1), source=str(tmp_path / "sluice.yaml"))
    assert config.auth.terms is not None and config.auth.terms.version == "2026-12"
    assert config.auth.terms.body == "# Acceptable use\n"
