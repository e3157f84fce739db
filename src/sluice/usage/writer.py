"""The batched usage writer: requests append events; one background task writes them."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from sluice.clock import Clock, SystemClock
from sluice.outage import describe
from sluice.storage.base import KeyRepository, UsageRepository
from sluice.usage.bodies import BodyPolicy, BodyRepository, StoredBody
from sluice.usage.dead_letters import (
    DeadLetter,
    DeadLetterRepository,
    RowRejected,
    event_json,
    isolate,
)
from sluice.usage.event import UsageEvent
from sluice.usage.slices import in_slices

log = logging.getLogger("sluice.usage")

Observer = Callable[[list[UsageEvent]], None]
"""Sees every event once, a batch at a time, before the batch is written (metrics, the
access log, redaction of error text). Runs on the event loop: it must be quick and not
await; it may change the events (the row is written after it). Its exceptions are logged."""

TOUCH_INTERVAL_S = 5.0
"""A key's ``last_used_at`` is written when the key is first seen, then at most this often
(and at shutdown): one small write per flush is a noticeable share of a flush's cost."""

OBSERVE_SLICE = (10, 100)
"""Events handed to the observers per call (see :meth:`UsageWriter._notify`): 10 (~0.1 ms of
metrics and access-log work on the benchmark host) while the loop is nearly idle, 100 while it
is saturated (:func:`sluice.usage.slices.in_slices`)."""

BACKLOG_BATCHES = 4
"""Buffered rows beyond this many batches make the writer ask for its database threads to be
scheduled as ordinary threads (see ``sluice.storage.sql.engine.WorkerPriority``); back to
idle-time scheduling once the buffer is under one batch."""

RETRY_MAX_S = 10.0
"""While the database is unreachable, flushes are retried after the flush interval, doubled
after each failure up to this."""

MAX_BUFFERED = 200_000
"""Beyond this many unwritten rows (database down for long), the oldest are dropped and
counted in ``dropped``."""


