"""Upstream URL rules: scheme, link-local and metadata addresses, resolved host names."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from pydantic import ValidationError

from sluice.config.mcp import McpServerConfig
from sluice.config.mcp_urls import RefusedUrl, check_url
from sluice.mcp.urls import check_connect


def server(url: str, **extra: Any) -> McpServerConfig:
    return McpServerConfig.model_validate(
        {"name": "up", "transport": "streamable_http", "url": url, **extra}
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/mcp", "scheme must be http or https"),
        ("file:///etc/passwd", "scheme must be http or https"),
        ("http:///mcp", "no host"),
        ("http://169.254.169.254/latest/meta-data", "cloud metadata address"),
        ("http://169.254.10.1/mcp", "link-local"),
        ("http://[fe80::1]/mcp", "link-local"),
        ("http://[fd00:ec2::254]/", "cloud metadata address"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata address"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata host"),
        ("http://example.com:notaport/", "not a valid URL"),
    ],
)
def test_refused_urls_are_config_errors_naming_the_reason(url: str, why: str) -> None:
    with pytest.raises(ValidationError) as err:
        server(url)
    assert why in str(err.value) and "url" in str(err.value)


def test_allow_private_admits_link_local_but_not_a_bad_scheme() -> None:
    assert server("http://169.254.169.254/", allow_private=True).url
    with pytest.raises(ValidationError):
        server("gopher://169.254.169.254/", allow_private=True)


def test_ordinary_urls_pass() -> None:
    for url in ("https://mcp.example.com/mcp", "http://127.0.0.1:8080/mcp", "http://10.0.0.5/"):
        assert check_url(url, allow_private=False)


async def test_a_name_resolving_to_metadata_is_refused_at_connect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    loop = asyncio.get_running_loop()

    async def resolve(host: str, port: Any, **_: Any) -> list[Any]:
        assert host == "innocent.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 0))]

    monkeypatch.setattr(loop, "getaddrinfo", resolve)
    with pytest.raises(RefusedUrl, match=r"resolves to 169\.254\.169\.254"):
        await check_connect("http://innocent.example/mcp", allow_private=False, timeout_s=1)
    await check_connect("http://innocent.example/mcp", allow_private=True, timeout_s=1)
