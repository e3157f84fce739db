"""How an answer is kept in a store: one versioned, checked byte string.

Layout (version 1)::

    b"SLC1" | checksum (8 bytes, BLAKE2b of the rest) | header length (4 bytes, big endian)
    | header (JSON) | payload

The header says what the payload is (``kind``: ``json``, a complete answer; ``sse``, a
stream's events, their lengths in ``parts``), the usage and cost of the answer when it was
made, when it was stored, and for OpenAI streams the usage chunk sent on replay when the
client asks for one. Anything that does not decode (another version, a checksum mismatch, a
cut entry) raises :class:`CorruptEntry`: the cache drops it and counts it, never returns it.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import orjson

from sluice.types import Usage

MAGIC = b"SLC1"
_LEN = struct.Struct(">I")
_SUM = 8
_HEAD = len(MAGIC) + _SUM + _LEN.size


class CorruptEntry(ValueError):
    """The bytes are not an entry this version can read."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A stored answer, decoded."""

    kind: str
    """``json`` (``body`` is the answer) or ``sse`` (``parts`` are the events in order)."""
    body: bytes
    parts: tuple[bytes, ...]
    usage: Usage
    cost_micros: int
    """What the answer cost when it was made (what a hit saves)."""
    stored_at: float
    usage_chunk: bytes | None = None
    """OpenAI streams: the ``data: {...}`` usage chunk, sent when the client asks for it."""
    done: bool = False
    """OpenAI streams: end with ``data: [DONE]``."""


def encode(answer: Answer) -> bytes:
    u = answer.usage
    header: dict[str, object] = {
        "kind": answer.kind,
        "usage": [
            u.prompt_tokens,
            u.completion_tokens,
            u.cached_tokens,
            u.cache_write_tokens,
            u.estimated,
        ],
        "cost": answer.cost_micros,
        "at": answer.stored_at,
        "done": answer.done,
    }
    if answer.kind == "sse":
        header["parts"] = [len(p) for p in answer.parts]
        payload = b"".join(answer.parts)
    else:
        payload = answer.body
    if answer.usage_chunk is not None:
        header["uc"] = answer.usage_chunk.decode()
    head = orjson.dumps(header)
    rest = _LEN.pack(len(head)) + head + payload
    return MAGIC + hashlib.blake2b(rest, digest_size=_SUM).digest() + rest


def decode(data: bytes) -> Answer:
    """The answer in ``data``; raises :class:`CorruptEntry` when it is not one."""
    if len(data) < _HEAD or not data.startswith(MAGIC):
        raise CorruptEntry("not a version-1 entry")
    rest = data[len(MAGIC) + _SUM :]
    if hashlib.blake2b(rest, digest_size=_SUM).digest() != data[len(MAGIC) : len(MAGIC) + _SUM]:
        raise CorruptEntry("checksum mismatch")
    (size,) = _LEN.unpack_from(rest)
    try:
        header = orjson.loads(rest[_LEN.size : _LEN.size + size])
        payload = rest[_LEN.size + size :]
        prompt, completion, cached, written, estimated = header["usage"]
        usage = Usage(prompt, completion, cached, written, estimated=bool(estimated))
        kind = header["kind"]
        parts: tuple[bytes, ...] = ()
        if kind == "sse":
            at = 0
            pieces = []
            for n in header["parts"]:
                pieces.append(payload[at : at + n])
                at += n
            if at != len(payload):
                raise CorruptEntry("stream parts do not add up")
            parts = tuple(pieces)
            payload = b""
        elif kind != "json":
            raise CorruptEntry(f"unknown kind {kind!r}")
        chunk = header.get("uc")
        return Answer(
            kind=kind,
            body=payload,
            parts=parts,
            usage=usage,
            cost_micros=int(header["cost"]),
            stored_at=float(header["at"]),
            usage_chunk=chunk.encode() if isinstance(chunk, str) else None,
            done=bool(header.get("done")),
        )
    except CorruptEntry:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CorruptEntry(f"unreadable header ({type(exc).__name__})") from exc
