"""Batches delegated to a provider's own batch API (``batch.mode: delegate`` on a
deployment, docs/batches.md#delegating-to-a-providers-batch-api).

The process holding the batch's lease (the ``batches`` row's, renewed at every step)
submits every line upstream in one submission, polls it, and once it ended writes each
answer to its line and its usage row (tagged with the batch id, priced at the discounted
price; ``cost_saved_micros`` is what the discount saved). The budget of the key holds the
whole submission's discounted estimate from before it is sent until its results are
settled; a batch it does not fit pauses (``sluice_paused: budget``). The upstream id, its
state and the hold live in the database: another process (or this one after a restart)
takes over the polling when the lease expires, and a usage row keeps its line's id, so
nothing is billed twice.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, Protocol

import orjson

from sluice.auth.principal import Principal
from sluice.batches.lines import error_line, result_line
from sluice.batches.model import ENDPOINTS, line_request_id
from sluice.budgets.base import BudgetHold, BudgetReservation
from sluice.budgets.errors import BudgetExceeded
from sluice.clock import Clock
from sluice.config.batches import BatchesConfig
from sluice.errors import GatewayError, kind_for_upstream_status
from sluice.pipeline import bounds, cost
from sluice.pipeline.dialects.base import Dialect
from sluice.pipeline.model_name import namer_for
from sluice.pipeline.services import Services
from sluice.providers.base import UpstreamCall
from sluice.providers.batch_api import BatchLine, BatchResult, UpstreamBatch
from sluice.routing.table import Deployment, ModelEntry
from sluice.storage.batches import (
    ACTIVE,
    BatchControl,
    ClaimedLine,
    DelegationStore,
    LineOutcome,
    StoredBatch,
)
from sluice.tokens import estimate_prompt
from sluice.types import Endpoint, ProviderRequest
from sluice.usage.event import UsageEvent

log = logging.getLogger("sluice.batches")
_SETTLED = ("collected", "refused")
"""``upstream_status`` once every line has its result."""


class Store(DelegationStore, BatchControl, Protocol):
    """The storage a delegation needs."""


class DelegateObserver(Protocol):
    def delegated(self, status: str) -> None:
        """A delegated batch reached ``submitted``, ``collected`` or ``refused``."""
        ...


def find(table_entries: list[ModelEntry], key: str) -> tuple[ModelEntry, Deployment] | None:
    """The model and deployment a delegated batch goes to (``None``: no longer configured
    to delegate)."""
    for entry in table_entries:
        for dep in entry.deployments:
            if dep.key == key and dep.delegate is not None:
                return entry, dep
    return None


def choose(entry: ModelEntry, endpoint: Endpoint, lines: int) -> str | None:
    """The deployment a batch of ``lines`` lines, all of ``entry``'s model, is delegated to:
    its first deployment (by priority) that delegates and takes the endpoint and size."""
    for dep in entry.deployments:
        d = dep.delegate
        if d is not None and endpoint in d.api.endpoints and lines <= d.api.max_lines:
            return dep.key
    return None


class Delegation:
    """Advances delegated batches; owned by the :class:`~sluice.batches.worker.BatchWorker`."""

    def __init__(
        self,
        svc: Services,
        store: Store,
        *,
        db: Callable[[Coroutine[Any, Any, Any]], Coroutine[Any, Any, Any]],
        dialects: dict[Endpoint, Dialect],
        principal: Callable[[str], Principal | None],
        record: Callable[[UsageEvent], None],
        config: BatchesConfig,
        clock: Clock,
        owner: str,
        observer: DelegateObserver | None = None,
    ) -> None:
        """``db``: runs one storage call the worker's way (one at a time, never cut)."""
        self._svc = svc
        self._store = store
        self._db = db
        self._dialects = dialects
        self._principal = principal
        self._record = record
        self._config = config
        self._clock = clock
        self._owner = owner
        self._observer = observer
        self._next: dict[str, float] = {}
        """When this process asks the provider about a batch next."""
        self.busy: set[str] = set()
        """Batches being advanced in this process now."""

    async def advance(self, batch: StoredBatch, *, accepting: bool) -> bool:
        """One step of a delegated batch; ``True`` when it is ready to finalize (its
        results are in its lines, or nothing was sent upstream and it is ending)."""
        now = self._clock.now()
        found = find(self._svc.table.entries, batch.delegate or "")
        if found is None:
            if batch.upstream_id is None:  # no longer delegated: Sluice runs its lines
                await self._db(self._store.update(batch.id, where=ACTIVE, delegate=None))
            else:
                log.warning("batch %s: deployment %s no longer delegates", batch.id,
                            batch.delegate)  # fmt: skip
            return False
        entry, dep = found
        if self._idle(batch, now):
            return False  # nothing to do before the next poll: no database write either
        lease = self._config.lease_s
        if not await self._db(self._store.hold(batch.id, owner=self._owner, now=now,
                                               until=now + lease)):  # fmt: skip
            return False
        if (
            batch.ending is None
            and now >= batch.expires_at
            and await self._db(
                self._store.update(batch.id, where=("in_progress",), ending="expired")
            )
        ):
            batch = replace(batch, ending="expired")
        if batch.upstream_status in _SETTLED or batch.completed + batch.failed >= batch.total:
            return True  # every line has its result (a finalization to take over)
        if batch.upstream_id is None:
            if batch.ending is not None:
                return True  # nothing was sent: the lines never ran
            if batch.paused is not None and batch.resume_at is not None and now < batch.resume_at:
                return False
            if not accepting or now < self._next.get(batch.id, 0.0):
                return False
            return await self._submit(batch, entry, dep, now)
        return await self._poll(batch, entry, dep, now)

    def _idle(self, batch: StoredBatch, now: float) -> bool:
        """Waiting for the next poll (or the end of a budget pause), with no cancel or
        expiry to act on."""
        if batch.ending is not None or now >= batch.expires_at:
            return False
        if batch.upstream_id is None:
            return (
                batch.paused is not None and batch.resume_at is not None and now < batch.resume_at
            )
        return batch.upstream_status == "submitted" and now < self._next.get(batch.id, 0.0)

    def _call(self, batch: StoredBatch, dep: Deployment) -> UpstreamCall:
        svc = self._svc
        return UpstreamCall(
            upstream_model=dep.upstream_model,
            deployment=dep.key,
            request_id=batch.id,
            session=svc.session,
            timeouts=dep.timeouts,
            credential=svc.credentials.get(dep.provider_name),
            limits=svc.read_limits,
        )

    async def _submit(
        self, batch: StoredBatch, entry: ModelEntry, dep: Deployment, now: float
    ) -> bool:
        assert dep.delegate is not None
        store = self._store
        lines = await self._db(store.pending(batch.id))
        if not lines:
            return True
        try:
            principal = self._principal(batch.key_id)
        except GatewayError as exc:  # the owner has terms to accept
            return await self._fail_all(batch, lines, code=exc.code or exc.kind.value,
                                        message=exc.message)  # fmt: skip
        if principal is None:
            return await self._fail_all(
                batch, lines, code="invalid_api_key",
                message="the batch's API key is revoked, expired or no longer exists",
            )  # fmt: skip
        dialect = self._dialects[ENDPOINTS[batch.endpoint]]
        requests = [(line, dialect.parse(line.body.encode())) for line in lines]
        try:  # the key may have lost the model since the batch was made
            for model in {req.model for _, req in requests}:
                self._svc.table.resolve(model, allowed=principal.may_use)
        except GatewayError as exc:
            return await self._fail_all(batch, lines, code=exc.code or exc.kind.value,
                                        message=exc.message)  # fmt: skip
        estimate = sum(self._estimate(entry, dep, req) for _, req in requests)
        reservation = None
        if principal.budget_checks:
            try:
                reservation = await self._svc.budgets.reserve(principal.budget_checks, estimate)
            except BudgetExceeded:
                wait = self._config.budget_retry_s
                await self._db(store.update(batch.id, where=("in_progress",), paused="budget",
                                            resume_at=now + wait))  # fmt: skip
                return False
        upstream = [BatchLine(f"l{line.line}", req) for line, req in requests]
        try:
            upstream_id = await dep.delegate.api.submit(upstream, self._call(batch, dep))
        except GatewayError as exc:
            if reservation is not None:
                await self._svc.budgets.release(reservation)
            if exc.retriable:
                log.warning("batch %s: the provider did not take it (%s); trying again",
                            batch.id, exc.message)  # fmt: skip
                self._next[batch.id] = now + dep.delegate.poll_interval_s
                return False
            await self._fail_all(batch, lines, code="upstream_batch_refused",
                                 message=exc.message, status="refused")  # fmt: skip
            return True
        except BaseException:  # cancelled (the process stops): the batch is submitted again
            if reservation is not None:
                await self._svc.budgets.release(reservation)
            raise
        saved = await self._db(
            store.update(
                batch.id,
                where=ACTIVE,
                upstream_id=upstream_id,
                upstream_status="submitted",
                reservation=_hold_json(reservation),
                paused=None,
                resume_at=None,
                times={"sluice_submitted_at": now},
            )
        )
        if not saved:  # ended meanwhile (an admin's cancel finalized it): undo upstream
            with contextlib.suppress(GatewayError):
                await dep.delegate.api.cancel(upstream_id, self._call(batch, dep))
            if reservation is not None:
                await self._svc.budgets.release(reservation)
            return False
        if self._observer is not None:
            self._observer.delegated("submitted")
        self._next[batch.id] = now + dep.delegate.poll_interval_s
        return False

    def _estimate(self, entry: ModelEntry, dep: Deployment, req: ProviderRequest) -> int:
        assert dep.delegate is not None
        full = cost.estimate(
            self._svc.pricer,
            dep,
            self._svc.prices.get(entry.name),
            prompt_tokens=estimate_prompt(req.body),
            max_tokens=bounds.output_reserve(req),
        )
        return round(full * (1 - dep.delegate.discount))

    async def _fail_all(
        self,
        batch: StoredBatch,
        lines: list[ClaimedLine],
        *,
        code: str,
        message: str,
        status: str = "collected",
    ) -> bool:
        outcomes = [
            LineOutcome(x.line, error_line(x.custom_id, code=code, message=message), True)
            for x in lines
        ]
        await self._db(self._store.write_lines(batch.id, owner=self._owner, outcomes=outcomes,
                                               upstream_status=status))  # fmt: skip
        if self._observer is not None:
            self._observer.delegated(status)
        return True

    async def _poll(
        self, batch: StoredBatch, entry: ModelEntry, dep: Deployment, now: float
    ) -> bool:
        assert dep.delegate is not None
        assert batch.upstream_id is not None
        api, call = dep.delegate.api, self._call(batch, dep)
        if batch.ending is not None and batch.upstream_status == "submitted":
            try:
                await api.cancel(batch.upstream_id, call)
            except GatewayError as exc:
                log.warning("batch %s: cancelling upstream failed: %s", batch.id, exc.message)
                return False
            await self._db(self._store.update(batch.id, where=ACTIVE,
                                              upstream_status="cancel_sent"))  # fmt: skip
        elif now < self._next.get(batch.id, 0.0):
            return False
        self._next[batch.id] = now + dep.delegate.poll_interval_s
        try:
            state = await api.poll(batch.upstream_id, call)
            if not state.ended:
                return False
            results = await api.results(state, call) if state.refs else []
        except GatewayError as exc:
            log.warning("batch %s: polling upstream failed: %s", batch.id, exc.message)
            return False
        return await self._collect(batch, entry, dep, state=state, results=results, now=now)

    async def _collect(
        self,
        batch: StoredBatch,
        entry: ModelEntry,
        dep: Deployment,
        *,
        state: UpstreamBatch,
        results: list[BatchResult],
        now: float,
    ) -> bool:
        assert dep.delegate is not None
        dialect = self._dialects[ENDPOINTS[batch.endpoint]]
        by_id = {r.custom_id: r for r in results}
        outcomes: list[LineOutcome] = []
        rows: list[UsageEvent] = []
        for line in await self._db(self._store.pending(batch.id)):
            result = by_id.get(f"l{line.line}")
            if result is None:
                if batch.ending is not None and state.failed is None:
                    continue  # cancelled or expired before it ran: the batch's end says how
                message = state.failed or f"the provider's batch ended ({state.status}) " \
                    "without an answer for this line"  # fmt: skip
                outcomes.append(LineOutcome(line.line, error_line(
                    line.custom_id, code="upstream_batch_" + (state.status or "failed"),
                    message=message), True))  # fmt: skip
                continue
            req = dialect.parse(line.body.encode())
            row = self._row(batch, entry, dep, line=line, req=req, result=result, now=now)
            rows.append(row)
            body = result.body if result.status >= 400 else namer_for(req.model).json(result.body)
            output = result_line(line.custom_id, status=result.status,
                                 request_id=row.request_id, body=body)  # fmt: skip
            outcomes.append(LineOutcome(line.line, output, result.status >= 400))
        for row in rows:
            self._record(row)  # one row per line id, whoever records it first
        written = await self._db(
            self._store.write_lines(batch.id, owner=self._owner, outcomes=outcomes,
                                    upstream_status="collected", reservation=None)
        )  # fmt: skip
        if not written:
            return False
        held = _hold_of(batch.reservation)
        if held is not None:
            await self._svc.budgets.settle(held, sum(r.cost_micros or 0 for r in rows))
        self._next.pop(batch.id, None)
        if self._observer is not None:
            self._observer.delegated("collected")
        return True

    def _row(
        self,
        batch: StoredBatch,
        entry: ModelEntry,
        dep: Deployment,
        *,
        line: ClaimedLine,
        req: ProviderRequest,
        result: BatchResult,
        now: float,
    ) -> UsageEvent:
        assert dep.delegate is not None
        usage = result.usage
        full = cost.cost(self._svc.pricer, dep, self._svc.prices.get(entry.name), usage)
        charged = round(full * (1 - dep.delegate.discount))
        submitted = batch.times.get("sluice_submitted_at", batch.created_at)
        failed = result.status >= 400
        user = req.body.get("user")
        return UsageEvent(
            request_id=line_request_id(batch.id, line.line),
            created_at=now,
            endpoint=str(req.endpoint),
            key_id=batch.key_id,
            model=req.model,
            provider=dep.provider_name,
            deployment=dep.key,
            upstream_model=dep.upstream_model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            cached_tokens=usage.cached_tokens if usage else 0,
            cache_write_tokens=usage.cache_write_tokens if usage else 0,
            latency_ms=max(0.0, (now - submitted) * 1000),
            status=result.status,
            error_kind=kind_for_upstream_status(result.status).value if failed else None,
            error_message=_message(result.body) if failed else None,
            end_user=user if isinstance(user, str) else None,
            attempts=1,
            cost_micros=charged,
            user_id=batch.user_id,
            team_id=batch.team_id,
            org_id=batch.org_id,
            batch_id=batch.id,
            cost_saved_micros=full - charged,
        )


def _message(body: bytes) -> str | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return str(message)[:1000] if message is not None else None


def _hold_json(reservation: BudgetReservation | None) -> dict[str, Any] | None:
    if reservation is None:
        return None
    return {
        "id": reservation.id,
        "amount_micros": reservation.amount_micros,
        "holds": [[h.scope, h.period, h.start, h.end] for h in reservation.holds],
    }


def _hold_of(data: dict[str, Any] | None) -> BudgetReservation | None:
    """The budget hold a delegated batch stored (any process may settle it)."""
    if not data:
        return None
    holds = tuple(BudgetHold(str(s), p, int(st), e) for s, p, st, e in data.get("holds") or ())
    return BudgetReservation(
        id=str(data.get("id") or ""), amount_micros=int(data.get("amount_micros") or 0),
        holds=holds,
    )  # fmt: skip
