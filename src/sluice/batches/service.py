"""The Batches API's use cases (create, retrieve, list, cancel), shared by the HTTP routes,
the console and the CLI. Another tenant's batch is the same 404 as one that does not exist."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from sluice.auth.principal import Principal
from sluice.batches.delegate import choose
from sluice.batches.model import ENDPOINTS, WINDOWS, creator, new_batch_id, owner_of, visible
from sluice.batches.validate import parse_lines
from sluice.clock import Clock
from sluice.config.batches import BatchesConfig
from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.files.base import FileAccess
from sluice.pipeline.dialects.base import Dialect
from sluice.routing.table import ModelTable
from sluice.storage.batches import BatchRepository, NewLine, Owner, StoredBatch
from sluice.types import Endpoint

MAX_PAGE = 100
MAX_DOWNLOAD_BYTES = 1024**3
"""Largest output or error file the console hands out in one answer."""
METADATA_PAIRS = 16
METADATA_KEY_CHARS = 64
METADATA_VALUE_CHARS = 512
_IGNORED = frozenset({"output_expires_after"})
"""Accepted and not applied (output files follow the files API's own expiry)."""


def _not_found(batch_id: str) -> GatewayError:
    return GatewayError(ErrorKind.CALLER_NOT_FOUND, f"no batch {batch_id!r}", param="batch_id")


class BatchService:
    def __init__(
        self,
        repo: BatchRepository,
        *,
        config: BatchesConfig,
        clock: Clock,
        files: FileAccess | None = None,
        table: ModelTable | None = None,
        dialects: dict[Endpoint, Dialect] | None = None,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        """``files``, ``table``, ``dialects``: what creating a batch needs (where input files
        are read, the models, the lines' formats); without them (the CLI) creating answers
        503. ``wake``: tells this process's worker there is work."""
        self._repo = repo
        self._files = files
        self._table = table
        self._dialects = dialects or {}
        self._config = config
        self._clock = clock
        self.wake = wake

    @property
    def config(self) -> BatchesConfig:
        return self._config

    async def create(self, principal: Principal, body: dict[str, Any]) -> StoredBatch:
        """Validate the request and its input file, store the batch and its lines."""
        input_file_id, endpoint, window, metadata = _request(body)
        await self._check_active(principal)
        if self._files is None or self._table is None:
            raise GatewayError(
                ErrorKind.GATEWAY_UNAVAILABLE, "batches need the files API, which is not running"
            )
        try:
            data = await self._files.read(
                principal, input_file_id, max_bytes=self._config.max_input_bytes
            )
        except GatewayError as exc:
            exc.param = exc.param or "input_file_id"
            raise
        lines = parse_lines(
            data,
            endpoint=endpoint,
            dialect=self._dialects[ENDPOINTS[endpoint]],
            principal=principal,
            resolve=self._resolve,
            max_lines=self._config.max_lines,
            max_line_bytes=self._config.max_line_bytes,
        )
        now = self._clock.now()
        batch = StoredBatch(
            id=new_batch_id(),
            endpoint=endpoint,
            input_file_id=input_file_id,
            completion_window=window,
            status="in_progress",
            created_at=now,
            expires_at=now + WINDOWS[window],
            key_id=principal.key_id,
            user_id=principal.user_id,
            team_id=principal.team_id,
            org_id=principal.org_id,
            service_account_id=principal.service_account_id,
            total=len(lines),
            metadata=metadata,
            times={"in_progress_at": now},
            delegate=self._delegate(endpoint, lines),
        )
        await self._repo.create(batch, lines)
        self.wake()
        return batch

    def _delegate(self, endpoint: str, lines: list[NewLine]) -> str | None:
        """The deployment whose provider batch API runs the batch: when every line names
        the same model and one of its deployments delegates (``None``: Sluice runs it)."""
        table = self._table
        if table is None or not lines:
            return None
        models: set[str] = set()
        for line in lines:
            model = orjson.loads(line.body).get("model")
            entry = table.get(model) if isinstance(model, str) else None
            if entry is None:
                return None
            models.add(entry.name)
            if len(models) > 1:
                return None
        entry = table.get(models.pop())
        return choose(entry, ENDPOINTS[endpoint], len(lines)) if entry is not None else None

    def _resolve(self, model: str, principal: Principal) -> None:
        if self._table is not None:
            self._table.resolve(model, allowed=principal.may_use)

    async def _check_active(self, principal: Principal) -> None:
        if principal.is_admin:
            return
        owner = owner_of(principal)
        limit, who = (
            (self._config.max_active_per_user, "user")
            if owner.user_id is not None
            else (self._config.max_active_per_team, "team")
        )
        if await self._repo.count_active(owner) >= limit:
            raise GatewayError(
                ErrorKind.POLICY_RATE_LIMITED,
                f"this {who} has {limit} batches in progress already "
                f"(batches.max_active_per_{who}); wait for one to end",
                code="too_many_active_batches",
            )

    async def get(self, principal: Principal, batch_id: str) -> StoredBatch:
        batch = await self._repo.get(batch_id)
        if batch is None or not visible(batch, principal):
            raise _not_found(batch_id)
        return batch

    async def page(
        self, principal: Principal | Owner, *, after: str | None, limit: int
    ) -> tuple[list[StoredBatch], bool]:
        """Newest first; whether more follow."""
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit must be between 1 and {MAX_PAGE}", param="limit")
        owner = principal if isinstance(principal, Owner) else owner_of(principal)
        rows = await self._repo.page(owner, after=after, limit=limit + 1)
        return rows[:limit], len(rows) > limit

    async def cancel(self, principal: Principal, batch_id: str) -> StoredBatch:
        """``in_progress`` → ``cancelling``; a batch already cancelling or ended is returned
        as it is (cancelling twice is not an error)."""
        batch = await self.get(principal, batch_id)
        if await self._repo.cancel(batch.id, at=self._clock.now()):
            self.wake()
        return await self.get(principal, batch_id)

    async def download(self, principal: Principal, batch_id: str, which: str) -> bytes:
        """The content of a batch's ``output`` or ``errors`` file (404 when it has none)."""
        batch = await self.get(principal, batch_id)
        file_id = batch.output_file_id if which == "output" else batch.error_file_id
        if file_id is None or self._files is None:
            raise GatewayError(
                ErrorKind.CALLER_NOT_FOUND, f"batch {batch_id!r} has no {which} file"
            )
        # Read as the creator, who owns the file (an admin may see another's batch).
        return await self._files.read(creator(batch), file_id, max_bytes=MAX_DOWNLOAD_BYTES)


def _request(body: dict[str, Any]) -> tuple[str, str, str, dict[str, str] | None]:
    input_file_id = body.get("input_file_id")
    if not isinstance(input_file_id, str) or not input_file_id or len(input_file_id) > 64:
        raise BadRequest("input_file_id must be a file id", param="input_file_id")
    endpoint = body.get("endpoint")
    if endpoint not in ENDPOINTS:
        raise BadRequest(f"endpoint must be one of {', '.join(ENDPOINTS)}", param="endpoint")
    window = body.get("completion_window")
    if window not in WINDOWS:
        raise BadRequest(
            f"completion_window must be one of {', '.join(WINDOWS)}", param="completion_window"
        )
    unknown = set(body) - {"input_file_id", "endpoint", "completion_window", "metadata"} - _IGNORED
    if unknown:
        raise BadRequest(f"unknown field {sorted(unknown)[0]!r}", param=sorted(unknown)[0])
    return input_file_id, str(endpoint), str(window), _metadata(body.get("metadata"))


def _metadata(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > METADATA_PAIRS:
        raise BadRequest(
            f"metadata must be an object of at most {METADATA_PAIRS} pairs", param="metadata"
        )
    for key, item in value.items():
        if len(key) > METADATA_KEY_CHARS or not isinstance(item, str):
            raise BadRequest(
                f"metadata keys are at most {METADATA_KEY_CHARS} characters and values are strings",
                param="metadata",
            )
        if len(item) > METADATA_VALUE_CHARS:
            raise BadRequest(
                f"metadata values are at most {METADATA_VALUE_CHARS} characters",
                param="metadata",
            )
    return dict(value)
