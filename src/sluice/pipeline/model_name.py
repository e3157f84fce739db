"""One rule for an answer's ``model`` field: it names the model (or alias) the caller asked
for, whichever deployment served it and whatever the provider called it (a dated snapshot, a
deployment name). The upstream model is in the ``x-sluice-deployment`` header and the usage
row's ``upstream_model``.

Applied in one place, where an attempt's answer goes to the client
(:mod:`sluice.pipeline.relay`), to native and translated answers alike:

- a JSON answer whose only ``"model"`` key already names the public model is relayed as it
  is (one byte scan); any other is parsed and its top-level ``model`` set (one parse and,
  when the name differs, one serialisation);
- a stream is rewritten in its bytes, never parsed: a piece without ``"model"`` (most events
  of Anthropic and Responses streams) is relayed as it is after one substring search (about
  0.2 µs), and in a piece that has it (every OpenAI chunk) the first ``"model"`` key of each
  line gets the public name (about 1 µs a chunk, less than parsing it would cost)
  (OpenAI chunks carry it at their top level, an Anthropic ``message_start`` in its message,
  a Responses ``response.*`` event in its response, each before any caller-written object).
  A ``"model"`` inside a JSON string is escaped (``\\"model\\"``) and never matches.
"""

from __future__ import annotations

from functools import lru_cache

import orjson

_KEY = b'"model"'
_KEY_LEN = len(_KEY)
_SPACE = b" \t"
_COMPACT_TAIL = b':"'
_COMPACT_LEN = _KEY_LEN + len(_COMPACT_TAIL)


def _string_end(piece: bytes, start: int) -> int:
    """The index of the quote closing the JSON string whose content starts at ``start``."""
    end = piece.find(b'"', start)
    while end > 0:
        backslashes = 0
        while piece[end - 1 - backslashes] == 0x5C:  # an escaped quote is no end
            backslashes += 1
        if backslashes % 2 == 0:
            return end
        end = piece.find(b'"', end + 1)
    return -1


def _value_start(piece: bytes, key: int) -> int:
    """Where the string value of the ``"model"`` key found at ``key`` starts (after its
    opening quote), or -1 when that is no key with a string value."""
    before = key - 1
    while before >= 0 and piece[before] in _SPACE:
        before -= 1
    if before < 0 or piece[before] not in b"{,":
        return -1
    at = key + _KEY_LEN
    while at < len(piece) and piece[at] in _SPACE:
        at += 1
    if piece[at : at + 1] != b":":
        return -1
    at += 1
    while at < len(piece) and piece[at] in _SPACE:
        at += 1
    return at + 1 if piece[at : at + 1] == b'"' else -1


class ModelNamer:
    """Puts the public model name in one request's answer (JSON or stream pieces)."""

    __slots__ = ("_named", "_public", "_quoted")

    def __init__(self, public: str) -> None:
        self._public = public
        self._quoted = orjson.dumps(public)[1:-1]
        self._named = _KEY + _COMPACT_TAIL + self._quoted + b'"'

    def json(self, body: bytes) -> bytes:
        """A JSON answer with its top-level ``model`` (if any) naming the public model."""
        count = body.count(_KEY)
        if not count or (count == 1 and self._named in body):
            return body  # no model, or the only one names the public model already
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        if not isinstance(data, dict) or not isinstance(data.get("model"), str):
            return body
        if data["model"] == self._public:
            return body
        data["model"] = self._public
        return orjson.dumps(data)

    def piece(self, piece: bytes) -> bytes:
        """A piece of an SSE stream (whole events) with the first ``model`` key of each
        line renamed."""
        key = piece.find(_KEY)
        if key < 0:
            return piece
        quoted = self._quoted
        out: list[bytes] = []
        done = 0
        while key >= 0:
            start = key + _COMPACT_LEN  # the common layout, "model":"...", checked inline
            if (
                not key
                or piece[key + _KEY_LEN : start] != _COMPACT_TAIL
                or piece[key - 1] not in b"{,"
            ):
                start = _value_start(piece, key)
                if start < 0:
                    key = piece.find(_KEY, key + _KEY_LEN)
                    continue
            end = piece.find(b'"', start)
            if end > 0 and piece[end - 1] == 0x5C:
                end = _string_end(piece, start)
            if end < 0:
                break
            if piece[start:end] != quoted:
                out.append(piece[done:start])
                out.append(quoted)
                done = end
            line_end = piece.find(b"\n", end)
            key = -1 if line_end < 0 else piece.find(_KEY, line_end)
        if not out:
            return piece
        out.append(piece[done:])
        return b"".join(out)


@lru_cache(maxsize=1024)
def namer_for(public: str) -> ModelNamer:
    """The (immutable) namer of ``public``, built once per name: the names an admitted
    request may ask for are the model table's, so the cache stays small."""
    return ModelNamer(public)
