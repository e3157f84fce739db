"""The answer's ``model`` rewritten in stream bytes: the first ``model`` key of each event,
never text that only looks like one."""

from __future__ import annotations

import orjson
import pytest

from sluice.pipeline.model_name import ModelNamer

NAMER = ModelNamer('pub"lic')  # a name that needs escaping in JSON


def _event(obj: dict[str, object]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _models(piece: bytes) -> list[object]:
    out = []
    for line in piece.split(b"\n"):
        if line.startswith(b"data: "):
            event = orjson.loads(line[6:])
            out.append(event.get("model") or event.get("message", {}).get("model"))
    return out


def test_each_event_of_a_piece_is_renamed() -> None:
    piece = b"".join(_event({"id": i, "model": f'up\\{i}"x', "choices": []}) for i in range(3))
    assert _models(NAMER.piece(piece)) == ['pub"lic'] * 3


def test_spaces_around_the_colon_and_nested_message() -> None:
    piece = (
        b'event: message_start\ndata: {"type": "message_start", "message": {"model" : "up"}}\n\n'
    )
    assert _models(NAMER.piece(piece)) == ['pub"lic']


@pytest.mark.parametrize(
    "text",
    ['say "model":"x"', '{"model":"x"}', "model", '\\", "model": "x'],
)
def test_text_that_looks_like_the_key_is_left_alone(text: str) -> None:
    piece = _event({"choices": [{"delta": {"content": text}}]})
    assert NAMER.piece(piece) == piece


def test_only_the_first_key_of_an_event_and_piece_without_it_untouched() -> None:
    event = {"response": {"model": "up", "metadata": {"model": "mine"}}}
    out = orjson.loads(NAMER.piece(_event(event))[6:])
    assert out == {"response": {"model": 'pub"lic', "metadata": {"model": "mine"}}}
    plain = b"event: ping\ndata: {}\n\n"
    assert NAMER.piece(plain) is plain
    same = _event({"model": 'pub"lic'})
    assert NAMER.piece(same) is same


def test_json_answer_top_level_only() -> None:
    body = orjson.dumps({"model": "up", "content": [{"input": {"model": "arg"}}]})
    assert orjson.loads(NAMER.json(body)) == {
        "model": 'pub"lic',
        "content": [{"input": {"model": "arg"}}],
    }
    listing = orjson.dumps([{"model": "x"}])
    assert NAMER.json(listing) == listing
