"""The control plane's services and the resources they read, as one typed bundle."""

from __future__ import annotations

from dataclasses import dataclass

from sluice.alerts import AlertService
from sluice.analytics.service import Analytics
from sluice.auth.cache import KeyCache
from sluice.auth.oidc.service import SsoService
from sluice.batches.service import BatchService
from sluice.budgets.seed import SpentSince
from sluice.clock import Clock
from sluice.config import GatewayConfig
from sluice.control.cache import CacheAdmin
from sluice.control.catalog import CatalogService
from sluice.control.credentials import CredentialService
from sluice.control.files import FilesService
from sluice.control.mcp_catalog import McpCatalog
from sluice.control.mcp_servers import McpServerService
from sluice.control.policies import PolicyService
from sluice.control.sync import KeySync
from sluice.control.terms import TermsService
from sluice.routing.router import Router
from sluice.routing.table import ModelTable
from sluice.scim.service import ScimService
from sluice.settings import Settings
from sluice.storage.base import UsageRepository
from sluice.storage.console import ConsoleRepository
from sluice.tenancy.archive import Archive
from sluice.tenancy.keys import KeyService
from sluice.tenancy.service import Tenancy
from sluice.usage.bodies import BodyRepository
from sluice.usage.dead_letters import DeadLetterRepository


@dataclass(frozen=True, slots=True)
class Records:
    """The stored records the control plane reads directly (no use case of their own)."""

    spent_since: SpentSince
    bodies: BodyRepository
    dead_letters: DeadLetterRepository
    usage: UsageRepository
    console: ConsoleRepository


@dataclass(frozen=True, slots=True)
class ControlPlane:
    """Built once by the lifespan; the admin API and the console each get this object (and
    neither reaches the process's resources any other way)."""

    settings: Settings
    config: GatewayConfig
    clock: Clock
    cache: KeyCache
    """Who is asking (``authenticate``), and the directory as the data plane sees it."""
    table: ModelTable
    router: Router
    sync: KeySync
    tenancy: Tenancy
    keys: KeyService
    archive: Archive
    """Archiving organisations, teams and users (the tenancy's delete)."""
    credentials: CredentialService
    policies: PolicyService
    analytics: Analytics
    alerts: AlertService
    records: Records
    shared_state: bool
    """Whether limits, budgets and key changes are shared through Redis."""
    terms: TermsService
    """Terms of service people accept (``auth.terms``; none configured: nothing is gated)."""
    sso: SsoService
    """Console sign-in through the identity providers of ``auth.oidc`` (none: unused)."""
    scim: ScimService | None
    """SCIM provisioning of ``auth.scim`` (``None``: not configured, ``/scim/v2`` is 404)."""
    mcp: McpCatalog
    """The MCP servers a principal may use, their tools (through the process's one tool
    runner, ``mcp.runner``) and their health."""
    mcp_servers: McpServerService
    """The MCP servers of the config and those admins store (``/api/v1/mcp/servers``)."""
    batches: BatchService
    """Batches (``/v1/batches``): create, read, list, cancel (docs/batches.md)."""
    response_cache: CacheAdmin
    """The response cache: status, invalidation, warm-up (``/api/v1/cache``)."""
    catalog: CatalogService
    """Providers, models and prices: the config file's and the stored ones, served as one
    table (``/api/v1/models``, ``/api/v1/providers``, docs/models-admin.md)."""
    files: FilesService
    """Files (``/v1/files``, the console's Files page); what the batch worker reads and
    writes (``sluice.files.base.FileAccess``)."""
