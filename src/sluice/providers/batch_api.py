"""The seam to a provider's own batch API (OpenAI Batch, Anthropic Message Batches).

A delegated ``/v1/batches`` batch is handed upstream in one submission; whichever process
holds the batch's lease polls it and, once it ended, reads its results back. The provider
type's registry row names the implementation (``batch_api``); the core never names one.

Errors: every method raises :class:`~sluice.errors.GatewayError` only, classified by status
(an upstream 5xx, 429 or timeout is retriable: the caller tries again at its next poll).
No method retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sluice.providers.base import UpstreamCall
from sluice.types import Endpoint, ProviderRequest, Usage


@dataclass(frozen=True, slots=True)
class BatchLine:
    """One request of a submission."""

    custom_id: str
    """The id the results come back under: letters, digits, ``_`` and ``-``, at most 64
    characters (what every provider accepts; the caller maps it to its own line)."""
    request: ProviderRequest
    """The request as a live call would send it (OpenAI-shaped; translated as needed)."""


@dataclass(frozen=True, slots=True)
class UpstreamBatch:
    """What the provider says of a submitted batch."""

    id: str
    status: str
    """The provider's own status word (``in_progress``, ``ended``, ...), for logs."""
    ended: bool
    """Nothing will change any more: :meth:`BatchApi.results` has every answer there is."""
    refs: tuple[str, ...] = ()
    """Where the results are (file ids, a results URL); opaque to the caller."""
    failed: str | None = None
    """The batch as a whole failed upstream (it ran no line): the provider's reason."""


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One line's answer as a live call would have had it."""

    custom_id: str
    status: int
    """The answer's HTTP status (200: success)."""
    body: bytes
    """The OpenAI-shaped answer (or OpenAI-shaped error body)."""
    usage: Usage | None
    """The provider's counts (``None`` for a failed line, or when it sent none)."""


class BatchApi(Protocol):
    """One provider account's batch API. ``call`` carries the session, credential,
    timeouts and upstream model, as for a live call (``request_id``: the batch's id)."""

    endpoints: frozenset[Endpoint]
    """The batch endpoints it accepts (a batch for another endpoint runs locally)."""
    max_lines: int
    """Most requests one submission may hold (a larger batch runs locally)."""

    async def submit(self, lines: Sequence[BatchLine], call: UpstreamCall) -> str:
        """Create the upstream batch (uploading its input where the API needs a file);
        its id."""
        ...

    async def poll(self, batch_id: str, call: UpstreamCall) -> UpstreamBatch:
        """The batch as the provider has it now."""
        ...

    async def results(self, batch: UpstreamBatch, call: UpstreamCall) -> list[BatchResult]:
        """Every answer of an ended batch (a line that never ran upstream has none)."""
        ...

    async def cancel(self, batch_id: str, call: UpstreamCall) -> None:
        """Ask the provider to stop; lines already answered keep their results. Cancelling
        an ended batch is not an error."""
        ...
