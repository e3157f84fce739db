from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.app import SluiceApp
from sluice.clock import Clock
from sluice.config.loader import parse_config
from sluice.settings import Settings
from tests.migrated import copy_migrated_sqlite

MASTER = "test-master-key"

CONFIG = """
providers:
  mock: {type: mock}
  short: {type: mock, timeouts: {connect_s: 1, ttfb_s: 0.3, idle_s: 0.3, total_s: 2}}
models:
  - name: mock-gpt
    aliases: [gpt-demo]
    deployments: [{provider: mock, model: chat}]
  - name: mock-embed
    deployments: [{provider: mock, model: "embed?dim=8"}]
  - name: no-usage
    deployments: [{provider: mock, model: "chat?usage=0&chunks=4&completion_tokens=8"}]
  - name: broken
    deployments: [{provider: mock, model: "chat?status=503&retry_after_s=2"}]
  - name: cut
    deployments: [{provider: mock, model: "chat?cut=2"}]
  - name: slow
    deployments: [{provider: short, model: "chat?latency_ms=1000"}]
"""


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for an in-process gateway; its default SQLite database starts as a copy of
    a migrated one, so the start's migration step finds it at head (migrating an empty
    database at start stays tested by the end-to-end gateways)."""
    if "database_url" not in overrides:
        copy_migrated_sqlite(tmp_path / "sluice.db")
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/sluice.db",
        "master_key": MASTER,
        "usage_flush_interval_s": 0.05,
        "key_refresh_interval_s": 0.05,
        **overrides,
    }
    return Settings(**values)


GatewayFactory = Callable[..., Any]


@asynccontextmanager
async def running(
    settings: Settings, config_text: str = CONFIG, *, clock: Clock | None = None
) -> AsyncIterator[tuple[SluiceApp, httpx.AsyncClient]]:
    app = SluiceApp(settings, parse_config(config_text, source="test.yaml"), clock=clock)
    await app.startup()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gw", headers={"Authorization": f"Bearer {MASTER}"}
        ) as client:
            yield app, client
    finally:
        await app.shutdown()


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[SluiceApp, httpx.AsyncClient]]:
    async with running(make_settings(tmp_path)) as pair:
        yield pair
