"""The batch worker inside ``sluice serve``: claims lines with leases in the database, runs
each through the pipeline (:mod:`sluice.batches.lines`) and writes its result once; ends a
batch (output and error files) when its lines are done, cancelled or expired.

Several processes share the work: a line belongs to whoever holds its lease, renewed while
it runs; a crashed process's leases expire and another process claims those lines again.
Concurrency is bounded per batch and per process, lower while live requests are in flight.
A line refused for budget pauses its batch (one line tries again after
``batches.budget_retry_s``); a rate-limit refusal pauses it for the ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from sluice.auth.principal import Principal
from sluice.batches import finish
from sluice.batches.delegate import Delegation
from sluice.batches.lines import Next, Verdict, error_line, run_line
from sluice.batches.model import ENDPOINTS
from sluice.clock import Clock
from sluice.config.batches import BatchesConfig
from sluice.errors import GatewayError
from sluice.files.base import FileAccess
from sluice.ids import random_hex
from sluice.outage import OutageLog
from sluice.pipeline.dialects.base import Dialect
from sluice.pipeline.services import Services
from sluice.storage.batches import (
    BatchControl,
    ClaimedLine,
    DelegationStore,
    LineRepository,
    StoredBatch,
)
from sluice.tasks import run_to_end, spawn_in
from sluice.types import Endpoint
from sluice.usage.event import UsageEvent

log = logging.getLogger("sluice.batches")

T = TypeVar("T")

ACTIVE_SCAN = 200
RELEASE_WAIT_S = 5.0
"""How long a stopping worker waits to give its leases back (a database that does not
answer must not hold the shutdown; the leases then expire after ``batches.lease_s``)."""
"""Batches looked at per pass (oldest first)."""


class Store(LineRepository, BatchControl, DelegationStore, Protocol):
    """The worker's side of the batches storage."""

    async def get(self, batch_id: str) -> StoredBatch | None: ...


class Observer(Protocol):
    """What the worker reports (the batch metrics)."""

    def line(self, outcome: str) -> None:
        """A line ended: ``completed``, ``failed``, or why it waits (``budget`` ...)."""
        ...

    def running(self, lines: int) -> None:
        """Lines running in this process now."""
        ...

    def ended(self, status: str) -> None:
        """A batch ended with this status."""
        ...

    def delegated(self, status: str) -> None:
        """A batch delegated to a provider's batch API reached ``submitted``, ``collected``
        or ``refused``."""
        ...


