"""Dead letters: usage rows the database refused for what they hold.

The writer never lets such a row block the others: a refused batch is split until the
refused rows are isolated (:func:`isolate`); they are stored here with the database's error,
counted (``sluice_usage_dead_letters_total``) and listed to admins, who can replay them
(:func:`replay`: the row is made to fit by the current rules and inserted again) or delete
them. A database outage is not a refusal: those rows wait in the writer's buffer.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

from sluice.usage.bounds import bound
from sluice.usage.event import UsageEvent

ERROR_CHARS = 2000
"""The stored database error is cut to this length."""

_FIELDS = tuple(f.name for f in fields(UsageEvent) if f.name != "bodies")


class RowRejected(Exception):
    """The database refused a batch for the data in it (a value too long, out of range, a
    constraint), not because it is unreachable. Raised by the usage repository; ``str()``
    is the database's message (no statement, no parameters)."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    request_id: str
    created_at: float
    """When the request was made (epoch seconds)."""
    failed_at: float
    """When the database refused the row (epoch seconds)."""
    event: UsageEvent
    error: str
    id: int | None = None
    """Set once stored."""


class DeadLetterRepository(Protocol):
    async def add(self, letters: Sequence[DeadLetter]) -> None:
        """Store ``letters`` in one transaction; raises :class:`RowRejected` when the
        database refuses them for what they hold (anything else is an outage)."""
        ...

    async def page(self, *, limit: int, before_id: int | None = None) -> list[DeadLetter]:
        """Newest first; only ids below ``before_id`` when given."""
        ...

    async def get(self, ids: Sequence[int]) -> list[DeadLetter]:
        """The stored letters among ``ids``, oldest first."""
        ...

    async def failed_again(self, letter_id: int, *, error: str, at: float) -> None:
        """Record that a replay was refused too."""
        ...

    async def delete(self, ids: Sequence[int]) -> int:
        """Delete the letters among ``ids``; returns how many there were."""
        ...

    async def count(self) -> int: ...


def event_json(e: UsageEvent) -> str:
    """The event as ASCII JSON (storable whatever its strings hold; bodies left out)."""
    return json.dumps({name: getattr(e, name) for name in _FIELDS}, ensure_ascii=True)


def event_from_json(raw: str) -> UsageEvent:
    data: dict[str, Any] = json.loads(raw)
    return UsageEvent(**{k: v for k, v in data.items() if k in _FIELDS})


Insert = Callable[[Sequence[UsageEvent]], Awaitable[None]]


async def isolate(
    insert: Insert, batch: Sequence[UsageEvent], error: str
) -> tuple[list[UsageEvent], list[tuple[UsageEvent, str]]]:
    """Write what can be written of ``batch``, which ``insert`` refused with ``error``:
    split it in halves, recursively, until the refused rows stand alone. Returns the
    written events and the refused ones with their error. Anything but
    :class:`RowRejected` (an outage) propagates; rows written so far stay written (a
    retried insert skips them)."""
    written: list[UsageEvent] = []
    refused: list[tuple[UsageEvent, str]] = []
    await _split(insert, list(batch), error, written, refused)
    return written, refused


async def _split(
    insert: Insert,
    part: list[UsageEvent],
    error: str,
    written: list[UsageEvent],
    refused: list[tuple[UsageEvent, str]],
) -> None:
    if len(part) == 1:
        refused.append((part[0], error))
        return
    mid = len(part) // 2
    for half in (part[:mid], part[mid:]):
        try:
            await insert(half)
        except RowRejected as exc:
            await _split(insert, half, str(exc), written, refused)
        else:
            written.extend(half)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    replayed: list[int]
    """Letters whose row is now stored (and which were deleted)."""
    refused: dict[int, str]
    """Letters refused again, with the new error (kept)."""
    missing: list[int]
    """Ids that name no letter."""


async def replay(
    insert: Insert, letters: DeadLetterRepository, ids: Sequence[int], *, now: float
) -> ReplayResult:
    """Insert the rows of the letters ``ids`` again, one transaction each, after making them
    fit by the current rules (:func:`sluice.usage.bounds.bound`). An outage propagates
    (letters not replayed yet are kept)."""
    found = await letters.get(ids)
    known = {letter.id for letter in found}
    replayed: list[int] = []
    refused: dict[int, str] = {}
    for letter in found:
        assert letter.id is not None
        try:
            await insert([bound(letter.event)])
        except RowRejected as exc:
            refused[letter.id] = str(exc)[:ERROR_CHARS]
            await letters.failed_again(letter.id, error=refused[letter.id], at=now)
            continue
        await letters.delete([letter.id])
        replayed.append(letter.id)
    return ReplayResult(replayed, refused, [i for i in ids if i not in known])
