"""A gateway with SCIM on for the org ``acme``, over SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sluice.app import SluiceApp
from tests.integration.conftest import CONFIG, make_settings, running
from tests.scim.client import ScimClient

TOKEN = "scim-test-token-0123456789abcdef0123456789"
SCIM_CONFIG = (
    CONFIG
    + """
auth:
  scim: {token: env:SLUICE_TEST_SCIM_TOKEN, org: acme}
"""
)


@dataclass
class Scim:
    app: SluiceApp
    admin: httpx.AsyncClient
    """The admin API as the master key."""
    client: ScimClient
    org_id: str


@pytest.fixture
async def scim(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Scim]:
    monkeypatch.setenv("SLUICE_TEST_SCIM_TOKEN", TOKEN)
    settings = make_settings(tmp_path, database_url=database_url)
    async with running(settings, SCIM_CONFIG) as (app, admin):
        org = await admin.post("/api/v1/orgs", json={"name": "acme"})
        assert org.status_code == 201, org.text
        yield Scim(app, admin, ScimClient(admin, TOKEN), org.json()["id"])
