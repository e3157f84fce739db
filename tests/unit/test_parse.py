from __future__ import annotations

import orjson
import pytest

from sluice.errors import BadRequest
from sluice.pipeline.parse import provider_request
from sluice.types import Endpoint

MSG = [{"role": "user", "content": "hi"}]


def _req(endpoint: Endpoint, body: object) -> object:
    return provider_request(endpoint, orjson.dumps(body))


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": MSG}, "model"),
        ({"model": 3, "messages": MSG}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": "hi"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages[0].role"),
        (
            {"model": "m", "messages": [MSG[0], {"role": "user", "content": 5}]},
            "messages[1].content",
        ),
        ({"model": "m", "messages": MSG, "stream": "yes"}, "stream"),
        ({"model": "m", "messages": MSG, "max_tokens": 0}, "max_tokens"),
        ({"model": "m", "messages": MSG, "max_tokens": True}, "max_tokens"),
        ({"model": "m", "messages": MSG, "n": "2"}, "n"),
        ({"model": "m", "messages": MSG, "user": 7}, "user"),
        ({"model": "m", "messages": MSG, "tools": {}}, "tools"),
        ({"model": "m", "messages": MSG, "stream_options": []}, "stream_options"),
        (
            {"model": "m", "messages": MSG, "stream_options": {"include_usage": 1}},
            "stream_options.include_usage",
        ),
    ],
)
def test_chat_field_errors_name_the_field(body: object, param: str) -> None:
    with pytest.raises(BadRequest) as info:
        _req(Endpoint.CHAT, body)
    assert info.value.param == param
    assert info.value.status == 400
    assert param.split("[", maxsplit=1)[0].split(".", maxsplit=1)[0] in info.value.message


@pytest.mark.parametrize("raw", [b"", b"{", b"[1]", b"null", b'"x"'])
def test_body_must_be_a_json_object(raw: bytes) -> None:
    with pytest.raises(BadRequest) as info:
        provider_request(Endpoint.CHAT, raw)
    assert info.value.status == 400


def test_completions_and_embeddings_inputs() -> None:
    with pytest.raises(BadRequest, match="'prompt' is required"):
        _req(Endpoint.COMPLETIONS, {"model": "m"})
    with pytest.raises(BadRequest) as info:
        _req(Endpoint.COMPLETIONS, {"model": "m", "prompt": {"a": 1}})
    assert info.value.param == "prompt"
    assert _req(Endpoint.COMPLETIONS, {"model": "m", "prompt": [[1, 2], [3]]})
    with pytest.raises(BadRequest) as info:
        _req(Endpoint.EMBEDDINGS, {"model": "m", "input": ""})
    assert info.value.param == "input"
    with pytest.raises(BadRequest) as info:
        _req(Endpoint.EMBEDDINGS, {"model": "m", "input": "x", "stream": True})
    assert info.value.param == "stream"


def test_valid_request_keeps_raw_bytes_and_flags() -> None:
    raw = orjson.dumps(
        {
            "model": "m",
            "messages": MSG,
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "u1",
            "temperature": 0.2,
            "seed": 7,
        }
    )
    req = provider_request(Endpoint.CHAT, raw)
    assert req.raw is raw
    assert (req.model, req.stream, req.include_usage) == ("m", True, True)
    assert req.body["seed"] == 7
