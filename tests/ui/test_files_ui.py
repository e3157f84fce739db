"""The console's Files page in a real browser: upload, the file seen through the openai SDK
with the person's key, download, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest

from tests.ui.conftest import UiWorld, sign_in

pytestmark = pytest.mark.ui

LINES = b'{"custom_id": "1", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n'


def test_upload_download_and_delete_a_file(context: Any, ui_world: UiWorld, tmp_path: Path) -> None:
    key = ui_world.api("POST", "/keys", {"name": "files-key", "user_id": ui_world.ids["ub"]})
    client = openai.OpenAI(
        base_url=f"{ui_world.url}/v1", api_key=key["key"], max_retries=0, timeout=20
    )
    page = context.new_page()
    sign_in(page, "ub@example.org")
    page.click('nav a:has-text("Files")')
    page.wait_for_url("**/ui/files")
    page.select_option('select[name="purpose"]', "batch")
    page.set_input_files(
        'input[name="file"]',
        {"name": "input.jsonl", "mimeType": "application/jsonl", "buffer": LINES},
    )
    page.click('button:has-text("Upload")')
    page.wait_for_selector("text=The file was uploaded.")
    row = page.locator("tr", has_text="input.jsonl")
    assert "batch" in row.inner_text()

    [listed] = client.files.list().data  # the person's key sees the console's upload
    assert (listed.filename, listed.bytes) == ("input.jsonl", len(LINES))

    with page.expect_download() as info:
        row.locator('a:has-text("Download")').click()
    saved = tmp_path / "downloaded.jsonl"
    info.value.save_as(saved)
    assert saved.read_bytes() == LINES

    page.on("dialog", lambda dialog: dialog.accept())
    row.locator('button:has-text("Delete")').click()
    page.wait_for_selector("text=The file was deleted.")
    assert page.locator("tr", has_text="input.jsonl").count() == 0
    assert client.files.list().data == []
