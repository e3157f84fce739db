"""The helpers every native adapter shares, the config fields they read, and the registry."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest

from sluice.config.providers import validate_provider
from sluice.errors import BadRequest, ErrorKind
from sluice.providers.build import build_provider
from sluice.providers.native.events import EventSplitter
from sluice.providers.native.io import ErrorMap
from sluice.providers.native.openai_in import parse_data_url, tool_choice
from sluice.providers.native.openai_out import ChunkWriter, embedding_list
from sluice.providers.registry import PROVIDER_TYPES
from sluice.types import Endpoint, Usage


def test_event_splitter_keeps_names_raw_bytes_and_partial_events() -> None:
    splitter = EventSplitter()
    assert splitter.feed(b'event: a\r\ndata: {"x"') == []
    assert splitter.pending
    events = splitter.feed(b": 1}\r\n\r\n: keep-alive\n\ndata: one\ndata: two\n\n")
    assert [(e.name, e.data) for e in events] == [
        ("a", b'{"x": 1}'),
        (None, b""),
        (None, b"one\ntwo"),
    ]
    assert events[0].raw == b'event: a\ndata: {"x": 1}\n\n'
    assert events[1].raw == b": keep-alive\n\n"
    assert not splitter.pending


def test_data_urls() -> None:
    parsed = parse_data_url("data:image/png;base64,iVBORw0KGgo=", param="p")
    assert parsed is not None and parsed.media_type == "image/png"
    assert parsed.raw().startswith(b"\x89PNG")
    assert parse_data_url("https://example.com/x.png", param="p") is None
    with pytest.raises(BadRequest) as info:
        parse_data_url("data:image/png,rawbytes", param="messages[0].content[1]")
    assert info.value.param == "messages[0].content[1]"
    with pytest.raises(BadRequest):
        parse_data_url("data:image/png;base64,***", param="p")


def test_tool_choice_validation() -> None:
    assert tool_choice({}) is None
    with pytest.raises(BadRequest) as info:
        tool_choice({"tool_choice": 3})
    assert info.value.param == "tool_choice"


def test_chunk_writer_counts_what_it_relays() -> None:
    writer = ChunkWriter(ident="x", model="m")
    out = (
        writer.role()
        + writer.text("Hello")
        + writer.tool_start(0, "c", "fn")
        + writer.tool_args(0, "{}")
    )
    assert writer.text("") == b"" and writer.tool_args(0, "") == b""
    assert writer.completion_chars == len("Hello") + len("fn") + len("{}")
    assert out.count(b"data: ") == 4
    usage = orjson.loads(writer.usage(Usage(3, 4, 1))[6:])
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 7


def test_embedding_list_base64_is_little_endian_float32() -> None:
    body = orjson.loads(
        embedding_list([[0.5, -1.0]], model="m", usage=Usage(3), encoding_format="base64")
    )
    packed = base64.b64decode(body["data"][0]["embedding"])
    assert struct.unpack("<2f", packed) == (0.5, -1.0)
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


def test_error_map_overrides_and_message_extraction() -> None:
    errors = ErrorMap(overrides={418: ErrorKind.PROVIDER_UNAVAILABLE})
    err = errors.error(418, b'{"message": "teapot busy"}', {"Retry-After": "4"})
    assert (err.kind, err.status, err.retry_after_s, err.message) == (
        ErrorKind.PROVIDER_UNAVAILABLE,
        502,
        4.0,
        "teapot busy",
    )
    plain = errors.error(404, b"<html>nope</html>", {})
    assert (plain.kind, plain.status) == (ErrorKind.PROVIDER_NOT_FOUND, 404)


NATIVE_CONFIGS = {
    "anthropic": {"type": "anthropic", "api_key": "k"},
    "gemini": {"type": "gemini", "api_key": "k"},
    "vertex": {"type": "vertex", "project": "p", "location": "global"},
    "bedrock": {"type": "bedrock", "region": "us-east-1"},
    "cohere": {"type": "cohere", "api_key": "k"},
}


@pytest.mark.parametrize("name", list(NATIVE_CONFIGS))
def test_every_native_row_builds_offline(name: str) -> None:
    assert name in PROVIDER_TYPES
    provider = build_provider(name, validate_provider(NATIVE_CONFIGS[name]))
    assert Endpoint.CHAT in provider.capabilities
    assert (Endpoint.MESSAGES in provider.capabilities) == (name == "anthropic")
    assert (Endpoint.EMBEDDINGS in provider.capabilities) == (name != "anthropic")


def test_new_credential_fields_never_show_their_values() -> None:
    config = validate_provider(
        {
            "type": "bedrock",
            "region": "eu-west-1",
            "access_key_id": "AKIDLITERAL",
            "secret_access_key": "top-secret-value",
            "session_token": "env:AWS_SESSION_TOKEN",
        }
    )
    shown = repr(config) + str(config.model_dump())
    assert "top-secret-value" not in shown and "AKIDLITERAL" not in shown
    vertex = validate_provider({"type": "vertex", "credentials": "env:GOOGLE_SA"})
    assert repr(vertex.credentials) == "SecretRef(env:GOOGLE_SA)"
    with pytest.raises(ValueError, match="unknown provider type"):
        validate_provider({"type": "bedrocks"})
