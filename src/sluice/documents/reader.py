"""The bounded extraction service: text out of a document, in a worker thread, under a
deadline, its failures as 4xx answers naming the request's part."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

from sluice.config.documents import DocumentsConfig
from sluice.documents.extractors import (
    EXTRACTORS,
    Extractor,
    Limits,
    Stopped,
    TooLarge,
    Unreadable,
)
from sluice.errors import ErrorKind, GatewayError

if TYPE_CHECKING:
    from sluice.auth.principal import Principal

log = logging.getLogger("sluice.documents")

CUT_NOTE = "\n[the document was cut here: it is longer than the gateway passes on]"


class FileSource(Protocol):
    """Where a ``file_id`` part's bytes come from: the Files API's store, with its
    ownership rules (docs/files-and-batches.md)."""

    async def open(
        self, principal: Principal, file_id: str, *, max_bytes: int
    ) -> tuple[str, bytes]:
        """The file's name and whole content, if ``principal`` may see it. Another owner's
        or an unknown file raises ``caller_not_found``; one larger than ``max_bytes``
        raises ``caller_payload_too_large``."""
        ...


def unsupported_type(media_type: str, *, param: str) -> GatewayError:
    shown = media_type or "unknown"
    return GatewayError(
        ErrorKind.CALLER_UNSUPPORTED,
        f"{param}: the document type {shown!r} is not supported: send PDF, DOCX, XLSX, PPTX, HTML, "
        "Markdown, CSV, JSON or plain text (with a file name ending in its extension)",
        param=param,
        code="unsupported_file_type",
    )


class DocumentReader:
    """Extracts documents' text off the event loop. Owns its thread pool: :meth:`close`
    it (the lifespan does)."""

    def __init__(
        self,
        config: DocumentsConfig,
        *,
        files: FileSource | None = None,
        extractors: Mapping[str, Extractor] = EXTRACTORS,
    ) -> None:
        """``files``: where ``file_id`` parts are read (``None``: they are refused);
        ``extractors``: media type → extractor."""
        self.config = config
        self.files = files
        self._extractors = extractors
        self._pool = ThreadPoolExecutor(
            max_workers=config.workers, thread_name_prefix="sluice-documents"
        )

    def supports(self, media_type: str) -> bool:
        return media_type in self._extractors

    async def text(self, data: bytes, media_type: str, *, param: str, name: str) -> str:
        """The document's text (cut at ``max_chars``, with a note saying so). Raises 400
        naming ``param`` for a type with no extractor, an unreadable document or one whose
        extraction passed its deadline; 413 for an Office archive that unpacks too large."""
        extractor = self._extractors.get(media_type)
        if extractor is None:
            raise unsupported_type(media_type, param=param)
        config = self.config
        stop = threading.Event()
        limits = Limits(config.max_chars, config.max_pages, config.max_unzipped_bytes, stop)
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._pool, _run, extractor, data, limits),
                timeout=config.extract_timeout_s,
            )
        except TimeoutError:
            raise GatewayError(
                ErrorKind.CALLER_BAD_REQUEST,
                f"{param}: the document {name!r} could not be read within "
                f"{config.extract_timeout_s:g} s; send a smaller or simpler file",
                param=param,
                code="document_timeout",
            ) from None
        except Unreadable as exc:
            raise GatewayError(
                ErrorKind.CALLER_BAD_REQUEST,
                f"{param}: the document {name!r} could not be read as {media_type}: {exc}",
                param=param,
                code="unreadable_file",
            ) from None
        except TooLarge as exc:
            raise GatewayError(
                ErrorKind.CALLER_PAYLOAD_TOO_LARGE,
                f"{param}: the document {name!r} is too large: {exc}",
                param=param,
                code="file_too_large",
            ) from None
        finally:
            stop.set()  # past the deadline, or the request went away: the thread stops soon

    def close(self) -> None:
        """Stop taking work; threads still extracting stop at their next check."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _run(extractor: Extractor, data: bytes, limits: Limits) -> str:
    """In a worker thread: the extractor's text; a library's own failure on bad bytes
    becomes :class:`Unreadable` (libraries raise anything on corrupt input)."""
    if limits.stop.is_set():
        raise Stopped
    try:
        text = extractor(data, limits)
    except (Stopped, Unreadable, TooLarge):
        raise
    except Exception as exc:
        log.debug("document extraction failed", exc_info=exc)
        raise Unreadable(f"{type(exc).__name__}: {str(exc)[:200]}") from None
    return text.value + CUT_NOTE if text.cut else text.value
