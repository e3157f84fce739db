"""The document types the gateway reads, by media type, and how a name maps to one."""

from __future__ import annotations

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
HTML = "text/html"
MARKDOWN = "text/markdown"
PLAIN = "text/plain"
CSV = "text/csv"
JSON = "application/json"

BY_EXTENSION: dict[str, str] = {
    "pdf": PDF,
    "docx": DOCX,
    "xlsx": XLSX,
    "pptx": PPTX,
    "html": HTML,
    "htm": HTML,
    "md": MARKDOWN,
    "markdown": MARKDOWN,
    "txt": PLAIN,
    "text": PLAIN,
    "log": PLAIN,
    "csv": CSV,
    "json": JSON,
}

ALIASES: dict[str, str] = {
    "text/x-markdown": MARKDOWN,
    "application/xhtml+xml": HTML,
    "application/csv": CSV,
}

GENERIC = frozenset({"", "application/octet-stream", "binary/octet-stream"})
"""Media types that say nothing: the file name's extension decides."""


def media_type(declared: str | None, name: str | None) -> str:
    """The document's media type: the declared one (parameters dropped, aliases folded),
    or, when it says nothing, the one of the name's extension (``""`` when unknown)."""
    kind = (declared or "").split(";", 1)[0].strip().lower()
    kind = ALIASES.get(kind, kind)
    if kind in GENERIC and name and "." in name:
        return BY_EXTENSION.get(name.rsplit(".", 1)[1].lower(), "")
    return "" if kind in GENERIC else kind
