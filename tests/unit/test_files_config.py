"""The ``files`` section of the config: defaults, the S3 backend's settings, refusals, and
the documented example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sluice.config import ConfigError
from sluice.config.loader import parse_config

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_defaults_keep_files_locally_with_caps() -> None:
    files = parse_config("{}", source="t.yaml").files
    assert (files.backend, files.directory, files.s3) == ("local", None, None)
    assert files.max_file_bytes == 512 * 1024 * 1024
    assert files.quota_bytes == 10 * 1024**3 and files.default_expiry_s is None


def test_the_documented_example_parses_and_hides_its_secrets() -> None:
    [block] = re.findall(
        r"```yaml\n(files:\n.*?)```", (DOCS / "files-and-batches.md").read_text(), re.S
    )
    files = parse_config(block, source="files-and-batches.md").files
    assert files.backend == "s3" and files.s3 is not None
    assert files.s3.bucket == "sluice-files" and files.s3.prefix == "prod/files"
    assert files.s3.access_key_id is not None
    assert files.s3.access_key_id.env_name == "S3_ACCESS_KEY_ID"
    literal = parse_config(
        "files: {s3: {bucket: abc, secret_access_key: hunter2}}", source="t.yaml"
    ).files
    assert "hunter2" not in repr(literal)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("files: {backend: s3}", "files.s3: required"),
        ("files: {backend: ftp}", "files.backend"),
        ("files: {max_file_bytes: 0}", "files.max_file_bytes"),
        ("files: {default_expiry_s: 5}", "files.default_expiry_s"),
        ("files: {s3: {bucket: ab}}", "files.s3.bucket"),
        ("files: {s3: {bucket: abc, prefix: '../x y'}}", "files.s3.prefix"),
        ("files: {sizes: 1}", "files.sizes"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        parse_config(text, source="t.yaml")
