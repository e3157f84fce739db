"""The playground's media card in Chromium: speech played back in an audio element, that
speech transcribed, an image generated; each shows what it was billed by and its cost."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.ui.conftest import UiWorld, sign_in


def test_playground_speaks_transcribes_and_draws(context: Any, ui_world: UiWorld) -> None:
    key = ui_world.api("POST", "/keys", {"name": "media", "user_id": ui_world.ids["ua"]})
    page = context.new_page()
    sign_in(page, "ua@example.org")
    page.goto("/ui/playground")
    page.fill("#pg-key", key["key"])
    page.select_option("#pm-model", "m-chat")  # the mock upstream answers every endpoint
    expect(page.locator("#pm-file")).to_be_hidden()
    page.fill("#pm-text", "Hello gateway")
    page.select_option("#pm-format", "wav")
    page.click("#pm-send")
    expect(page.locator("#pm-audio")).to_be_visible(timeout=15_000)
    expect(page.locator('[data-media="units"]')).to_have_text("13 characters")
    assert page.inner_text('[data-media="request_id"]').startswith("req_")
    duration = page.evaluate(
        "() => new Promise(done => { const a = document.getElementById('pm-audio');"
        " if (a.readyState >= 1) done(a.duration);"
        " else a.addEventListener('loadedmetadata', () => done(a.duration)); })"
    )
    assert duration > 0.5  # a playable WAV

    page.select_option("#pm-kind", "transcription")
    expect(page.locator("#pm-text")).to_be_hidden()
    page.select_option("#pm-transcript-format", "text")
    page.click("#pm-send")
    expect(page.locator("#pm-output")).to_have_text("Hello gateway", timeout=15_000)
    assert page.inner_text('[data-media="units"]').endswith("audio seconds")

    page.select_option("#pm-kind", "image")
    page.fill("#pm-text", "a lighthouse")
    page.select_option("#pm-size", "256x256")
    page.click("#pm-send")
    expect(page.locator("#pm-image")).to_be_visible(timeout=15_000)
    width = page.evaluate("() => document.getElementById('pm-image').naturalWidth")
    assert width == 256
    expect(page.locator('[data-media="units"]')).to_have_text("1 images")
