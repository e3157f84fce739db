"""What the mock upstream's native wire formats share: the answer plan, stream pacing and
request checks. Each format renders the same :func:`~sluice.providers.mock.script.plan_answer`
so a script behaves the same whatever format the adapter speaks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sluice.providers.mock import embed
from sluice.providers.mock import script as s
from sluice.providers.mock.reply import HOLD_S, CutStream

split_text = s._split
"""The OpenAI format's chunking, so every format streams the same pieces."""

MOCK_TOOL_ARGS_CHUNKS = 4


class WireError(ValueError):
    """The request breaks the format's rules: answered 400 in the format's envelope."""


@dataclass(frozen=True, slots=True)
class Request:
    """One native request routed to a format."""

    op: str
    """The format's operation (``chat``, ``stream``, ``embed``, ...)."""
    model: str
    """The model named in the path or body: the script."""
    body: dict[str, Any]
    headers: Mapping[str, str]
    rid: str


def plan(script: s.MockScript, view: dict[str, Any]) -> s.Answer:
    """The answer for an OpenAI-shaped view of the native request."""
    return s.plan_answer(script, view)


def vectors(script: s.MockScript, texts: list[str], dim: int | None) -> tuple[list[Any], int]:
    """Embeddings and the token count, as the OpenAI format computes them."""
    if dim is not None:
        script = replace(script, dim=dim)
    out = embed.embeddings(replace(script, usage=True), {"input": texts})
    return [d["embedding"] for d in out["data"]], int(out["usage"]["prompt_tokens"])


def token_count(text: str) -> int:
    return max(1, len(text) // 4)


async def paced(
    script: s.MockScript,
    head: list[bytes],
    body: list[bytes],
    tail: list[bytes],
    *,
    malformed: bytes,
) -> AsyncIterator[bytes]:
    """Frames with the script's delays, cut, stall and malformed frame applied to the
    content frames (``body``)."""
    if script.first_delay_s:
        await asyncio.sleep(script.first_delay_s)
    if script.one_write:  # one write: a malformed frame arrives in the read of valid ones
        frames = [malformed if script.malformed == i else f for i, f in enumerate(body)]
        yield b"".join([*head, *frames, *tail])
        return
    if head:
        yield b"".join(head)
    delay = script.chunk_delay_ms / 1000
    for i, frame in enumerate(body):
        if i and delay:
            await asyncio.sleep(delay)
        if script.cut is not None and i >= script.cut:
            raise CutStream
        if script.stall is not None and i >= script.stall:
            await asyncio.sleep(HOLD_S)
        yield malformed if script.malformed == i else frame
    if tail:
        yield b"".join(tail)


async def first_delay(script: s.MockScript) -> None:
    """The wait before a non-streaming answer (streams wait in :func:`paced`)."""
    if script.first_delay_s:
        await asyncio.sleep(script.first_delay_s)


def pieces(text: str, script: s.MockScript) -> list[str]:
    return split_text(text, script.chunks) if text else []


def arg_pieces(args: str) -> list[str]:
    """Tool-call arguments streamed in a few fragments."""
    size = max(1, -(-len(args) // MOCK_TOOL_ARGS_CHUNKS))
    return [args[i : i + size] for i in range(0, len(args), size)]


def require(condition: bool, message: str) -> None:
    if not condition:
        raise WireError(message)


def tool_view(name: str, parameters: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": parameters}}
