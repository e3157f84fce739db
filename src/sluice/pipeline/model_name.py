"""One rule for an answer's ``model`` field: it names the model (or alias) the caller asked
for, whichever deployment served it and whatever the provider called it (a dated snapshot, a
deployment name). The upstream model is in the ``x-sluice-deployment`` header and the usage
row's ``upstream_model``.

Applied in one place, where an attempt's answer goes to the client
(:mod:`sluice.pipeline.attempt`), to native and translated answers alike:

- a JSON answer is parsed and its top-level ``model`` set (the providers' answers are
  parsed once already for their usage; this adds one parse and, when the name differs, one
  serialisation);
- a stream is rewritten in its bytes, never parsed: a piece without ``"model"`` (most events
  of Anthropic and Responses streams) is relayed as it is after one substring search, and in
  a piece that has it, the first ``"model"`` key of each ``data:`` line gets the public name
  (OpenAI chunks carry it at their top level, an Anthropic ``message_start`` in its message,
  a Responses ``response.*`` event in its response, each before any caller-written object).
  A ``"model"`` inside a JSON string is escaped (``\\"model\\"``) and never matches.
"""

from __future__ import annotations

import re

import orjson

_KEY = b'"model"'
_FIRST_PER_LINE = re.compile(rb'(data:[^\n]*?[{,][ \t]*"model"[ \t]*:[ \t]*)"(?:[^"\\\n]|\\.)*"')


class ModelNamer:
    """Puts the public model name in one request's answer (JSON or stream pieces)."""

    __slots__ = ("_public", "_template")

    def __init__(self, public: str) -> None:
        self._public = public
        quoted = orjson.dumps(public)
        self._template = rb"\g<1>" + quoted.replace(b"\\", b"\\\\")

    def json(self, body: bytes) -> bytes:
        """A JSON answer with its top-level ``model`` (if any) naming the public model."""
        if _KEY not in body:
            return body
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
        """A piece of an SSE stream (whole events) with each event's ``model`` renamed."""
        if _KEY not in piece:
            return piece
        return _FIRST_PER_LINE.sub(self._template, piece)
