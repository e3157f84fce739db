"""Checks of a batch input file, line by line (``sluice.batches.validate``)."""

from __future__ import annotations

import orjson
import pytest

from sluice.auth.principal import Principal
from sluice.batches.validate import MAX_REPORTED, InvalidInput, parse_lines
from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.pipeline.dialects.openai import OpenAIDialect
from sluice.types import Endpoint

WHO = Principal(key_id="k", name="k")


def _resolve(model: str, principal: Principal) -> None:
    if model != "m":
        raise GatewayError(ErrorKind.CALLER_NOT_FOUND, f"no model {model!r}", param="model")


def _line(custom_id: str, **body: object) -> bytes:
    full = {"model": "m", "messages": [{"role": "user", "content": "x"}], **body}
    item = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": full}
    return orjson.dumps(item)


def _parse(data: bytes, *, max_lines: int = 100, max_line_bytes: int = 10_000) -> list[object]:
    return list(
        parse_lines(
            data,
            endpoint="/v1/chat/completions",
            dialect=OpenAIDialect(Endpoint.CHAT),
            principal=WHO,
            resolve=_resolve,
            max_lines=max_lines,
            max_line_bytes=max_line_bytes,
        )
    )


def test_lines_keep_their_numbers_across_blank_lines() -> None:
    lines = _parse(b"\n".join([_line("a"), b"", b"  ", _line("b"), b""]))
    assert [(x.line, x.custom_id) for x in lines] == [(1, "a"), (4, "b")]  # type: ignore[attr-defined]
    assert orjson.loads(lines[1].body)["model"] == "m"  # type: ignore[attr-defined]


def test_problems_past_the_reported_ones_are_counted() -> None:
    data = b"\n".join(b"[1]" for _ in range(MAX_REPORTED + 3))
    with pytest.raises(InvalidInput) as caught:
        _parse(data)
    message = caught.value.message
    assert message.count("not a JSON object") == MAX_REPORTED
    assert message.endswith("; and 3 more")
    assert caught.value.status == 400


def test_bounds_on_lines_and_their_size() -> None:
    with pytest.raises(BadRequest, match="more than 2 lines"):
        _parse(b"\n".join([_line("a"), _line("b"), _line("c")]), max_lines=2)
    with pytest.raises(InvalidInput, match=r"line 1: longer than 50 bytes"):
        _parse(_line("a"), max_line_bytes=50)
    with pytest.raises(InvalidInput, match="custom_id is longer than 512"):
        _parse(_line("x" * 513))
    with pytest.raises(InvalidInput, match=r"line 1 \(custom_id 'a'\): unknown field 'extra'"):
        _parse(orjson.dumps({**orjson.loads(_line("a")), "extra": 1}))
    with pytest.raises(InvalidInput, match=r"no model 'z' \(model\)"):
        _parse(_line("a", model="z"))
