"""Stage 1, access: the model a request may use, and the output it may ask of it.

It runs before the request context is built, since the context carries its result (the
resolved model).
"""

from __future__ import annotations

from sluice.auth.principal import Principal
from sluice.pipeline import bounds
from sluice.routing.table import ModelEntry, ModelTable
from sluice.types import ProviderRequest


def admit(table: ModelTable, principal: Principal, req: ProviderRequest) -> ModelEntry:
    """The model ``req`` names, if ``principal`` may use it (404 ``caller_not_found``
    otherwise, the same answer as for a model that does not exist), with the request
    within the model's output bounds (400 naming the field)."""
    entry = table.resolve(req.model, allowed=principal.may_use)
    bounds.check(req, entry.bounds)
    return entry
