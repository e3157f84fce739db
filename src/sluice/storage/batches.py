"""What the database keeps of batches (``/v1/batches``) and their lines, and the two
repositories over it: :class:`BatchRepository` (the API's side) and :class:`LineRepository`
(the worker's side: leases, results, finalization).

Times are epoch seconds. A line is executed by whoever holds its lease; its result is
written once (a conditional update by the lease holder), and the line's primary key
(batch, line number) keeps it from appearing twice in the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

ACTIVE = ("in_progress", "cancelling", "finalizing")
"""Statuses of a batch that has not ended."""
ENDED = ("completed", "failed", "expired", "cancelled")


@dataclass(frozen=True, slots=True)
class StoredBatch:
    id: str
    endpoint: str
    """The URL every line names (``/v1/chat/completions`` ...)."""
    input_file_id: str
    completion_window: str
    status: str
    """``in_progress``, ``cancelling``, ``finalizing``, then one of :data:`ENDED`."""
    created_at: float
    expires_at: float
    key_id: str
    """The key that created it; lines run as this key's principal."""
    user_id: str | None
    team_id: str | None
    org_id: str | None
    service_account_id: str | None
    total: int
    completed: int = 0
    failed: int = 0
    metadata: dict[str, str] | None = None
    times: dict[str, float] = field(default_factory=dict)
    """When each status was entered (``in_progress_at``, ``cancelling_at``, ...)."""
    output_file_id: str | None = None
    error_file_id: str | None = None
    ending: str | None = None
    """How it ends once the lines in flight are done: ``cancelled`` or ``expired`` (``None``:
    ``completed`` when every line is done)."""
    paused: str | None = None
    """Why no line is claimed until ``resume_at``: ``budget`` or ``rate_limit``."""
    resume_at: float | None = None
    delegate: str | None = None
    """The deployment whose provider batch API runs this batch (``None``: Sluice runs it)."""
    upstream_id: str | None = None
    """The provider's batch id, once submitted."""
    upstream_status: str | None = None
    """``submitted``, ``cancel_sent``, then ``collected`` (results written to the lines);
    ``refused`` when the provider would not take it."""
    reservation: dict[str, Any] | None = None
    """The budget held for a delegated batch until its results are settled (JSON of a
    :class:`~sluice.budgets.base.BudgetReservation`)."""


@dataclass(frozen=True, slots=True)
class NewLine:
    line: int
    """1-based line number in the input file."""
    custom_id: str
    body: str
    """The request body as JSON text."""


@dataclass(frozen=True, slots=True)
class ClaimedLine:
    line: int
    custom_id: str
    body: str
    claims: int
    """Times this line was claimed, this claim included."""


@dataclass(frozen=True, slots=True)
class LineResult:
    line: int
    custom_id: str
    output: str | None
    """The output or error file's line (JSON text); ``None``: the line never finished."""
    failed: bool


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose batches a caller sees: every batch (admins), a user's (made by any of their
    keys), a team's service accounts' (``team_id``), or (a key of neither) one key's."""

    all: bool = False
    user_id: str | None = None
    team_id: str | None = None
    key_id: str | None = None


class BatchRepository(Protocol):
    async def create(self, batch: StoredBatch, lines: list[NewLine]) -> None:
        """Insert the batch and its lines in one transaction."""
        ...

    async def get(self, batch_id: str) -> StoredBatch | None: ...

    async def page(self, owner: Owner, *, after: str | None, limit: int) -> list[StoredBatch]:
        """Newest first, at most ``limit``; ``after``: only batches older than that one."""
        ...

    async def count_active(self, owner: Owner) -> int:
        """Batches of ``owner`` not ended (:data:`ACTIVE`)."""
        ...

    async def cancel(self, batch_id: str, *, at: float) -> bool:
        """``in_progress`` → ``cancelling`` (ending ``cancelled``); ``False`` otherwise."""
        ...


class LineRepository(Protocol):
    """The worker's side. Every method is its own transaction."""

    async def active(self, *, limit: int) -> list[StoredBatch]:
        """Batches not ended, oldest first."""
        ...

    async def claim(
        self, batch_id: str, *, owner: str, n: int, now: float, until: float
    ) -> list[ClaimedLine]:
        """Lease at most ``n`` lines not done whose lease is free or expired, lowest line
        first, of a batch ``in_progress`` and not ending; two callers never get the same
        line."""
        ...

    async def renew(self, owner: str, *, until: float) -> None:
        """Extend every lease ``owner`` holds."""
        ...

    async def finish(
        self, batch_id: str, line: int, *, owner: str, output: str, failed: bool
    ) -> bool:
        """Write the line's result and count it, if ``owner`` still holds its lease and it
        has none yet; ``False`` (nothing written) otherwise."""
        ...

    async def release_all(self, owner: str) -> None:
        """Give back every lease ``owner`` still holds (a process stopping); those claims are
        taken back."""
        ...

    async def release(self, batch_id: str, line: int, *, owner: str, count: bool = False) -> None:
        """Give the lease back without a result (the line runs again later); ``count``: this
        claim counts towards the line's claims (else it is taken back)."""
        ...


@dataclass(frozen=True, slots=True)
class LineOutcome:
    line: int
    output: str
    failed: bool


class DelegationStore(Protocol):
    """What the worker keeps of a batch delegated to a provider's batch API."""

    async def hold(self, batch_id: str, *, owner: str, now: float, until: float) -> bool:
        """Take (or renew) the lease of a batch ``in_progress`` or ``cancelling`` whose lease
        is free, expired or already ``owner``'s; ``False`` when another process holds it."""
        ...

    async def pending(self, batch_id: str) -> list[ClaimedLine]:
        """Every line without a result, by line number."""
        ...

    async def write_lines(
        self, batch_id: str, *, owner: str, outcomes: list[LineOutcome], **values: Any
    ) -> bool:
        """In one transaction, if ``owner`` holds the batch's lease: each outcome on its
        line if it has none yet (counted), and ``values`` on the batch."""
        ...


class BatchControl(Protocol):
    """The worker's batch-level steps."""

    async def running(self, batch_id: str, *, now: float) -> int:
        """Lines whose lease has not expired."""
        ...

    async def update(self, batch_id: str, *, where: tuple[str, ...], **values: Any) -> bool:
        """Set ``values`` (``status``, ``ending``, ``paused``, ``resume_at``, ``times``) when
        the batch's status is one of ``where``; ``False`` otherwise."""
        ...

    async def finalize(self, batch_id: str, *, owner: str, now: float, until: float) -> bool:
        """Take the batch to ``finalizing`` under ``owner``'s lease (or take over a
        finalization whose lease expired); ``False`` when another process holds it."""
        ...

    async def results(self, batch_id: str) -> list[LineResult]:
        """Every line, by line number."""
        ...

    async def end(
        self,
        batch_id: str,
        *,
        owner: str,
        status: str,
        output_file_id: str | None,
        error_file_id: str | None,
        failed: int,
        at: float,
    ) -> bool:
        """End a finalizing batch ``owner`` holds: its final status, files, failed count."""
        ...
