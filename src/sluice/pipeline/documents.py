"""Stage 1b, documents: a request's attached files found, read and (where some deployment
of its model needs text) extracted, before its estimate is held.

Done once per request, before the hold, so the extracted text counts in the estimate. A
fallback to a model with a deployment that needs text no other one did extracts on its
attempt, once (:meth:`sluice.documents.request.Documents.for_deployment` caches the text).
Requests without documents pay a byte search of their body and nothing else; only those
naming a ``file_id`` read the database.
"""

from __future__ import annotations

from sluice.documents.request import Documents, find, may_carry
from sluice.pipeline.context import RequestContext
from sluice.pipeline.services import Services


async def prepare(svc: Services, ctx: RequestContext) -> Documents | None:
    """The request's documents (``None`` when it has none, or documents are off); raises
    400/413 naming the part for a malformed, missing, unsupported, unreadable or oversized
    one."""
    reader = svc.documents
    req = ctx.request
    if reader is None or not may_carry(req):
        return None
    found = find(req, max_files=reader.config.max_files)
    if not found:
        return None
    docs = Documents(reader, req, found)
    await docs.resolve(ctx.arrival.principal)
    # Text is needed now for any type some deployment of the model does not take natively.
    everywhere = frozenset.intersection(*(d.file_types for d in ctx.entry.deployments))
    await docs.extract([d for d in found if d.media_type not in everywhere and not d.messages_text])
    return docs
