"""A batch as the OpenAI Batches API shows it, the endpoints its lines may name, and who may
see it."""

from __future__ import annotations

from typing import Any

from sluice.auth.principal import Principal
from sluice.ids import random_hex
from sluice.storage.batches import Owner, StoredBatch
from sluice.types import Endpoint

ENDPOINTS: dict[str, Endpoint] = {
    "/v1/chat/completions": Endpoint.CHAT,
    "/v1/completions": Endpoint.COMPLETIONS,
    "/v1/embeddings": Endpoint.EMBEDDINGS,
    "/v1/responses": Endpoint.RESPONSES,
}
"""The ``endpoint`` a batch may name, and the capability its lines run on."""

WINDOWS: dict[str, float] = {"24h": 24 * 3600.0}
"""``completion_window`` values and their length in seconds."""

_TIMES = (
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


def new_batch_id() -> str:
    return "batch_" + random_hex(12)


def line_request_id(batch_id: str, line: int) -> str:
    """The request id of a line's execution, the same on every replica and every retry: the
    usage writer keeps the first row of an id, so a line has one usage row however often it
    was run (a process that crashed after its upstream call)."""
    return f"req_{batch_id.removeprefix('batch_')}_{line}"


def owner_of(principal: Principal) -> Owner:
    """The batches ``principal`` sees: all (an admin), its user's, its team's (a service
    account's key), or (a key with neither) its own; as files are owned."""
    if principal.is_admin:
        return Owner(all=True)
    if principal.user_id is not None:
        return Owner(user_id=principal.user_id)
    if principal.service_account_id is not None and principal.team_id is not None:
        return Owner(team_id=principal.team_id)
    return Owner(key_id=principal.key_id)


def visible(batch: StoredBatch, principal: Principal) -> bool:
    owner = owner_of(principal)
    if owner.all:
        return True
    if owner.user_id is not None:
        return batch.user_id == owner.user_id
    if batch.user_id is not None:
        return False
    if owner.team_id is not None:
        return batch.service_account_id is not None and batch.team_id == owner.team_id
    return batch.service_account_id is None and batch.key_id == owner.key_id


def creator(batch: StoredBatch) -> Principal:
    """The creator as far as ownership goes (output files are theirs): its ids, no grants."""
    return Principal(
        key_id=batch.key_id,
        name="batch " + batch.id,
        user_id=batch.user_id,
        team_id=batch.team_id,
        org_id=batch.org_id,
        service_account_id=batch.service_account_id,
    )


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def render(batch: StoredBatch) -> dict[str, Any]:
    """The OpenAI batch object, plus ``sluice_paused`` and ``sluice_resume_at`` (why and until
    when no line runs; ``None`` while it runs)."""
    body: dict[str, Any] = {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "errors": None,
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": batch.status,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "created_at": int(batch.created_at),
        "expires_at": int(batch.expires_at),
    }
    for name in _TIMES:
        body[name] = _int(batch.times.get(name))
    body["request_counts"] = {
        "total": batch.total,
        "completed": batch.completed,
        "failed": batch.failed,
    }
    body["metadata"] = batch.metadata
    body["sluice_paused"] = batch.paused
    body["sluice_resume_at"] = _int(batch.resume_at) if batch.paused else None
    return body