class UsageWriter:
    """Buffers usage events and writes them in batches.

    :meth:`record` never awaits and never touches the database. :meth:`run` flushes every
    ``interval_s`` or when ``batch_size`` events are waiting. A batch the database refuses
    for its data is split until the refused rows are isolated; they go to the dead letters
    (``sluice.usage.dead_letters``) and the others are written. A database outage keeps the
    rows and retries with backoff (up to ``retry_max_s``), logging one warning when it starts
    and one line when it ends. :meth:`close` flushes what is left (call it at shutdown).
    """

    def __init__(
        self,
        usage: UsageRepository,
        keys: KeyRepository,
        *,
        interval_s: float = 0.5,
        batch_size: int = 500,
        bodies: tuple[BodyPolicy, BodyRepository] | None = None,
        clock: Clock | None = None,
        urgent: Callable[[bool], None] | None = None,
        dead_letters: DeadLetterRepository | None = None,
        retry_max_s: float = RETRY_MAX_S,
    ) -> None:
        """``bodies``: where logged request/response bodies go (body logging on).
        ``dead_letters``: where refused rows go (without it, or when it refuses them too,
        they are logged as JSON and counted in ``dropped``).
        ``clock`` paces the key last-use writes (:data:`TOUCH_INTERVAL_S`). ``urgent`` is
        told when a backlog builds up and when it is gone (see :data:`BACKLOG_BATCHES`)."""
        self._clock = clock or SystemClock()
        self._usage = usage
        self._keys = keys
        self._interval_s = interval_s
        self._batch_size = batch_size
        self._bodies = bodies
        self._buffer: deque[UsageEvent] = deque()
        self._fresh: list[UsageEvent] = []
        self._observers: list[Observer] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._last_used: dict[str, float] = {}  # not written yet
        self._touched: set[str] = set()
        self._touched_at = -TOUCH_INTERVAL_S
        self._urgent = urgent
        self._backlog = False
        self._dead = dead_letters
        self._retry_max_s = retry_max_s
        self._retry_s = interval_s
        self.down = False
        """The database was unreachable at the last attempt."""
        self.written = 0
        self.flush_errors = 0
        self.dropped = 0
        self.dead_lettered = 0

    def observe(self, observer: Observer) -> None:
        """Add an observer (see :data:`Observer`); they run in the order added."""
        self._observers.append(observer)

    def record(self, event: UsageEvent) -> None:
        buf = self._buffer
        buf.append(event)
        if self._observers:
            self._fresh.append(event)
        if len(buf) >= self._batch_size:
            self._wake.set()
            if not self._backlog and len(buf) > BACKLOG_BATCHES * self._batch_size:
                self._set_backlog(True)
            if len(buf) > MAX_BUFFERED:
                buf.popleft()
                self.dropped += 1

    def _set_backlog(self, on: bool) -> None:
        self._backlog = on
        if self._urgent is not None:
            try:
                self._urgent(on)
            except Exception:
                log.warning("could not change the database threads' scheduling", exc_info=True)

    @property
    def retry_delay_s(self) -> float:
        """The wait before the next attempt while the database is down."""
        return self._retry_s

    @property
    def pending(self) -> int:
        return len(self._buffer)

    async def run(self) -> None:
        """Flush forever; cancelled by the lifespan at shutdown (then :meth:`close`)."""
        while True:
            if self.down:  # a full buffer does not hurry a retry
                await asyncio.sleep(self._retry_s)
            else:
                try:
                    async with asyncio.timeout(self._interval_s):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            self._wake.clear()
            await self.flush()
            if self._backlog and not self.down and len(self._buffer) < self._batch_size:
                self._set_backlog(False)

    async def flush(self) -> int:
        """Write what is buffered now, ``batch_size`` rows per transaction; returns the rows
        taken out of the buffer (written or dead-lettered). Chunks keep each stall of the
        event loop (building the statement's parameters) short, so a big backlog does not
        show up in request latency."""
        async with self._lock:
            # Only rows the observers have seen are written (they mask error text): not the
            # ones recorded while _notify yields, and counting the oldest dropped meanwhile.
            todo, dropped = len(self._buffer), self.dropped
            await self._notify()
            todo -= self.dropped - dropped
            done = 0
            while done < todo:
                batch = [self._buffer[i] for i in range(min(self._batch_size, todo - done))]
                try:
                    written = await self._write(batch)
                except Exception as exc:
                    self._unreachable(exc)
                    break
                self._reachable()
                for _ in range(len(batch)):
                    self._buffer.popleft()
                done += len(batch)
                self.written += written
                await self._touch(batch)
                await self._store_bodies(batch)
            if not todo and self._last_used:
                await self._touch([])  # pending last-use times, once they are due
            return done

    async def _write(self, batch: list[UsageEvent]) -> int:
        """Store ``batch``: every row, or the rows the database accepts and the others in
        the dead letters. Returns the rows written; raises on an outage."""
        try:
            await self._usage.insert_many(batch)
            return len(batch)
        except RowRejected as exc:
            written, refused = await isolate(self._usage.insert_many, batch, str(exc))
        await self._dead_letter(refused)
        return len(written)

    async def _dead_letter(self, refused: list[tuple[UsageEvent, str]]) -> None:
        now = self._clock.now()
        letters = [DeadLetter(e.request_id, e.created_at, now, e, err) for e, err in refused]
        kept = self._dead is not None
        if self._dead is not None:
            try:
                await self._dead.add(letters)
            except RowRejected as exc:  # refused there too: the log line is all that is left
                log.error("could not keep %d dead letters (%s)", len(letters), exc)
                kept = False
        for d in letters:
            log.warning(
                "usage row %s refused by the database (%s); %s",
                d.request_id,
                d.error,
                "kept in the dead letters" if kept else f"dropped: {event_json(d.event)}",
            )
        if kept:
            self.dead_lettered += len(letters)
        else:
            self.dropped += len(letters)

    def _unreachable(self, exc: Exception) -> None:
        """A write failed for another reason than the rows: keep them, back off, and say
        so once (no traceback per retry)."""
        self.flush_errors += 1
        if self.down:
            self._retry_s = min(self._retry_s * 2, self._retry_max_s)
            return
        self.down = True
        self._retry_s = min(self._interval_s, self._retry_max_s)
        if not self._backlog:
            # Until a write succeeds the database threads run as ordinary threads: on a host
            # saturated by other processes, one starved at idle-time scheduling may be what
            # holds the database's write lock.
            self._set_backlog(True)
        log.warning(
            "usage database unreachable (%s); %d usage rows wait, retried until it is back",
            describe(exc),
            len(self._buffer),
        )

    def _reachable(self) -> None:
        if self.down:
            self.down = False
            self._retry_s = self._interval_s
            log.info(
                "usage database reachable again; writing the %d usage rows that waited",
                len(self._buffer),
            )

    async def _notify(self) -> None:
        """Hand the events recorded since the last flush to the observers, a slice at a
        time (:data:`OBSERVE_SLICE`), letting the loop serve requests in between (the
        observers cost ~13 µs per event; 50 at once held it ~0.65 ms)."""
        fresh = self._fresh
        if not fresh:
            return
        self._fresh = []
        async for chunk in in_slices(fresh, *OBSERVE_SLICE):
            for observer in self._observers:
                try:
                    observer(chunk)
                except Exception:
                    log.exception("a usage observer failed on %d events", len(chunk))

    async def _touch(self, batch: list[UsageEvent], *, force: bool = False) -> None:
        """Record the keys' last use: a key not seen before at once, the others every
        :data:`TOUCH_INTERVAL_S` (``force``: now)."""
        last_used = self._last_used
        fresh = False
        for e in batch:
            key = e.key_id
            if key is not None and key != "master":
                if e.created_at > last_used.get(key, 0.0):
                    last_used[key] = e.created_at
                fresh = fresh or key not in self._touched
        if not last_used:
            return
        now = self._clock.monotonic()
        if not (force or fresh or now - self._touched_at >= TOUCH_INTERVAL_S):
            return
        self._last_used = {}
        try:
            await self._keys.touch(last_used)
        except Exception as exc:
            self._unreachable(exc)
            for key, ts in last_used.items():  # retried with the next write
                self._last_used[key] = max(ts, self._last_used.get(key, 0.0))
            return
        self._reachable()
        self._touched.update(last_used)
        self._touched_at = now

    async def _store_bodies(self, batch: list[UsageEvent]) -> None:
        """Redact and store the captured bodies of a written batch. Best effort: a body
        that cannot be stored is logged and dropped (its usage row is written)."""
        captured = [e for e in batch if e.bodies is not None]
        if not captured or self._bodies is None:
            return
        policy, repo = self._bodies

        def render() -> list[StoredBody]:
            out = []
            for e in captured:
                assert e.bodies is not None
                out.append(
                    policy.render(
                        e.bodies,
                        request_id=e.request_id,
                        created_at=e.created_at,
                        org_id=e.org_id,
                        team_id=e.team_id,
                    )
                )
                e.bodies = None
            return out

        try:
            await repo.insert_many(await asyncio.to_thread(render))
        except Exception:
            log.warning("could not store %d logged bodies", len(captured), exc_info=True)

    async def close(self) -> None:
        # The last rows are written on ordinary threads: at idle-time scheduling, a host
        # saturated by other processes can starve the insert past the shutdown grace.
        if not self._backlog:
            self._set_backlog(True)
        for _ in range(3):
            await self.flush()
            if not self._buffer:
                break
        else:
            log.error("shutting down with %d usage rows unwritten", len(self._buffer))
        await self._touch([], force=True)
