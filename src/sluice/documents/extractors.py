"""Text out of document bytes, one function per media type (:data:`EXTRACTORS`).

Each extractor runs in a worker thread (:mod:`sluice.documents.reader`), imports its library
on first use (never at ``import sluice.app``), and is bounded by :class:`Limits`: it stops
at ``max_chars`` (the text is cut), at ``max_pages`` pages, slides or sheets, and raises
:class:`Stopped` at its next page, sheet, row or paragraph once the reader's deadline has
set ``stop``. Bytes that are not a readable document of the type raise :class:`Unreadable`;
an archive whose content is larger than allowed raises :class:`TooLarge`.

Libraries (docs/documents.md has the measurements): ``pypdf`` (PDF), ``python-docx``
(DOCX), ``openpyxl`` (XLSX), ``python-pptx`` (PPTX); HTML, Markdown and plain text with the
standard library.
"""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from sluice.documents import kinds


class Unreadable(Exception):
    """The bytes are not a readable document of their type; the message says why."""


class TooLarge(Exception):
    """The document unpacks to more than allowed."""


class Stopped(Exception):
    """The deadline passed: the extraction gave up."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one extraction may do."""

    max_chars: int
    """Characters kept; the text is cut there."""
    max_pages: int
    """Pages, slides or sheets read."""
    max_unzipped_bytes: int
    """Uncompressed size of an Office (zip) document."""
    stop: threading.Event
    """Set by the reader when the deadline passes (or the request ends): stop soon."""


Extractor = Callable[[bytes, Limits], "Text"]
"""An extractor: the document's bytes → its text, within the limits (runs in a thread)."""

MAX_ZIP_MEMBERS = 10_000


class Text:
    """Text collected under the character cap, checking ``stop`` at each piece."""

    def __init__(self, limits: Limits) -> None:
        self._parts: list[str] = []
        self._left = limits.max_chars
        self._stop = limits.stop
        self.cut = False
        """The cap (characters or pages) left part of the document out."""

    def check(self) -> None:
        if self._stop.is_set():
            raise Stopped

    def add(self, piece: str) -> bool:
        """Keep ``piece`` (cut at the cap); ``False`` once the cap is reached."""
        self.check()
        if len(piece) >= self._left:
            self._parts.append(piece[: self._left])
            self._left = 0
            self.cut = True
            return False
        self._parts.append(piece)
        self._left -= len(piece)
        return True

    @property
    def value(self) -> str:
        return "".join(self._parts).strip()


def _pdf(data: bytes, limits: Limits) -> Text:
    from pypdf import PdfReader

    text = Text(limits)
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise Unreadable("the PDF is encrypted")
    for n, page in enumerate(reader.pages):
        if n >= limits.max_pages:
            text.cut = True
            break
        text.check()
        if not text.add(page.extract_text() + "\n\n"):
            break
    return text


def _check_zip(data: bytes, limits: Limits) -> None:
    """An Office document is a zip archive: refuse a broken one, or one that unpacks to more
    than allowed, before its library reads it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise Unreadable(f"not a valid Office (zip) document ({exc})") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise Unreadable(f"the archive has more than {MAX_ZIP_MEMBERS} members")
    if sum(m.file_size for m in members) > limits.max_unzipped_bytes:
        raise TooLarge(f"it unpacks to more than {limits.max_unzipped_bytes} bytes")


def _docx(data: bytes, limits: Limits) -> Text:
    _check_zip(data, limits)
    from docx import Document
    from docx.table import Table

    text = Text(limits)
    for block in Document(io.BytesIO(data)).iter_inner_content():
        if isinstance(block, Table):
            piece = _rows(text, ([cell.text for cell in row.cells] for row in block.rows))
        else:
            # The style's id, not ``block.style`` (a lookup in the styles part per paragraph,
            # measured 5 times slower over a whole document).
            style = block._p.style or ""
            level = style.removeprefix("Heading")
            mark = "#" * int(level) + " " if level.isdigit() and style != level else ""
            piece = mark + block.text + "\n"
        if not text.add(piece):
            break
    return text


def _rows(text: Text, rows: Any) -> str:
    """Table rows as ``a | b | c`` lines, empty rows left out."""
    lines = []
    for row in rows:
        text.check()
        cells = ["" if c is None else str(c).strip() for c in row]
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines) + "\n\n" if lines else ""


def _xlsx(data: bytes, limits: Limits) -> Text:
    _check_zip(data, limits)
    from openpyxl import load_workbook

    text = Text(limits)
    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        for n, sheet in enumerate(book.worksheets):
            if n >= limits.max_pages:
                text.cut = True
                break
            body = _rows(text, sheet.iter_rows(values_only=True))
            if not text.add(f"## {sheet.title}\n{body}"):
                break
    finally:
        book.close()
    return text


def _pptx(data: bytes, limits: Limits) -> Text:
    _check_zip(data, limits)
    from pptx import Presentation

    text = Text(limits)
    for n, slide in enumerate(Presentation(io.BytesIO(data)).slides):
        if n >= limits.max_pages:
            text.cut = True
            break
        pieces = [f"## Slide {n + 1}\n"]
        for shape in slide.shapes:
            if shape.has_text_frame:
                pieces.append(shape.text_frame.text + "\n")
            elif shape.has_table:
                rows = ([cell.text for cell in row.cells] for row in shape.table.rows)
                pieces.append(_rows(text, rows))
        if not text.add("".join(pieces) + "\n"):
            break
    return text


def _decode(data: bytes) -> str:
    if b"\x00" in data:
        raise Unreadable("it holds binary data, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _plain(data: bytes, limits: Limits) -> Text:
    text = Text(limits)
    text.add(_decode(data))
    return text


_BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})
_HIDDEN = frozenset({"script", "style", "template", "noscript", "head"})


class _HtmlText(HTMLParser):
    def __init__(self, text: Text) -> None:
        super().__init__(convert_charrefs=True)
        self.text = text
        self.hidden = 0
        self.full = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _BLOCKS:
            self._add("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self._add("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self._add(data)

    def _add(self, piece: str) -> None:
        if not self.full and not self.text.add(piece):
            self.full = True


def _html(data: bytes, limits: Limits) -> Text:
    text = Text(limits)
    parser = _HtmlText(text)
    source = _decode(data)
    step = 65536  # fed in pieces: the stop flag and the cap are checked between them
    for start in range(0, len(source), step):
        if parser.full:
            break
        text.check()
        parser.feed(source[start : start + step])
    parser.close()
    return text


EXTRACTORS: Mapping[str, Extractor] = {
    kinds.PDF: _pdf,
    kinds.DOCX: _docx,
    kinds.XLSX: _xlsx,
    kinds.PPTX: _pptx,
    kinds.HTML: _html,
    kinds.MARKDOWN: _plain,
    kinds.PLAIN: _plain,
    kinds.CSV: _plain,
    kinds.JSON: _plain,
}
"""Media type → extractor. The reader takes another table in tests (a slow extractor)."""
