"""The provider conformance fixtures: the mock upstream in-process (every wire format) and one
``case`` parameter per adapter, so a new adapter adds a row here, not a test file."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from sluice.config.providers import Timeouts, validate_provider
from sluice.credentials.resolve import ProviderCredentials
from sluice.providers.base import Provider, UpstreamCall
from sluice.providers.build import build_provider
from sluice.types import Endpoint, ProviderRequest
from tests.mock_upstream import mock_upstream

UNSET = "SLUICE_TEST_UNSET_CREDENTIAL"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    """``sluice mock-upstream`` on a loopback port, in this event loop."""
    async with mock_upstream() as base:
        yield base


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def service_account(token_uri: str) -> dict[str, str]:
    """A real RSA service-account key (generated, never used outside tests)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": "sluice-test",
        "private_key_id": "test-key",
        "private_key": pem,
        "client_email": "gateway@sluice-test.iam.gserviceaccount.com",
        "token_uri": token_uri,
    }


@dataclass(frozen=True)
class Case:
    """One adapter under test and how to point it at the mock upstream."""

    name: str
    config: Callable[[str, Path], dict[str, Any]]
    model_prefix: str = ""
    """Vertex routes ``claude*`` models to the Anthropic publisher."""
    embeddings: str | None = None
    """The upstream model for embeddings, when the provider has them."""
    tool_choice_none: bool = True
    """``tool_choice: none`` is honoured (Converse has no such choice once tools were used)."""
    unset_credential: dict[str, Any] = field(default_factory=lambda: {"api_key": f"env:{UNSET}"})
    """Config keys that point the credential at an unset environment variable."""

    def build(self, root: str, tmp: Path) -> Provider:
        return build_provider(self.name, validate_provider(self.config(root, tmp)))

    def model(self, script: str) -> str:
        return self.model_prefix + script


def _vertex(root: str, tmp: Path) -> dict[str, Any]:
    path = tmp / "service-account.json"
    if not path.exists():
        path.write_text(json.dumps(service_account(root + "/token")))
    return {"type": "vertex", "base_url": root, "location": "us-east5", "credentials": str(path)}


CASES = [
    Case(
        "openai",
        lambda root, _: {"type": "openai_compatible", "base_url": root + "/v1", "api_key": "sk-t"},
        embeddings="embed",
        unset_credential={"type": "openai", "api_key": f"env:{UNSET}"},
    ),
    Case(
        "anthropic",
        lambda root, _: {"type": "anthropic", "base_url": root, "api_key": "sk-ant-t"},
    ),
    Case(
        "gemini",
        lambda root, _: {"type": "gemini", "base_url": root, "api_key": "gm-t"},
        embeddings="embed",
    ),
    Case("vertex", _vertex, embeddings="embed", unset_credential={"credentials": f"env:{UNSET}"}),
    Case(
        "vertex-claude",
        _vertex,
        model_prefix="claude-",
        unset_credential={"credentials": f"env:{UNSET}"},
    ),
    Case(
        "bedrock",
        lambda root, _: {
            "type": "bedrock",
            "base_url": root,
            "region": "eu-west-1",
            "access_key_id": "AKIDEXAMPLE",
            "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        },
        embeddings="amazon.titan-embed-text-v2:0",
        unset_credential={"secret_access_key": f"env:{UNSET}"},
        tool_choice_none=False,
    ),
    Case(
        "cohere",
        lambda root, _: {"type": "cohere", "base_url": root, "api_key": "co-t"},
        embeddings="embed-v4.0",
    ),
]


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


@dataclass
class Harness:
    """A built adapter plus helpers to call it the way the pipeline does."""

    case: Case
    provider: Provider
    session: aiohttp.ClientSession
    root: str
    tmp: Path
    timeouts: Timeouts = field(default_factory=Timeouts)

    def with_timeouts(self, **values: float) -> None:
        """Rebuild the adapter with these deadlines (config and call both carry them)."""
        self.timeouts = Timeouts.model_validate(values)
        config = {**self.case.config(self.root, self.tmp), "timeouts": values}
        self.provider = build_provider(self.case.name, validate_provider(config))

    def call(self, script: str, *, config: dict[str, Any] | None = None) -> UpstreamCall:
        """A call the way an attempt builds it: with the API key the core resolves for the
        case's config (or ``config``)."""
        built = validate_provider(config or self.case.config(self.root, self.tmp))
        return UpstreamCall(
            upstream_model=self.case.model(script),
            deployment=f"{self.case.name}/{script}",
            request_id="req_test",
            session=self.session,
            timeouts=self.timeouts,
            credential=ProviderCredentials({"p": built.api_key_ref}).get("p"),
        )


@pytest.fixture
def harness(case: Case, upstream: str, session: aiohttp.ClientSession, tmp_path: Path) -> Harness:
    return Harness(case, case.build(upstream, tmp_path), session, upstream, tmp_path)


def chat_request(
    body: dict[str, Any], *, stream: bool = False, include_usage: bool = False
) -> ProviderRequest:
    full = {"model": "public-model", **body}
    if stream:
        full["stream"] = True
    if include_usage:
        full["stream_options"] = {"include_usage": True}
    return ProviderRequest(
        Endpoint.CHAT, full, orjson.dumps(full), "public-model", stream, include_usage
    )


def sse_objects(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for event in raw.split(b"\n\n"):
        if event.startswith(b"data: "):
            out.append(orjson.loads(event[6:]))
    return out
