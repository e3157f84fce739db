"""The ``batches`` section of the gateway config: limits and pacing of the Batches API
(``/v1/batches``, docs/batches.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BatchesConfig(BaseModel):
    """How many batches a tenant may run, how large they may be, and how fast the worker
    inside ``sluice serve`` executes their lines."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    """Run the worker and serve ``/v1/batches`` (off: the routes answer 404 and no line runs
    in this process; another replica may still run them)."""
    max_lines: Annotated[int, Field(ge=1, le=1_000_000)] = 50_000
    """Lines one batch may hold (400 naming ``input_file_id`` beyond)."""
    max_input_bytes: Annotated[int, Field(ge=1024, le=1024**3)] = 200 * 1024 * 1024
    """Largest input file a batch may be created from (413 beyond)."""
    max_line_bytes: Annotated[int, Field(ge=256, le=64 * 1024 * 1024)] = 1024 * 1024
    """Largest line of an input file (400 naming the line beyond)."""
    max_active_per_user: Annotated[int, Field(ge=1)] = 10
    """Batches not yet ended (in progress, cancelling, finalizing) one user may have; a
    service account's keys count against their team (``max_active_per_team``)."""
    max_active_per_team: Annotated[int, Field(ge=1)] = 50
    """Batches not yet ended the service accounts of one team may have."""
    concurrency_per_batch: Annotated[int, Field(ge=1, le=10_000)] = 8
    """Lines of one batch a process runs at once."""
    concurrency: Annotated[int, Field(ge=1, le=10_000)] = 32
    """Lines of every batch a process runs at once while no live request is in flight."""
    concurrency_under_load: Annotated[int, Field(ge=0, le=10_000)] = 4
    """Lines a process runs at once while live (HTTP) requests are in flight: batches yield
    to live traffic. At most ``concurrency``."""
    poll_interval_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    """How often the worker looks for batch work created by another process (work created
    through this process wakes it at once)."""
    lease_s: Annotated[float, Field(ge=1, le=86_400)] = 120.0
    """How long a claimed line belongs to the process that claimed it; renewed every third
    of it while the line runs. A crashed process's lines are taken over after this."""
    budget_retry_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    """A batch paused for budget tries one line again after this long (the budget may have
    been raised or a new period begun)."""
    rate_limit_wait_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    """How long a batch waits after a rate-limit refusal without ``Retry-After``."""
    max_line_claims: Annotated[int, Field(ge=1, le=100)] = 5
    """A line claimed this many times without finishing (its process crashed each time)
    fails instead of being run again."""

    @model_validator(mode="after")
    def _bounds(self) -> BatchesConfig:
        if self.concurrency_under_load > self.concurrency:
            raise ValueError("concurrency_under_load: must not exceed concurrency")
        return self
