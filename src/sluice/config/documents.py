"""The ``documents`` section of the gateway config: files attached to chat messages
(docs/documents.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

MIB = 1024 * 1024


class DocumentsConfig(BaseModel):
    """Bounds on documents in chat: ``file`` parts (OpenAI chat) and ``document`` blocks
    (Anthropic Messages). A document a deployment does not take natively has its text
    extracted in the gateway; these bound that work, whatever the caller sends."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    """``false``: file parts are forwarded as they are sent (a ``file_id`` is then refused,
    since no upstream knows the gateway's file ids)."""
    max_file_bytes: Annotated[int, Field(gt=0, le=512 * MIB)] = 20 * MIB
    """Largest single document, decoded (413 naming the part beyond)."""
    max_total_bytes: Annotated[int, Field(gt=0, le=2048 * MIB)] = 50 * MIB
    """Largest sum of a request's documents, decoded (413 naming the part that passes it)."""
    max_files: Annotated[int, Field(ge=1, le=1000)] = 20
    """Most documents in one request (400 naming the first one over)."""
    max_chars: Annotated[int, Field(gt=0, le=100_000_000)] = 1_000_000
    """Most characters of text kept from one document; the extraction stops there and the
    text ends with a note that it was cut."""
    max_pages: Annotated[int, Field(gt=0, le=100_000)] = 2000
    """Most pages (PDF), slides (PPTX) or sheets (XLSX) read from one document."""
    max_unzipped_bytes: Annotated[int, Field(gt=0, le=8192 * MIB)] = 200 * MIB
    """Largest uncompressed size of a DOCX, XLSX or PPTX (they are zip archives): a zip
    bomb is refused before any library opens it."""
    extract_timeout_s: Annotated[float, Field(gt=0, le=600)] = 20.0
    """Deadline of one document's extraction (400 naming the part past it). The worker
    thread is told to stop and does so at its next page, sheet or paragraph."""
    workers: Annotated[int, Field(ge=1, le=64)] = 2
    """Threads that extract text (outside the event loop); more documents wait their turn,
    within their deadline."""

    @model_validator(mode="after")
    def _total_covers_one(self) -> DocumentsConfig:
        if self.max_total_bytes < self.max_file_bytes:
            raise ValueError("documents.max_total_bytes must be at least max_file_bytes")
        return self
