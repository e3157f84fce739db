"""Documents in chat through the in-process gateway, with real PDF and DOCX files made here:
extracted text reaches a deployment that takes no files, a files-capable deployment gets the
file itself (an Anthropic ``document`` block, an OpenAI ``file`` part), a ``file_id`` is read
under the Files API's ownership rules, a fallback attempt gets text, and bad documents
answer 400/413 naming the part, OpenAI- or Anthropic-shaped, with one usage row each."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from sluice.app import SluiceApp
from sluice.documents import kinds
from tests.documents_support import CORRUPT_PDF, data_url, file_part, make_docx, make_pdf
from tests.integration.conftest import make_settings, running
from tests.integration.recorder import Recorder, recording_upstream

Gateway = tuple[SluiceApp, httpx.AsyncClient, Recorder]

PDF = make_pdf(["Invoice 4471: the lab owes 1,200 euros.", "Page two: due in March."])
DOCX = make_docx("Minutes", ["The committee approved the GPU budget."], [["item", "eur"]])


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with recording_upstream() as rec:
        config = f"""
providers:
  oa: {{type: openai, base_url: "{rec.url}/v1", api_key: sk-oa-up}}
  an: {{type: anthropic, base_url: "{rec.url}", api_key: sk-ant-up}}
  mock: {{type: mock}}
models:
  - name: mock-no-usage
    deployments: [{{provider: mock, model: "chat?usage=0&chunks=2"}}]
  - name: text-only
    deployments: [{{provider: oa, model: gpt-text}}]
  - name: pdf-native
    deployments: [{{provider: oa, model: gpt-files, file_types: [application/pdf]}}]
  - name: claude
    deployments: [{{provider: an, model: claude-up}}]
  - name: native-then-text
    deployments: [{{provider: oa, model: fail-files, file_types: [application/pdf]}}]
    fallbacks: [text-only]
