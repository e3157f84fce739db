"""Creating and revoking gateway keys: used by the admin API and the CLI."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

from sluice.auth import keys
from sluice.budgets.spec import BudgetSettings
from sluice.limits.settings import LimitSettings
from sluice.storage.base import MASTER_KEY_HASH, KeyRepository, MetaRepository
from sluice.types import Unreadable

MASTER_PREFIX = "sk-slc-admin-"


@dataclass(frozen=True, slots=True)
class CreatedKey:
    record: keys.KeyRecord
    secret: str
    """The whole key; shown once, never stored."""


def new_key(
    *,
    name: str,
    now: float,
    expires_at: float | None = None,
    models: tuple[str, ...] | None = None,
    metadata: dict[str, str] | None = None,
    user_id: str | None = None,
    service_account_id: str | None = None,
    team_id: str | None = None,
    models_exclude: tuple[str, ...] = (),
    limits: LimitSettings | Unreadable | None = None,
    budget: BudgetSettings | Unreadable | None = None,
    mcp_servers: tuple[str, ...] | None = None,
    mcp_servers_exclude: tuple[str, ...] = (),
    mcp_tools: tuple[str, ...] | None = None,
    mcp_tools_exclude: tuple[str, ...] = (),
) -> CreatedKey:
    """A new key (its hash) with its secret, shown once; not stored yet. Who may create
    which key is decided by the caller (``tenancy.keys``)."""
    new = keys.generate()
    record = keys.KeyRecord(
        id=new.key_id,
        public_id=new.public_id,
        name=name,
        key_hash=keys.hash_key(new.secret),
        preview=keys.preview(new.secret),
        created_at=now,
        expires_at=expires_at,
        models=models,
        metadata=metadata or {},
        user_id=user_id,
        service_account_id=service_account_id,
        team_id=team_id,
        models_exclude=models_exclude,
        limits=limits,
        budget=budget,
        mcp_servers=mcp_servers,
        mcp_servers_exclude=mcp_servers_exclude,
        mcp_tools=mcp_tools,
        mcp_tools_exclude=mcp_tools_exclude,
    )
    return CreatedKey(record, new.secret)


async def create_key(repo: KeyRepository, **fields: Any) -> CreatedKey:
    """:func:`new_key`, stored (``fields``: those of :func:`new_key`)."""
    created = new_key(**fields)
    await repo.create(created.record)
    return created


@dataclass(frozen=True, slots=True)
class MasterKey:
    hash: str
    generated: str | None
    """The plaintext when this call generated it (print it once), else ``None``."""


async def bootstrap_master_key(meta: MetaRepository, configured: str | None) -> MasterKey:
    """The admin key: ``SLUICE_MASTER_KEY`` when set; else the stored hash; else a new key,
    stored as a hash only. Safe when several processes start at once."""
    if configured:
        return MasterKey(keys.hash_key(configured), None)
    stored = await meta.get(MASTER_KEY_HASH)
    if stored is not None:
        return MasterKey(stored, None)
    alphabet = string.ascii_letters + string.digits
    plaintext = MASTER_PREFIX + "".join(secrets.choice(alphabet) for _ in range(40))
    digest = keys.hash_key(plaintext)
    kept = await meta.set_if_absent(MASTER_KEY_HASH, digest)
    return MasterKey(kept, plaintext if kept == digest else None)
