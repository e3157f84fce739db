"""``auth.scim:`` in the config file: SCIM 2.0 provisioning at ``/scim/v2``."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from sluice.config.secrets import SecretRef


class ScimConfig(BaseModel):
    """An identity provider (Okta, Entra ID, ...) provisions the users and teams of one
    organisation through SCIM. Without this section ``/scim/v2`` answers 404."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: SecretRef
    """The bearer token the IdP sends, as ``env:NAME``; a variable that is unset leaves
    SCIM refusing every request with 401."""
    org: Annotated[str, Field(min_length=1, max_length=200)]
    """The organisation (name or id) whose users and teams SCIM manages."""
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 2 * 1024 * 1024
    """The largest request body accepted (a group with many members is the large one)."""