class BatchWorker:
    def __init__(
        self,
        svc: Services,
        store: Store,
        *,
        files: FileAccess,
        dialects: dict[Endpoint, Dialect],
        principal: Callable[[str], Principal | None],
        record: Callable[[UsageEvent], None],
        config: BatchesConfig,
        clock: Clock,
        live: Callable[[], int],
        accepting: Callable[[], bool] = lambda: True,
        observer: Observer | None = None,
        owner: str | None = None,
        urgent: Callable[[bool], None] | None = None,
    ) -> None:
        """``principal``: the principal of a key id as the key cache has it (``None``: the
        key is revoked, expired or unknown; raises 403 for unaccepted terms); ``live``: live
        requests in flight in this process; ``accepting``: whether new lines may start (not
        while the process drains); ``urgent``: turns the database's worker threads (SQLite)
        to ordinary scheduling, called when the process stops."""
        self._accepting = accepting
        self._urgent = urgent
        self._svc = svc
        self._store = store
        self._files = files
        self._dialects = dialects
        self._principal = principal
        self._record = record
        self._config = config
        self._clock = clock
        self._live = live
        self._observer = observer
        self.owner = owner or f"{socket.gethostname()[:40]}-{os.getpid()}-{random_hex(4)}"
        """This process's name on the leases it holds."""
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._stopped: asyncio.Event | None = None
        self._here: dict[str, int] = {}
        """Lines running in this process, by batch."""
        self._total = 0
        self._renewed = 0.0
        self._group: asyncio.TaskGroup | None = None
        self._delegation = Delegation(
            svc,
            store,
            db=self._db,
            dialects=dialects,
            principal=principal,
            record=record,
            config=config,
            clock=clock,
            owner=self.owner,
            observer=observer,
        )

    async def _db(self, coro: Coroutine[Any, Any, T]) -> T:
        """One database call at a time from this worker (SQLite has one writer: many
        concurrent small writes only queue on its lock), never cut by a cancellation."""
        try:
            await self._lock.acquire()
        except BaseException:
            coro.close()
            raise
        try:
            return await run_to_end(coro)
        finally:
            self._lock.release()

    def wake(self) -> None:
        """Look for work now (a batch was created or cancelled through this process)."""
        self._wake.set()

    @property
    def busy(self) -> int:
        """Lines running in this process."""
        return self._total

    async def run(self) -> None:
        """Work until :meth:`stop` (or cancelled); the lines running then are cancelled and
        given back (they run again later, here or in another process)."""
        outage = OutageLog(log, "batch worker", meanwhile="no batch line runs", clock=self._clock)
        self._stopped = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                try:
                    while not self._stopping:
                        try:
                            await self.tick()
                        except Exception as exc:
                            outage.failed(exc)
                        else:
                            outage.succeeded()
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(self._config.poll_interval_s):
                                await self._wake.wait()
                        self._wake.clear()
                finally:
                    self._stopping = True
                    self._cancel_lines()  # the group then waits for them to give back
        finally:
            self._group = None
            # Every line task has ended: what this process still leases was claimed and
            # never started; give it back.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(RELEASE_WAIT_S):  # else the leases expire
                    await self._db(self._store.release_all(self.owner))
            self._stopped.set()

    async def stop(self, *, timeout_s: float) -> None:
        """End :meth:`run`: no new line, the lines running cancelled and given back. Called
        by the lifespan before the other background work stops, so these last writes meet
        a database that every other task still uses normally; waits ``timeout_s`` at most."""
        self._stopping = True
        self._cancel_lines()
        self._wake.set()
        stopped = self._stopped
        if stopped is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await stopped.wait()

    def _cancel_lines(self) -> None:
        if self._urgent is not None:
            self._urgent(True)  # the last writes must not wait for idle CPU time
        for task in list(self._tasks):
            task.cancel()

    async def tick(self) -> None:
        """One pass: renew leases, then advance every batch not ended (claim lines, end
        those whose lines are done)."""
        now = self._clock.now()
        lease = self._config.lease_s
        if self._total and now - self._renewed >= lease / 3:
            await self._db(self._store.renew(self.owner, until=now + lease))
            self._renewed = now
        for batch in await self._db(self._store.active(limit=ACTIVE_SCAN)):
            if batch.endpoint in ENDPOINTS:
                await self._advance(batch, now)

    async def _advance(self, batch: StoredBatch, now: float) -> None:
        store = self._store
        if batch.status == "finalizing":
            await self._finalize(batch)  # taken over only when its lease expired
            return
        if batch.delegate is not None:
            await self._delegated(batch)
            return
        expired = batch.ending is None and now >= batch.expires_at
        if expired and await self._db(
            store.update(batch.id, where=("in_progress",), ending="expired")
        ):
            batch = replace(batch, ending="expired")
        if batch.ending is not None:  # cancelled or expired: no new line; in-flight ones end
            if not self._here.get(batch.id) and not await self._db(
                store.running(batch.id, now=now)
            ):
                await self._finalize(batch)
            return
        if batch.completed + batch.failed >= batch.total:
            await self._finalize(batch)
            return
        if batch.paused is not None and batch.resume_at is not None and now < batch.resume_at:
            return
        if self._stopping or not self._accepting():
            return
        here = self._here.get(batch.id, 0)
        room = min(self._config.concurrency_per_batch - here, self._bound() - self._total)
        if batch.paused is not None:
            room = min(room, 1 - here)  # one line tries whether the batch may go on
        if room <= 0:
            return
        lease = self._config.lease_s
        lines = await self._db(
            store.claim(batch.id, owner=self.owner, n=room, now=now, until=now + lease)
        )
        group = self._group
        for line in lines:
            self._here[batch.id] = self._here.get(batch.id, 0) + 1
            self._total += 1
            if group is None:  # tick() called on its own (tests): run the line here
                await self._line(batch, line)
            else:
                task = spawn_in(group, self._line(batch, line), name=f"batch-line {batch.id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        if self._observer is not None:
            self._observer.running(self._total)

    async def _delegated(self, batch: StoredBatch) -> None:
        """One step of a batch a provider's batch API runs, in its own task (an upstream
        call must not hold the other batches' pass)."""
        busy = self._delegation.busy
        if batch.id in busy:
            return
        busy.add(batch.id)
        group = self._group
        if group is None:  # tick() called on its own (tests)
            await self._delegation_step(batch)
            return
        task = spawn_in(group, self._delegation_step(batch), name=f"batch-upstream {batch.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _delegation_step(self, batch: StoredBatch) -> None:
        try:
            accepting = not self._stopping and self._accepting()
            if await self._delegation.advance(batch, accepting=accepting):
                fresh = await self._db(self._store.get(batch.id))
                if fresh is not None and fresh.status != "finalizing":
                    await self._finalize(fresh)
        except Exception:
            log.warning("batch %s: delegated step failed", batch.id, exc_info=True)
        finally:
            self._delegation.busy.discard(batch.id)

    def _bound(self) -> int:
        config = self._config
        return config.concurrency_under_load if self._live() else config.concurrency

    async def _line(self, batch: StoredBatch, line: ClaimedLine) -> None:
        try:
            verdict = await self._verdict(batch, line)
            await self._apply(batch, line, verdict)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(RELEASE_WAIT_S):
                    await self._db(self._store.release(batch.id, line.line, owner=self.owner))
            raise
        except Exception:
            # The database went away while the result was written: the lease expires and
            # the line runs again (its usage row, if recorded, keeps its id).
            log.warning("batch %s line %d: not finished", batch.id, line.line, exc_info=True)
        finally:
            left = self._here.get(batch.id, 1) - 1
            if left:
                self._here[batch.id] = left
            else:
                self._here.pop(batch.id, None)
            self._total -= 1
            if self._observer is not None:
                self._observer.running(self._total)
            self._wake.set()

    async def _verdict(self, batch: StoredBatch, line: ClaimedLine) -> Verdict:
        if line.claims > self._config.max_line_claims:
            message = f"the line was claimed {line.claims - 1} times without finishing"
            return Verdict(Next.DONE, error_line(line.custom_id, code="line_abandoned",
                                                 message=message), failed=True)  # fmt: skip
        try:
            principal = self._principal(batch.key_id)
        except GatewayError as exc:  # the owner has terms to accept
            return Verdict(Next.DONE, error_line(line.custom_id, code=exc.code or exc.kind.value,
                                                 message=exc.message), failed=True)  # fmt: skip
        if principal is None:
            message = "the batch's API key is revoked, expired or no longer exists"
            return Verdict(Next.DONE, error_line(line.custom_id, code="invalid_api_key",
                                                 message=message), failed=True)  # fmt: skip
        dialect = self._dialects[ENDPOINTS[batch.endpoint]]
        return await run_line(self._svc, dialect, batch, line, principal)

    async def _apply(self, batch: StoredBatch, line: ClaimedLine, verdict: Verdict) -> None:
        store, now = self._store, self._clock.now()
        if verdict.next is Next.DONE:
            if verdict.row is not None:
                self._record(verdict.row)  # one row per line id, whoever records it first
            done = await self._db(
                store.finish(
                    batch.id,
                    line.line,
                    owner=self.owner,
                    output=verdict.output,
                    failed=verdict.failed,
                )
            )
            if done and batch.paused is not None:
                await self._db(
                    store.update(batch.id, where=("in_progress",), paused=None, resume_at=None)
                )
            if done and self._observer is not None:
                self._observer.line("failed" if verdict.failed else "completed")
            return
        await self._db(store.release(batch.id, line.line, owner=self.owner))
        if self._observer is not None:
            self._observer.line(verdict.next.value)
        if verdict.next is Next.BUDGET:
            wait = self._config.budget_retry_s
        elif verdict.next is Next.RATE_LIMIT:
            wait = verdict.retry_after_s or self._config.rate_limit_wait_s
        else:
            return
        await self._db(
            store.update(
                batch.id, where=("in_progress",), paused=verdict.next.value, resume_at=now + wait
            )
        )

    async def _finalize(self, batch: StoredBatch) -> None:
        now, lease = self._clock.now(), self._config.lease_s
        if not await self._db(
            self._store.finalize(batch.id, owner=self.owner, now=now, until=now + lease)
        ):
            return
        status = await finish.write_files(self._store, self._files, batch, self.owner, self._clock)
        if status is not None and self._observer is not None:
            self._observer.ended(status)
