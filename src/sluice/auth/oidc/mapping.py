"""What a person's claims entitle them to: one pure function, :func:`plan`, used by every
sign-in (``Provisioner`` applies the plan) and by the dry run (the CLI's ``sso check``, the
admin API's ``POST /api/v1/sso/check`` and the console's mapping page print it)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice.config.auth import OidcProviderConfig
from sluice.errors import ErrorKind, GatewayError
from sluice.tenancy.model import Directory


@dataclass(frozen=True, slots=True)
class Known:
    """What exists here, as far as the plan needs it (empty for a pure what-if)."""

    orgs: frozenset[str] = frozenset()
    """Organisation ids and names."""
    manual_teams: frozenset[tuple[str, str]] = frozenset()
    """(organisation id or name, team name) of teams not made from a group."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome for one set of claims. ``refused``: the sentence shown to the person;
    everything else is then empty."""

    idp: str
    org: str | None = None
    """The organisation (id or name, as configured) the person belongs to."""
    org_source: str | None = None
    """Why: ``group <name>``, ``rule <regex>`` or ``default_org``."""
    create_org: bool = False
    admin: bool = False
    org_admin: bool = False
    teams: tuple[str, ...] = ()
    """Teams (names, in ``org``) the person is a member of through their groups."""
    skipped_teams: tuple[str, ...] = ()
    """Teams a rule names but that were made by hand (``sync_manual_teams`` is off)."""
    refused: str | None = None
    notes: tuple[str, ...] = field(default=())

    def lines(self) -> list[str]:
        """The plan in plain sentences (the CLI and the console's dry run)."""
        if self.refused is not None:
            return [f"refused: {self.refused}", *(f"note: {n}" for n in self.notes)]
        made = " (created at the first sign-in)" if self.create_org else ""
        source = f" from {self.org_source}" if self.org_source else ""
        shown = [
            f"organisation: {self.org or '(keeps the account organisation)'}{made}{source}",
            f"admin: {'yes' if self.admin else 'no'}",
            f"org admin: {'yes' if self.org_admin else 'no'}",
            f"teams: {', '.join(self.teams) or '-'}",
        ]
        if self.skipped_teams:
            shown.append(f"left alone (made by hand): {', '.join(self.skipped_teams)}")
        return shown + [f"note: {n}" for n in self.notes]

    def to_json(self) -> dict[str, Any]:
        return {
            "idp": self.idp,
            "allowed": self.refused is None,
            "refused": self.refused,
            "org": self.org,
            "org_source": self.org_source,
            "create_org": self.create_org,
            "admin": self.admin,
            "org_admin": self.org_admin,
            "teams": list(self.teams),
            "skipped_teams": list(self.skipped_teams),
            "notes": list(self.notes),
        }


def plan(
    idp: str,
    config: OidcProviderConfig,
    *,
    groups: tuple[str, ...],
    email: str | None,
    known: Known | None = None,
    has_org: bool = False,
) -> Plan:
    """The plan for a person with ``groups`` and ``email`` signing in through ``idp``.
    ``has_org``: the person already has an account in some organisation (then a mapping
    to none keeps that one instead of refusing)."""
    rules = config.provisioning
    known = known or Known()
    domain = email.rsplit("@", 1)[-1].lower() if email and "@" in email else None
    if rules.allowed_domains and domain not in rules.allowed_domains:
        return Plan(
            idp,
            refused=f"Sign-in with {config.display_name} is open to addresses at "
            f"{', '.join(rules.allowed_domains)} only; yours is {email or 'not shared'}.",
        )
    notes: list[str] = []
    org, source, create = _org(config, groups, known, notes)
    admin = any(g in rules.admin_groups for g in groups)
    if org is None and not has_org:
        return Plan(
            idp,
            admin=admin,
            refused=f"You signed in with {config.display_name}, but "
            + (
                "none of your groups maps to an organisation here."
                if rules.orgs or rules.org_rules
                else "no organisation here takes people from it yet."
            )
            + " Ask an administrator to give you access.",
            notes=tuple(notes),
        )
    org_admin = org is not None and any(g in rules.org_admin_groups for g in groups)
    teams: list[str] = []
    skipped: list[str] = []
    for name in _team_names(config, groups) if org is not None else ():
        if (org, name) in known.manual_teams and not rules.sync_manual_teams:
            skipped.append(name)
        elif name not in teams:
            teams.append(name)
    return Plan(
        idp,
        org=org,
        org_source=source,
        create_org=create,
        admin=admin,
        org_admin=org_admin,
        teams=tuple(teams),
        skipped_teams=tuple(skipped),
        notes=tuple(notes),
    )


def _org(
    config: OidcProviderConfig, groups: tuple[str, ...], known: Known, notes: list[str]
) -> tuple[str | None, str | None, bool]:
    rules = config.provisioning
    for group, org in rules.orgs.items():
        if group in groups:
            return org, f"group {group}", False
    for rule in rules.org_rules:
        pattern = re.compile(rule.match)
        for group in groups:
            found = pattern.fullmatch(group)
            if found is None:
                continue
            org = rule.org.format(**found.groupdict())
            if org in known.orgs:
                return org, f"rule {rule.match}", False
            if rule.create:
                return org, f"rule {rule.match}", True
            notes.append(f"group {group} names organisation {org!r}, which does not exist")
    if config.default_org is not None:
        return config.default_org, "default_org", False
    return None, None, False


def _team_names(config: OidcProviderConfig, groups: tuple[str, ...]) -> list[str]:
    names: list[str] = []
    for group in groups:
        for rule in config.provisioning.teams:
            found = re.compile(rule.match).fullmatch(group)
            if found is not None:
                names.append(rule.team.format(**found.groupdict())[:200])
                break
    return names


def known_of(directory: Directory) -> Known:
    """What the mapping needs to know of what exists here."""
    names = {o.id: o.name for o in directory.orgs}
    manual = set()
    for team in directory.teams:
        if team.managed_by is None and team.org_id in names:
            manual.add((team.org_id, team.name))
            manual.add((names[team.org_id], team.name))
    return Known(frozenset(names) | frozenset(names.values()), frozenset(manual))


def dry_run(
    providers: Mapping[str, OidcProviderConfig],
    idp: str,
    *,
    groups: tuple[str, ...],
    email: str | None,
    directory: Directory | None,
) -> Plan:
    """What a newcomer with these claims would map to through ``idp`` (nothing is written);
    ``directory``: what exists now (``None``: as if nothing did). A 404 for an unknown IdP."""
    config = providers.get(idp)
    if config is None:
        known = ", ".join(sorted(providers)) or "none is configured"
        raise GatewayError(
            ErrorKind.CALLER_NOT_FOUND,
            f"no identity provider named {idp!r} (configured: {known})",
            param="idp",
        )
    known_now = known_of(directory) if directory is not None else None
    return plan(idp, config, groups=groups, email=email, known=known_now)
