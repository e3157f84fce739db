"""``sluice check-config`` finds everything in one run (issue #21, point 3): schema and
cross-reference errors together, each at its own file:line:path; the policy files the config
names; YAML errors naming the file; an empty config is a warning."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from sluice.cli import app

MANY = """\
providers:
  local: {type: openai_compatible, base_url: http://127.0.0.1:18000/v1}
  odd: {type: openai_compatible, base_url: ftp://x}
models:
  - name: a
    fallbacks: [nowhere]
    deployments:
      - {provider: missing, model: x, wieght: 2}
  - name: b
    aliases: [a]
    deployments:
      - {provider: local, model: y, weight: -1}
  - name: c
    content_policy_fallbacks: [b, gone]
    deployments:
      - {provider: elsewhere, model: z}
routing:
  retries: 99
  wildcards:
    - {prefix: "x/", provider: ghost}
cache:
  embedding_model: no-such-embedder
"""


def _run(path: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, ["check-config", str(path)])
    return result.exit_code, result.output.splitlines()


def test_every_schema_and_reference_error_in_one_run(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(MANY)
    code, lines = _run(path)
    assert code == 2
    expected = [
        f"error {path}:3: providers.odd.base_url: ",
        f"error {path}:6: models[0].fallbacks[0]: unknown model 'nowhere'",
        f"error {path}:8: models[0].deployments[0].provider: unknown provider 'missing'",
        f"error {path}:8: models[0].deployments[0].wieght: unknown key 'wieght'",
        f"error {path}:10: models[1].aliases[0]: 'a' is already used by model 'a'",
        f"error {path}:12: models[1].deployments[0].weight: ",
        f"error {path}:14: models[2].content_policy_fallbacks[1]: unknown model 'gone'",
        f"error {path}:16: models[2].deployments[0].provider: unknown provider 'elsewhere'",
        f"error {path}:18: routing.retries: ",
        f"error {path}:20: routing.wildcards[0].provider: unknown provider 'ghost'",
        f"error {path}:22: cache.embedding_model: unknown model 'no-such-embedder'",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)
    assert len(lines) == len(expected), lines
    assert not any("<root>" in line for line in lines)


def test_policy_files_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    missing = tmp_path / "nope.cedar"
    broken = tmp_path / "broken.cedar"
    broken.write_text("permit(principal, action, resource) when { nonsense ;\n")
    path.write_text(
        "providers:\n  m: {type: mock}\nmodels:\n  - name: a\n    deployments: "
        f"[{{provider: m, model: a}}]\nrouting:\n  policies: [{missing}, {broken}]\n"
    )
    code, lines = _run(path)
    assert code == 2
    text = "\n".join(lines)
    assert f"{missing}: no such file or directory" in text
    assert f"{broken}:1" in text


def test_yaml_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text("providers:\n  m: {type: mock\nmodels: []\n")
    code, lines = _run(path)
    assert code == 2
    [line] = lines
    assert line.startswith(f"error {path}:3: invalid YAML: ")
    assert "<unicode string>" not in line


def test_empty_config_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    code, lines = _run(path)
    assert code == 0
    assert any(line.startswith("warning ") and "no provider and no model" in line for line in lines)
