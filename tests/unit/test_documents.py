"""The documents unit: each extractor on real documents made here, the reader's bounds
(characters, pages, unzipped size, deadline) and errors, and finding document parts in a
request."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import threading
import zipfile
from collections.abc import AsyncIterator

import orjson
import pytest

from sluice.config.documents import DocumentsConfig
from sluice.config.model import DeploymentConfig
from sluice.documents import kinds
from sluice.documents.extractors import Limits, Text
from sluice.documents.reader import CUT_NOTE, DocumentReader
from sluice.documents.request import find, frame, may_carry
from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.types import Endpoint, ProviderRequest
from tests.documents_support import (
    CORRUPT_PDF,
    file_part,
    make_docx,
    make_pdf,
    make_pptx,
    make_xlsx,
)


@pytest.fixture
async def reader() -> AsyncIterator[DocumentReader]:
    r = DocumentReader(DocumentsConfig())
    yield r
    r.close()


async def test_pdf_pages_in_order(reader: DocumentReader) -> None:
    data = make_pdf([f"Page {n} says budget line {n * 7}" for n in range(1, 21)])
    text = await reader.text(data, kinds.PDF, param="p", name="r.pdf")
    positions = [text.index(f"Page {n} says budget line {n * 7}") for n in range(1, 21)]
    assert positions == sorted(positions)


async def test_docx_headings_paragraphs_and_tables(reader: DocumentReader) -> None:
    data = make_docx("Quarterly report", ["Spend rose.", "Keys rotated."], [["team", "usd"]])
    text = await reader.text(data, kinds.DOCX, param="p", name="r.docx")
    assert text == "# Quarterly report\nSpend rose.\nKeys rotated.\nteam | usd"


async def test_xlsx_sheets_and_rows(reader: DocumentReader) -> None:
    data = make_xlsx({"Budget": [["team", "usd"], ["ml", 12.5], [None, None]], "Other": [["x"]]})
    text = await reader.text(data, kinds.XLSX, param="p", name="b.xlsx")
    assert text == "## Budget\nteam | usd\nml | 12.5\n\n## Other\nx"


async def test_pptx_slides(reader: DocumentReader) -> None:
    data = make_pptx([("Roadmap", "Ship documents"), ("Risks", "PDF bombs")], [["a", "b"]])
    text = await reader.text(data, kinds.PPTX, param="p", name="d.pptx")
    assert text == "## Slide 1\nRoadmap\nShip documents\n\n## Slide 2\nRisks\nPDF bombs\na | b"


async def test_html_text_without_scripts(reader: DocumentReader) -> None:
    page = b"<html><head><title>t</title><style>p{}</style></head><body><h1>Title</h1>"
    page += b"<p>One &amp; two</p><script>alert(1)</script><p>three</p></body></html>"
    text = await reader.text(page, kinds.HTML, param="p", name="a.html")
    assert text.split() == ["Title", "One", "&", "two", "three"]


async def test_plain_text_utf8_and_cp1252(reader: DocumentReader) -> None:
    utf8 = await reader.text("café ✓".encode(), kinds.PLAIN, param="p", name="a.txt")
    legacy = await reader.text("café".encode("cp1252"), kinds.MARKDOWN, param="p", name="a.md")
    assert (utf8, legacy) == ("café ✓", "café")


async def test_binary_as_text_is_unreadable(reader: DocumentReader) -> None:
    with pytest.raises(GatewayError) as err:
        await reader.text(
            b"\x89PNG\x00\x00", kinds.PLAIN, param="messages[0].content[1].file", name="x"
        )
    assert (err.value.status, err.value.param, err.value.code) == (
        400,
        "messages[0].content[1].file",
        "unreadable_file",
    )


async def test_corrupt_pdf_is_a_400_naming_the_part(reader: DocumentReader) -> None:
    with pytest.raises(GatewayError) as err:
        await reader.text(CORRUPT_PDF, kinds.PDF, param="messages[2].content[0].file", name="c.pdf")
    assert err.value.kind is ErrorKind.CALLER_BAD_REQUEST
    assert (err.value.param, err.value.code) == ("messages[2].content[0].file", "unreadable_file")
    assert "'c.pdf'" in err.value.message


async def test_unsupported_type(reader: DocumentReader) -> None:
    with pytest.raises(GatewayError) as err:
        await reader.text(b"GIF89a", "image/gif", param="m", name="x.gif")
    assert (err.value.status, err.value.code) == (400, "unsupported_file_type")


async def test_text_is_cut_at_max_chars_and_pages() -> None:
    r = DocumentReader(DocumentsConfig(max_chars=30, max_pages=2))
    try:
        long = await r.text(b"a" * 100, kinds.PLAIN, param="p", name="a.txt")
        pages = await r.text(make_pdf(["one", "two", "three"]), kinds.PDF, param="p", name="p")
    finally:
        r.close()
    assert long == "a" * 30 + CUT_NOTE
    assert pages.startswith("one") and "two" in pages and "three" not in pages
    assert pages.endswith(CUT_NOTE)


async def test_zip_bomb_is_refused_before_the_library_reads_it() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * 2_000_000)
    r = DocumentReader(DocumentsConfig(max_unzipped_bytes=1_000_000))
    try:
        with pytest.raises(GatewayError) as err:
            await r.text(out.getvalue(), kinds.DOCX, param="m", name="bomb.docx")
    finally:
        r.close()
    assert (err.value.status, err.value.code) == (413, "file_too_large")
    assert len(out.getvalue()) < 10_000


async def test_deadline_stops_a_slow_extractor() -> None:
    """An extractor that never finishes on its own: the request gets a 400 at the deadline
    and the worker thread is told to stop (it checks like every extractor does)."""
    stopped = threading.Event()

    def slow(data: bytes, limits: Limits) -> Text:
        limits.stop.wait(timeout=30)  # only the reader's stop signal ends it
        stopped.set()
        return Text(limits)

    r = DocumentReader(DocumentsConfig(extract_timeout_s=0.05), extractors={kinds.PDF: slow})
    try:
        with pytest.raises(GatewayError) as err:
            await r.text(b"%PDF", kinds.PDF, param="messages[0].content[0].file", name="s.pdf")
        assert await asyncio.to_thread(stopped.wait, 10)
    finally:
        r.close()
    assert (err.value.status, err.value.code) == (400, "document_timeout")
    assert err.value.param == "messages[0].content[0].file"


def test_media_type_from_declared_or_name() -> None:
    assert kinds.media_type("application/pdf", "x.bin") == kinds.PDF
    assert kinds.media_type("text/markdown; charset=utf-8", None) == kinds.MARKDOWN
    assert kinds.media_type("application/octet-stream", "Report.DOCX") == kinds.DOCX
    assert kinds.media_type(None, "notes") == ""
    assert kinds.media_type("text/x-markdown", None) == kinds.MARKDOWN


def _chat(*content: object) -> ProviderRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": list(content)}]}
    return ProviderRequest(Endpoint.CHAT, body, orjson.dumps(body), "m")


def test_find_reads_inline_and_id_parts() -> None:
    pdf = make_pdf(["x"])
    req = _chat(
        {"type": "text", "text": "summarise"},
        file_part(pdf, "a.pdf"),
        {"type": "file", "file": {"file_id": "file-abc"}},
    )
    docs = find(req, max_files=5)
    assert [(d.param, d.name, d.media_type, d.file_id) for d in docs] == [
        ("messages[0].content[1].file", "a.pdf", kinds.PDF, None),
        ("messages[0].content[2].file", "file-abc", "", "file-abc"),
    ]
    assert docs[0].data == pdf
    assert may_carry(req) and not may_carry(_chat({"type": "text", "text": "hi"}))


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "file", "file": "x"}, "messages[0].content[0].file"),
        ({"type": "file", "file": {}}, "messages[0].content[0].file"),
        (
            {"type": "file", "file": {"file_data": "data:application/pdf,plain"}},
            "messages[0].content[0].file.file_data",
        ),
        (
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,***"}},
            "messages[0].content[0].file.file_data",
        ),
    ],
)
def test_find_names_a_malformed_part(part: dict[str, object], param: str) -> None:
    with pytest.raises(BadRequest) as err:
        find(_chat(part), max_files=5)
    assert err.value.param == param


def test_find_counts_documents() -> None:
    parts = [file_part(b"x", f"{n}.txt", kinds.PLAIN) for n in range(3)]
    with pytest.raises(BadRequest) as err:
        find(_chat(*parts), max_files=2)
    assert err.value.param == "messages[0].content[2].file"


def test_messages_document_blocks() -> None:
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "document", "source": {"type": "text", "data": "plain words"}},
                    {
                        "type": "document",
                        "title": "r.pdf",
                        "source": {
                            "type": "base64",
                            "media_type": "application/pdf",
                            "data": "JVBERg==",
                        },
                    },
                    {"type": "document", "source": {"type": "url", "url": "https://x/y.pdf"}},
                ],
            }
        ],
    }
    req = ProviderRequest(Endpoint.MESSAGES, body, orjson.dumps(body), "m")
    docs = find(req, max_files=5)
    assert [(d.param, d.name, d.media_type, d.text) for d in docs] == [
        ("messages[0].content[0].source", "document-1", kinds.PLAIN, "plain words"),
        ("messages[0].content[1].source", "r.pdf", kinds.PDF, None),
    ]
    assert frame(docs[0]) == '<document name="document-1">\nplain words\n</document>'


def test_importing_the_app_loads_no_document_library() -> None:
    """The libraries load on first use (in the extractor), never with the app."""
    code = (
        "import sys, sluice.app\n"
        "print(sorted(m for m in ('pypdf', 'docx', 'openpyxl', 'pptx') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_config_bounds() -> None:
    with pytest.raises(ValueError, match="max_total_bytes"):
        DocumentsConfig(max_file_bytes=100, max_total_bytes=50)
    with pytest.raises(ValueError, match="extra"):
        DocumentsConfig.model_validate({"max_file_mb": 3})
    with pytest.raises(ValueError, match="file_types"):
        DeploymentConfig.model_validate({"provider": "p", "model": "m", "file_types": ["pdf"]})
    dep = DeploymentConfig.model_validate(
        {"provider": "p", "model": "m", "file_types": ["application/pdf"]}
    )
    assert dep.file_types == ("application/pdf",)
