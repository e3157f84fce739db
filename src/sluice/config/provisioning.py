"""``auth.oidc.<idp>.provisioning``: what a person's groups claim entitles them to here.

The rules are read by :func:`sluice.auth.oidc.mapping.plan` (one pure function) on every
sign-in and by the dry run (``sluice sso check``, ``POST /api/v1/sso/check``).
"""

from __future__ import annotations

import re
import string
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _compiled(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from exc
    return value


def _fields(template: str) -> set[str]:
    try:
        return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise ValueError(f"template {template!r}: {exc}") from exc


class _Rule(_Frozen):
    match: Annotated[str, Field(min_length=1)]
    """A regular expression matched against the whole group name (``re.fullmatch``)."""

    @field_validator("match")
    @classmethod
    def _regex(cls, value: str) -> str:
        return _compiled(value)

    def _check_template(self, template: str) -> None:
        names = set(re.compile(self.match).groupindex)
        missing = {f for f in _fields(template) if f} - names
        if missing:
            raise ValueError(
                f"template {template!r} names {sorted(missing)} but {self.match!r} has no "
                "such named group"
            )


class OrgRule(_Rule):
    """A group matching ``match`` maps to the organisation ``org`` (a template filled from
    the match's named groups, e.g. ``^lab-(?P<org>[a-z0-9-]+)$`` → ``{org}``)."""

    org: Annotated[str, Field(min_length=1, max_length=200)] = "{org}"
    create: bool = False
    """Create the organisation at the first sign-in that maps to it. Off: it must exist,
    else the rule does not apply (the next rule, then ``default_org``, is tried)."""

    @model_validator(mode="after")
    def _template(self) -> OrgRule:
        self._check_template(self.org)
        return self


class TeamRule(_Rule):
    """A group matching ``match`` makes the person a member of the team ``team`` (a
    template) in their organisation; the team is created (marked IdP-managed) if missing."""

    team: Annotated[str, Field(min_length=1, max_length=200)] = "{team}"

    @model_validator(mode="after")
    def _template(self) -> TeamRule:
        self._check_template(self.team)
        return self


class ProvisioningConfig(_Frozen):
    """Group mapping, applied again at every sign-in. Roles and team memberships this IdP
    granted are taken away when the groups no longer grant them; grants made by hand are
    never touched."""

    orgs: dict[str, str] = Field(default_factory=dict)
    """Explicit table: group → organisation (id or name). Tried first, in this order."""
    org_rules: tuple[OrgRule, ...] = ()
    """Template rules, tried in order after the table; then the IdP's ``default_org``."""
    admin_groups: tuple[str, ...] = ()
    """Members of any of these groups are global admins."""
    org_admin_groups: tuple[str, ...] = ()
    """Members of any of these groups are org admins of the organisation they map to."""
    teams: tuple[TeamRule, ...] = ()
    """Which groups become teams (first matching rule per group)."""
    sync_manual_teams: bool = False
    """A team rule naming a team made by hand joins (and later leaves) it too. Off: such a
    team is left alone and the dry run says so."""
    allowed_domains: tuple[str, ...] = ()
    """E-mail domains allowed to sign in (exact, case-insensitive); empty: any."""

    @field_validator("allowed_domains")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(d.strip().lower().lstrip("@") for d in value)
