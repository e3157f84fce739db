"""Gateway keys as tenancy objects: who may create, see, change, rotate and revoke which."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sluice.auth import keys
from sluice.auth.keys import KeyRecord
from sluice.auth.principal import Principal
from sluice.auth.service import CreatedKey, new_key
from sluice.errors import BadRequest
from sluice.tenancy import bounds, rules
from sluice.tenancy.model import Directory, Governance, Team, User
from sluice.tenancy.service import Tenancy


def _team_of(directory: Directory, record: KeyRecord) -> Team | None:
    team_id = record.team_id
    if team_id is None and record.service_account_id:
        sa = next(
            (s for s in directory.service_accounts if s.id == record.service_account_id), None
        )
        team_id = sa.team_id if sa else None
    return next((t for t in directory.teams if t.id == team_id), None)


def sees_key(actor: Principal, record: KeyRecord, team: Team | None) -> bool:
    if actor.is_admin or (actor.user_id is not None and record.user_id == actor.user_id):
        return True
    if team is None:
        return False
    if team.org_id in actor.org_admin_of:
        return True
    return record.service_account_id is not None and team.id in actor.team_admin_of


class KeyService:
    def __init__(self, tenancy: Tenancy) -> None:
        self._t = tenancy

    async def list(self, actor: Principal) -> list[KeyRecord]:
        directory = await self._t.directory()
        return [r for r in await self._t.keys.list() if sees_key(actor, r, _team_of(directory, r))]

    async def visible(self, actor: Principal, key_id: str) -> tuple[KeyRecord, Team | None]:
        record = await self._t.keys.get(key_id)
        directory = await self._t.directory()
        team = _team_of(directory, record) if record else None
        if record is None or not sees_key(actor, record, team):
            raise rules.not_found("key", key_id)
        return record, team

    async def create(
        self,
        actor: Principal,
        *,
        name: str,
        now: float,
        team_id: str | None,
        user_id: str | None,
        service_account_id: str | None,
        expires_at: float | None,
        gov: Governance,
        metadata: dict[str, str],
    ) -> CreatedKey:
        bounds.check_name(name, param="name")
        bounds.check_expiry(expires_at, now=now)
        bounds.check_metadata(metadata)
        bounds.check_governance(gov)
        directory = await self._t.directory()
        team: Team | None = None
        owner = None
        if service_account_id is not None:
            sa = next((s for s in directory.service_accounts if s.id == service_account_id), None)
            team = next((t for t in directory.teams if sa and t.id == sa.team_id), None)
            if sa is None or team is None or not rules.sees_team(actor, team):
                raise rules.not_found("service account", service_account_id)
            if not rules.is_team_admin(actor, team):
                raise rules.forbidden("only this team's admins create its service-account keys")
            if team_id is not None and team_id != team.id:
                raise BadRequest("a service-account key bills its own team", param="team_id")
            if user_id is not None:
                raise BadRequest(
                    "a key has one owner: user_id or service_account_id", param="user_id"
                )
        else:
            owner_id = user_id or actor.user_id
            if owner_id is not None:
                owner = next((u for u in directory.users if u.id == owner_id), None)
                if owner is None:
                    raise rules.not_found("user", owner_id)
                if (
                    owner_id != actor.user_id
                    and not actor.is_admin
                    and not (
                        actor.org_admin_of and await self._t.may_see_user(actor, owner, directory)
                    )
                ):
                    raise rules.not_found("user", owner_id)
                mine = [m.team_id for m in directory.memberships if m.user_id == owner_id]
                team_id = team_id or (mine[0] if mine else None)
                if team_id is not None and team_id not in mine and not actor.is_admin:
                    raise rules.forbidden("a personal key bills one of its owner's teams")
                cap = owner.max_keys if owner.max_keys is not None else self._t.default_max_keys
                live = [
                    r
                    for r in await self._t.keys.list()
                    if r.user_id == owner_id and r.revoked_at is None
                ]
                if len(live) >= cap:
                    raise rules.forbidden(
                        f"{owner.email} already has {len(live)} keys (the cap "
                        f"is {cap}); revoke one first"
                    )
            elif not actor.is_admin:
                raise rules.forbidden("only admins create keys without an owner")
            if team_id is not None:
                team = next((t for t in directory.teams if t.id == team_id), None)
                if team is None:
                    raise rules.not_found("team", team_id)
        _live(team, owner)
        if not actor.is_admin and team is not None:
            rules.within(gov.limits, team.governance.limits, what="team")
            rules.budget_within(gov.budget, team.governance.budget, what="team")
        created = new_key(
            name=name,
            now=now,
            expires_at=expires_at,
            metadata=metadata,
            user_id=owner.id if owner else None,
            service_account_id=service_account_id,
            team_id=team.id if team else None,
            **gov.key_fields(),
        )
        record = created.record
        org_id = team.org_id if team else None
        async with self._t.audit_key(actor, "key.create", record, org_id=org_id) as unit:
            await unit.keys.create(record)
        return created

    def _may_change(self, actor: Principal, record: KeyRecord, team: Team | None) -> None:
        if actor.is_admin or (actor.user_id is not None and record.user_id == actor.user_id):
            return
        if (
            team is not None
            and rules.is_team_admin(actor, team)
            and (record.service_account_id is not None or team.org_id in actor.org_admin_of)
        ):
            return
        raise rules.forbidden("you may see this key but not change it")

    async def update(
        self,
        actor: Principal,
        key_id: str,
        changes: dict[str, Any],
        gov: Governance,
        *,
        now: float,
    ) -> KeyRecord:
        """``changes``: new values of ``name``, ``expires_at``, ``metadata`` (only those)."""
        record, team = await self.visible(actor, key_id)
        self._may_change(actor, record, team)
        _check_changes(changes, now=now)
        bounds.check_governance(gov, before=Governance.of_key(record))
        if not actor.is_admin and team is not None:
            rules.within(gov.limits, team.governance.limits, what="team")
            rules.budget_within(gov.budget, team.governance.budget, what="team")
        updated = replace(record, **changes, **gov.key_fields())
        async with self._t.audit_key(
            actor, "key.update", updated, before=record, org_id=team.org_id if team else None
        ) as unit:
            await unit.keys.update(updated)
        return updated

    async def rotate(
        self, actor: Principal, key_id: str, *, now: float, grace_s: float
    ) -> CreatedKey:
        record, team = await self.visible(actor, key_id)
        self._may_change(actor, record, team)
        if record.revoked_at is not None:
            raise BadRequest("a revoked key cannot be rotated", param="key_id")
        new = keys.generate(record.public_id)
        updated = replace(
            record,
            key_hash=keys.hash_key(new.secret),
            preview=keys.preview(new.secret),
            previous_hash=record.key_hash if grace_s > 0 else None,
            previous_valid_until=now + grace_s if grace_s > 0 else None,
        )
        async with self._t.audit_key(
            actor, "key.rotate", updated, before=record, org_id=team.org_id if team else None
        ) as unit:
            await unit.keys.update(updated)
        return CreatedKey(updated, new.secret)

    async def revoke(self, actor: Principal, key_id: str, *, now: float) -> KeyRecord:
        record, team = await self.visible(actor, key_id)
        self._may_change(actor, record, team)
        # Revoking is idempotent: a revoked key keeps its first revocation time.
        revoked = replace(record, revoked_at=record.revoked_at or now)
        async with self._t.audit_key(
            actor, "key.revoke", revoked, before=record, org_id=team.org_id if team else None
        ) as unit:
            stored = await unit.keys.revoke(key_id, at=now)
            if stored is None:  # gone meanwhile: roll the audit entry back
                raise rules.not_found("key", key_id)
        return stored


def _live(team: Team | None, owner: User | None) -> None:
    """No new key bills an archived team or belongs to an archived user."""
    if team is not None:
        rules.live("team", team.name, team.archived_at)
    if owner is not None:
        rules.live("user", owner.email, owner.archived_at)


def _check_changes(changes: dict[str, Any], *, now: float) -> None:
    unknown = set(changes) - {"name", "expires_at", "metadata"}
    if unknown:
        raise ValueError(f"not changeable here: {', '.join(sorted(unknown))}")
    if "name" in changes:
        bounds.check_name(changes["name"], param="name")
    if "expires_at" in changes:
        bounds.check_expiry(changes["expires_at"], now=now)
    if "metadata" in changes:
        bounds.check_metadata(changes["metadata"])