documents: {{max_file_bytes: 60000, max_total_bytes: 100000}}
"""
        async with running(make_settings(tmp_path), config) as (app, client):
            yield app, client, rec


def _chat(model: str, *parts: dict[str, Any]) -> dict[str, Any]:
    content = [{"type": "text", "text": "Summarise the attachments."}, *parts]
    return {"model": model, "messages": [{"role": "user", "content": content}]}


def _sent_parts(rec: Recorder) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = rec.seen[-1].body["messages"][-1]["content"]
    return parts


async def _rows(app: SluiceApp) -> list[Any]:
    rt = app.runtime
    assert rt is not None
    await rt.usage.flush()
    return list(await rt.storage.usage.recent(limit=100))


async def test_text_reaches_a_model_without_files(gw: Gateway) -> None:
    app, client, rec = gw
    resp = await client.post(
        "/v1/chat/completions",
        json=_chat(
            "text-only", file_part(PDF, "invoice.pdf"), file_part(DOCX, "minutes.docx", kinds.DOCX)
        ),
    )
    assert resp.status_code == 200, resp.text
    parts = _sent_parts(rec)
    assert [p["type"] for p in parts] == ["text", "text", "text"]
    assert parts[1]["text"].startswith('<document name="invoice.pdf">\nInvoice 4471')
    assert "Page two: due in March." in parts[1]["text"]
    assert parts[1]["text"].endswith("</document>")
    assert parts[2]["text"] == (
        '<document name="minutes.docx">\n# Minutes\nThe committee approved the GPU budget.\n'
        "item | eur\n</document>"
    )
    assert len(await _rows(app)) == 1


async def test_a_files_capable_deployment_gets_the_file(gw: Gateway) -> None:
    _, client, rec = gw
    part = file_part(PDF, "invoice.pdf")
    docx = file_part(DOCX, "minutes.docx", kinds.DOCX)
    resp = await client.post("/v1/chat/completions", json=_chat("pdf-native", part, docx))
    assert resp.status_code == 200, resp.text
    parts = _sent_parts(rec)
    assert parts[1] == part  # forwarded as sent
    assert parts[2]["type"] == "text" and "GPU budget" in parts[2]["text"]  # DOCX: not taken


async def test_anthropic_gets_a_document_block(gw: Gateway) -> None:
    _, client, rec = gw
    resp = await client.post(
        "/v1/chat/completions",
        json={**_chat("claude", file_part(PDF, "invoice.pdf")), "max_tokens": 50},
    )
    assert resp.status_code == 200, resp.text
    assert rec.seen[-1].path == "/v1/messages"
    block = _sent_parts(rec)[-1]
    assert block == {
        "type": "document",
        "source": {
            "type": "base64",
            "media_type": "application/pdf",
            "data": base64.b64encode(PDF).decode(),
        },
        "title": "invoice.pdf",
    }


async def test_anthropic_gets_text_documents_and_text_for_docx(gw: Gateway) -> None:
    _, client, rec = gw
    parts = (
        file_part(b"plain notes", "notes.txt", "text/plain"),
        file_part(DOCX, "minutes.docx", kinds.DOCX),
    )
    resp = await client.post(
        "/v1/chat/completions", json={**_chat("claude", *parts), "max_tokens": 50}
    )
    assert resp.status_code == 200, resp.text
    text_doc, docx = _sent_parts(rec)[-2:]
    assert text_doc == {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"},
        "title": "notes.txt",
    }
    assert docx["type"] == "text" and docx["text"].startswith('<document name="minutes.docx">')


async def test_a_fallback_attempt_gets_text(gw: Gateway) -> None:
    _, client, rec = gw
    resp = await client.post(
        "/v1/chat/completions", json=_chat("native-then-text", file_part(PDF, "invoice.pdf"))
    )
    assert resp.status_code == 200, resp.text
    first, second = rec.seen[-2].body, rec.seen[-1].body
    assert first["model"] == "fail-files" and first["messages"][0]["content"][1]["type"] == "file"
    assert second["model"] == "gpt-text"
    assert "Invoice 4471" in second["messages"][0]["content"][1]["text"]


def _messages_body(model: str, source: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 50,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "document", "title": "invoice.pdf", "source": source},
                    {"type": "text", "text": "What is owed?"},
                ],
            }
        ],
    }


async def test_messages_document_blocks(gw: Gateway) -> None:
    _, client, rec = gw
    source = {
        "type": "base64",
        "media_type": "application/pdf",
        "data": base64.b64encode(PDF).decode(),
    }
    native = await client.post("/v1/messages", json=_messages_body("claude", source))
    assert native.status_code == 200, native.text
    assert rec.seen[-1].body["messages"][0]["content"][0]["source"] == source  # untouched
    translated = await client.post("/v1/messages", json=_messages_body("text-only", source))
    assert translated.status_code == 200, translated.text
    sent = rec.seen[-1].body["messages"][0]["content"]  # text parts only: one string
    assert sent.startswith('<document name="invoice.pdf">\nInvoice 4471')
    assert sent.endswith("</document>What is owed?")
    bad = {**source, "data": base64.b64encode(CORRUPT_PDF).decode()}
    refused = await client.post("/v1/messages", json=_messages_body("text-only", bad))
    assert refused.status_code == 400
    error = refused.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert "messages[0].content[0].source" in error["error"]["message"]


async def test_responses_input_file(gw: Gateway) -> None:
    _, client, rec = gw
    item = {
        "role": "user",
        "content": [
            {"type": "input_text", "text": "What is owed?"},
            {"type": "input_file", "filename": "invoice.pdf", "file_data": data_url(PDF)},
        ],
    }
    resp = await client.post(
        "/v1/responses", json={"model": "text-only", "input": [item], "store": False}
    )
    assert resp.status_code == 200, resp.text
    assert rec.seen[-1].path == "/v1/responses"  # an openai deployment: passed through
    sent = rec.seen[-1].body["input"][0]["content"][1]
    assert sent["type"] == "input_text"
    assert sent["text"].startswith('<document name="invoice.pdf">\nInvoice 4471')
    native = await client.post(
        "/v1/responses", json={"model": "pdf-native", "input": [item], "store": False}
    )
    assert native.status_code == 200, native.text
    assert rec.seen[-1].body["input"][0]["content"][1] == item["content"][1]
    claude = await client.post(  # translated to chat, then to a Messages document block
        "/v1/responses", json={"model": "claude", "input": [item], "max_output_tokens": 50}
    )
    assert claude.status_code == 200, claude.text
    block = rec.seen[-1].body["messages"][-1]["content"][-1]
    assert (block["type"], block["title"]) == ("document", "invoice.pdf")
    bad = {**item, "content": [{"type": "input_file", "file_id": "file-nope"}]}
    refused = await client.post("/v1/responses", json={"model": "text-only", "input": [bad]})
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "input[0].content[0].file_id"


async def _user_key(client: httpx.AsyncClient, name: str) -> str:
    user = await client.post("/api/v1/users", json={"email": f"{name}@example.org", "name": name})
    assert user.status_code < 300, user.text
    key = await client.post("/api/v1/keys", json={"name": name, "user_id": user.json()["id"]})
    assert key.status_code < 300, key.text
    return str(key.json()["key"])


async def test_file_id_parts_are_read_with_ownership(gw: Gateway) -> None:
    _, client, rec = gw
    ann, bob = await _user_key(client, "ann"), await _user_key(client, "bob")
    upload = await client.post(
        "/v1/files",
        headers={"Authorization": f"Bearer {ann}"},
        files={"file": ("minutes.docx", DOCX)},
        data={"purpose": "user_data"},
    )
    assert upload.status_code == 200, upload.text
    part = {"type": "file", "file": {"file_id": upload.json()["id"]}}
    mine = await client.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {ann}"},
        json=_chat("text-only", part),
    )
    assert mine.status_code == 200, mine.text
    assert _sent_parts(rec)[1]["text"].startswith('<document name="minutes.docx">\n# Minutes')
    theirs = await client.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {bob}"},
        json=_chat("text-only", part),
    )
    assert theirs.status_code == 400
    assert theirs.json()["error"]["param"] == "messages[0].content[1].file.file_id"
    assert theirs.json()["error"]["code"] == "file_not_found"
    pdf_upload = await client.post(
        "/v1/files",
        headers={"Authorization": f"Bearer {ann}"},
        files={"file": ("invoice.pdf", PDF)},
        data={"purpose": "user_data"},
    )
    pdf_part = {"type": "file", "file": {"file_id": pdf_upload.json()["id"]}}
    native = await client.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {ann}"},
        json=_chat("pdf-native", pdf_part),
    )
    assert native.status_code == 200, native.text
    inlined = _sent_parts(rec)[1]  # the upstream does not know the gateway's file ids
    assert inlined == {
        "type": "file",
        "file": {"file_data": data_url(PDF), "filename": "invoice.pdf"},
    }


@pytest.mark.parametrize(
    ("part", "status", "param", "code"),
    [
        (file_part(CORRUPT_PDF, "c.pdf"), 400, "messages[0].content[1].file", "unreadable_file"),
        (
            file_part(b"\x89PNG\r\n", "x.png", "image/png"),
            400,
            "messages[0].content[1].file",
            "unsupported_file_type",
        ),
        (
            {"type": "file", "file": {"file_id": "file-missing"}},
            400,
            "messages[0].content[1].file.file_id",
            "file_not_found",
        ),
        (
            file_part(b"a" * 70000, "big.txt", "text/plain"),
            413,
            "messages[0].content[1].file",
            "file_too_large",
        ),
        (
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,@@"}},
            400,
            "messages[0].content[1].file.file_data",
            "caller_bad_request",
        ),
    ],
)
async def test_bad_documents_name_the_part(
    gw: Gateway, part: dict[str, Any], status: int, param: str, code: str
) -> None:
    app, client, rec = gw
    before = len(rec.seen)
    resp = await client.post("/v1/chat/completions", json=_chat("text-only", part))
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert (error["param"], error["code"]) == (param, code)
    assert len(rec.seen) == before  # nothing went upstream
    rows = await _rows(app)
    assert len(rows) == 1 and rows[0].status == status


async def test_total_size_cap(gw: Gateway) -> None:
    _, client, _ = gw
    parts = [file_part(b"b" * 40000, f"{n}.txt", "text/plain") for n in range(3)]
    resp = await client.post("/v1/chat/completions", json=_chat("text-only", *parts))
    assert resp.status_code == 413
    assert resp.json()["error"]["param"] == "messages[0].content[3].file"


async def test_extracted_text_counts_in_the_estimate(gw: Gateway) -> None:
    """A key allowed 1000 input tokens a minute: a 6000-character document (about 1500
    tokens once extracted; its base64 is not prompt text) is refused before any call, a
    short one passes."""
    _, client, rec = gw
    made = await client.post("/api/v1/keys", json={"name": "k", "limits": {"tpm_input": 1000}})
    assert made.status_code == 201, made.text
    auth = {"Authorization": f"Bearer {made.json()['key']}"}
    words = ("budget " * 900).encode()
    before = len(rec.seen)
    refused = await client.post(
        "/v1/chat/completions",
        headers=auth,
        json=_chat("text-only", file_part(words, "notes.txt", "text/plain")),
    )
    assert refused.status_code == 429, refused.text
    assert "tpm_input" in refused.json()["error"]["message"]
    assert len(rec.seen) == before
    short = await client.post(
        "/v1/chat/completions",
        headers=auth,
        json=_chat("text-only", file_part(b"budget " * 20, "notes.txt", "text/plain")),
    )
    assert short.status_code == 200, short.text


async def test_a_stream_counts_the_extracted_text(gw: Gateway) -> None:
    """A provider that reports no usage: the gateway's own count of the prompt, in the
    stream's usage chunk, is of the text the model was sent (the document's included)."""
    _, client, _ = gw
    words = b"budget " * 400  # 2800 characters: about 700 tokens
    body = {
        **_chat("mock-no-usage", file_part(words, "notes.txt", "text/plain")),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status_code == 200, resp.text
    chunks = [
        orjson.loads(line[6:]) for line in resp.text.split("\n\n") if line.startswith("data: {")
    ]
    usage = [c["usage"] for c in chunks if c.get("usage")]
    assert len(usage) == 1 and usage[0]["prompt_tokens"] >= 700
