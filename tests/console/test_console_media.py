"""The Usage page and the analytics API show media requests in their billed units."""

from __future__ import annotations

from pathlib import Path

from tests.console.support import console_world, signed_in
from tests.integration.conftest import CONFIG

MEDIA_CONFIG = (
    CONFIG
    + """  - name: mock-tts
    deployments: [{provider: mock, model: tts}]
    prices: {micros_per_character: 20}
  - name: mock-image
    deployments: [{provider: mock, model: image}]
    prices: {micros_per_image: 40000}
"""
)


async def test_usage_page_and_api_show_billed_units(tmp_path: Path) -> None:
    async with console_world(tmp_path, MEDIA_CONFIG) as w:
        spoken = await w.call(
            "ua", "POST", "/v1/audio/speech", {"model": "mock-tts", "voice": "a", "input": "hello"}
        )
        assert spoken.status_code == 200 and spoken.headers["x-sluice-units"] == "5 characters"
        drawn = await w.call(
            "ua",
            "POST",
            "/v1/images/generations",
            {"model": "mock-image", "prompt": "p", "n": 2, "size": "64x64"},
        )
        assert drawn.status_code == 200, drawn.text
        await w.app.runtime.usage.flush()  # type: ignore[union-attr]
        api = (await w.call("admin", "GET", "/api/v1/analytics/units")).json()["data"]
        assert [(r["endpoint"], r["unit_kind"], r["units"], r["cost_usd"]) for r in api] == [
            ("images.generations", "images", 2, 0.08),
            ("audio.speech", "characters", 5, 0.0001),
        ]
        other_team = (await w.call("ub", "GET", "/api/v1/analytics/units")).json()["data"]
        assert other_team == []  # scoped like every analytics route
        async with signed_in(w.app, "root@example.org") as b:
            page = (await b.get("/ui/usage")).text
        section = page.split('id="units"', 1)[1].split("</section>", 1)[0]
        assert "audio.speech" in section and "characters" in section
        assert "images.generations" in section and "$0.08" in section
