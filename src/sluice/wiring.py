"""Builders the lifespan composes the process from: governance backends, the router, alerts,
retention, and the control plane's services. Concrete backends are chosen here (and in
``sluice.lifespan``) only."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from sluice.alerts import AlertService, WatchedDeployment, build_alert_service
from sluice.analytics.service import Analytics
from sluice.auth.oidc.service import SsoService
from sluice.auth.principal import MASTER, MASTER_KEY_ID, Principal
from sluice.batches.lines import dialects as batch_dialects
from sluice.batches.service import BatchService
from sluice.batches.worker import BatchWorker, Observer
from sluice.budgets.base import BudgetStore
from sluice.budgets.memory import MemoryBudgets
from sluice.budgets.pricing import known_context_window
from sluice.cache.base import AnswerStore, SemanticIndex, Vector
from sluice.cache.keys import generation
from sluice.cache.memory import MemoryAnswers
from sluice.cache.service import ResponseCache
from sluice.clock import Clock
from sluice.config import GatewayConfig
from sluice.control.cache import CacheAdmin
from sluice.control.catalog import CatalogService
from sluice.control.credentials import CredentialService
from sluice.control.files import FilesService
from sluice.control.mcp_catalog import McpCatalog
from sluice.control.mcp_servers import McpServerService
from sluice.control.plane import ControlPlane, Records
from sluice.control.policies import PolicyService
from sluice.control.sync import KeySync
from sluice.control.terms import TermsService
from sluice.credentials.crypto import Sealer
from sluice.files.base import FileAccess
from sluice.limits.base import Limiter
from sluice.limits.memory import MemoryLimiter
from sluice.mcp.quota import admit_call
from sluice.pipeline.probe import DeploymentProbe
from sluice.providers.base import Provider
from sluice.providers.batch_api import BatchApi
from sluice.providers.build import build_batch_api, build_provider
from sluice.routing.breaker import BreakerConfig, MemoryBreakers
from sluice.routing.health import DeploymentStats
from sluice.routing.live import LiveTable
from sluice.routing.policy import PolicyEngine
from sluice.routing.router import Router
from sluice.routing.table import ModelTable
from sluice.runtime import Runtime
from sluice.scim.service import ScimService
from sluice.settings import Settings
from sluice.storage.sql.engine import worker_priority
from sluice.storage.sql.repository import SqlStorage
from sluice.tenancy.archive import Archive
from sluice.tenancy.keys import KeyService
from sluice.tenancy.service import Tenancy
from sluice.usage.retention import Retention, Target

log = logging.getLogger("sluice")

if TYPE_CHECKING:
    from sluice.cache.semantic.index import SemanticCache
    from sluice.mcp.tools import ToolRunner
    from sluice.routing.breaker_redis import RedisBreakers


def build_providers(config: GatewayConfig) -> dict[str, Provider]:
    return {name: build_provider(name, cfg) for name, cfg in config.providers.items()}


def build_batch_apis(config: GatewayConfig) -> dict[str, BatchApi]:
    """The batch API of each provider some deployment delegates batches to."""
    wanted = {
        d.provider
        for m in config.models
        for d in m.deployments
        if d.batch is not None and d.batch.mode == "delegate"
    }
    apis = {name: build_batch_api(name, config.providers[name]) for name in sorted(wanted)}
    return {name: api for name, api in apis.items() if api is not None}


def governance(clock: Clock, redis: Any, *, lease_s: float) -> tuple[Limiter, BudgetStore]:
    """Rate limits and budgets: in this process, or shared through Redis."""
    if redis is not None:  # the Redis client is imported only when one is configured
        from sluice.budgets.redis import RedisBudgets
        from sluice.limits.redis import RedisLimiter

        return RedisLimiter(redis, lease_s=lease_s), RedisBudgets(redis, clock)
    return MemoryLimiter(clock), MemoryBudgets(clock)


def response_cache(
    config: GatewayConfig,
    clock: Clock,
    redis: Any,
    *,
    semantic: SemanticIndex | None = None,
    team_name: Callable[[str], str | None] | None = None,
) -> ResponseCache | None:
    """The response cache, or ``None`` when no model or team enables it (then the data plane
    pays one attribute check). ``semantic``: the semantic index (``None``: semantic mode
    answers from exact entries only); it may also be set on the result later."""
    section = config.cache
    overrides = tuple(m.cache for m in config.models)
    if not section.any_enabled(overrides):
        return None
    if section.backend == "redis" and redis is None:
        raise ValueError("cache.backend: redis needs SLUICE_REDIS_URL")
    store: AnswerStore
    extra: dict[str, Any] = {}
    if redis is not None and section.backend != "memory":
        from sluice.cache.redis import RedisAnswers

        ttls = [section.ttl_s, *(o.ttl_s for o in overrides if o and o.ttl_s)]
        ttls += [t.ttl_s for t in section.teams.values() if t.ttl_s]
        store = RedisAnswers(redis, clock, max_ttl_s=max(ttls))
    else:
        memory = MemoryAnswers(clock, max_bytes=section.max_bytes)
        store = memory
        extra = {"store_bytes": lambda: memory.bytes, "store_evictions": lambda: memory.evictions}
    if team_name is not None:
        extra["team_name"] = team_name
    return ResponseCache(
        config=section,
        store=store,
        models={m.name: m.cache for m in config.models},
        generations={
            m.name: generation(d.model_dump(mode="json") for d in m.deployments)
            for m in config.models
        },
        semantic=semantic,
        **extra,
    )


def semantic_cache(rt: Runtime, control: ControlPlane) -> SemanticCache | None:
    """Give the response cache its semantic index when a model, a team or the section asks
    for semantic mode: prompts embedded by ``cache.embedding_model`` through the pipeline (the
    request's caller pays; warm-up's admin), entries in the database. ``None``: no index (the
    sweep task then has nothing to do)."""
    cache = rt.cache
    if cache is None:
        return None
    section = rt.config.cache
    model = section.embedding_model
    if model is None or not section.any_semantic(tuple(m.cache for m in rt.config.models)):
        return None
    from sluice.cache.semantic import build_semantic_index
    from sluice.pipeline.cache_embed import PipelineEmbedder

    index = build_semantic_index(repo=rt.storage.semantic, embedding_model=model, clock=rt.clock)
    embedder = PipelineEmbedder(rt.services, model, record=rt.usage.record)

    def embed_for(svc: Any, ctx: Any, model: str, text: str) -> Awaitable[Vector | None]:
        return embedder.embed(text, ctx=ctx)

    cache.semantic, cache.embed_for = index, embed_for
    control.response_cache.embed = embedder.embed_as
    return index


def router(
    config: GatewayConfig, table: ModelTable, clock: Clock, redis: Any
) -> tuple[Router, MemoryBreakers | RedisBreakers]:
    breaker_config = BreakerConfig.from_settings(config.routing.breaker)
    breakers: MemoryBreakers | RedisBreakers
    if redis is not None:
        from sluice.routing.breaker_redis import RedisBreakers

        keys = [d.key for e in table.entries for d in e.deployments]
        breakers = RedisBreakers(redis, clock, breaker_config, keys=keys)
    else:
        breakers = MemoryBreakers(clock, breaker_config)
    policy = PolicyEngine(config.routing.policies, clock=clock)
    if config.routing.policies:
        policy.load()  # a bad policy file stops the start, naming the file and line
    built = Router(
        table,
        stats=DeploymentStats(clock, window_s=config.routing.breaker.window_s),
        breakers=breakers,
        config=config.routing,
        clock=clock,
        policy=policy,
        gateway=config,
    )
    return built, breakers


def urgency(storage: SqlStorage) -> Callable[[bool], None] | None:
    priority = worker_priority(storage.engine)
    return priority.urgent if priority is not None else None


def retention(rt: Runtime) -> Retention:
    storage = rt.storage
    targets = [Target("usage_events", storage.usage, rt.settings.usage_retention_days)]
    if rt.body_policy is not None:
        targets.append(Target("usage_bodies", storage.bodies, rt.body_policy.retention_days))
    return Retention(targets, clock=rt.clock, interval_s=rt.settings.usage_purge_interval_s)


def files(rt: Runtime) -> FilesService:
    """The files service over the configured blob store (``files.backend``)."""
    config = rt.config.files
    if config.backend == "s3":
        from sluice.files.s3 import S3BlobStore

        assert config.s3 is not None  # the config model requires it for this backend
        return FilesService(
            rt.storage.files, S3BlobStore.build(config.s3), config=config, clock=rt.clock
        )
    from sluice.files.local import LocalBlobStore

    local = LocalBlobStore(config.directory or rt.settings.data_dir / "files")
    return FilesService(rt.storage.files, local, config=config, clock=rt.clock, sweep=local.sweep)


def alerts(rt: Runtime) -> AlertService:
    return build_alert_service(
        rt.config.alerts,
        repo=rt.storage.alerts,
        session=rt.session,
        budgets=rt.budgets,
        principals=rt.keys.principals,
        breaker_state=rt.router.breakers.state,
        deployments=[
            WatchedDeployment(d.key, e.name, d.provider_name, d.upstream_model)
            for e in rt.table.entries
            for d in e.deployments
        ],
        clock=rt.clock,
    )


def _sealer(settings: Settings) -> Sealer | None:
    """Seals stored provider credentials; none without ``SLUICE_SECRET_KEY``."""
    key = settings.secret_key
    return Sealer(key.get_secret_value()) if key else None


def tool_runner(rt: Runtime) -> ToolRunner:
    """The process's one MCP tool runner: ``/mcp``, ``/v1/responses`` and the console use it
    (built on first use: :class:`~sluice.control.mcp_catalog.McpCatalog`)."""
    from sluice.mcp.tools import ToolRunner

    return ToolRunner(
        rt.mcp,
        rt.usage.record,
        clock=rt.clock,
        max_result_bytes=rt.config.mcp.max_result_bytes,
        admit=functools.partial(admit_call, rt.limiter),
    )


def batches(rt: Runtime, files: FileAccess | None) -> BatchService:
    return BatchService(
        rt.storage.batches,
        config=rt.config.batches,
        clock=rt.clock,
        files=files,
        table=rt.table,
        dialects=batch_dialects(rt.storage.responses),
    )


def batch_worker(
    rt: Runtime, service: BatchService, files: FileAccess | None, observer: Observer | None
) -> BatchWorker | None:
    """The worker that runs batch lines in this process (``None``: batches are off, or no
    files API to write their output to). Creating a batch through this process wakes it."""
    if files is None or not rt.config.batches.enabled:
        return None
    keys = rt.keys

    def principal(key_id: str) -> Principal | None:
        return MASTER if key_id == MASTER_KEY_ID else keys.active_principal(key_id)

    worker = BatchWorker(
        rt.services,
        rt.storage.batches,
        files=files,
        dialects=batch_dialects(rt.storage.responses),
        principal=principal,
        record=rt.usage.record,
        config=rt.config.batches,
        clock=rt.clock,
        live=lambda: len(rt.lifecycle.inflight),
        accepting=lambda: rt.lifecycle.ready,
        urgent=urgency(rt.storage),
        observer=observer,
    )
    service.wake = worker.wake
    return worker


def _preload_pairs(config: GatewayConfig) -> list[tuple[str, str]]:
    return [
        (config.providers[d.provider].type, d.model)
        for m in config.models
        if m.prices is None
        for d in m.deployments
    ]


def catalog(
    rt: Runtime,
    tenancy: Tenancy,
    sync: KeySync,
    *,
    providers: Mapping[str, Provider],
    load_file: Callable[[], GatewayConfig] | None,
) -> CatalogService:
    """The catalogue service and what a change does to this process: the model table,
    the router's facts, the provider adapters, the live price and type maps, the credential
    references and the principals' ``*`` access are all swapped to the new catalogue."""
    live = LiveTable(
        rt.table,
        rt.router,
        config=rt.config,
        providers=providers,
        build_provider=build_provider,
        known_window=known_context_window,
        now=rt.clock.now,
        policy_text=lambda: "\n".join(p.source for p in rt.router.policy.policies()),
    )

    async def apply(config: GatewayConfig) -> None:
        # Price lookups load the bundled table: off the event loop, before the swap.
        await asyncio.to_thread(rt.pricer.preload, _preload_pairs(config))
        report = live.apply(config)
        rt.config = config
        rt.follow_catalogue(config)
        rt.credentials.set_refs({n: p.api_key_ref for n, p in config.providers.items()})
        rt.keys.set_models(rt.table.everything)
        log.info(
            "models changed: added %s, removed %s, changed %s",
            list(report.added),
            list(report.removed),
            list(report.changed),
        )
        await sync.refresh(force=True)  # principals see the new ``*``

    def prepare(config: GatewayConfig) -> None:
        live.prepare(config)

    def state(key: str) -> str:
        return str(rt.router.breakers.state(key).state)

    return CatalogService(
        rt.config,
        rt.storage.catalog,
        tenancy,
        apply=apply,
        prepare=prepare,
        pricer=rt.pricer,
        sealer=_sealer(rt.settings),
        clock=rt.clock,
        breaker_state=state,
        load_file=load_file,
        meta=rt.storage.meta,
    )


def control_plane(
    rt: Runtime,
    *,
    file_access: FileAccess | None = None,
    providers: Mapping[str, Provider] | None = None,
    load_file: Callable[[], GatewayConfig] | None = None,
) -> ControlPlane:
    """The control plane's services over this process's resources, built once.
    ``file_access``: what batches read their input from and write their output to (default:
    the files service). ``providers``: the adapters the table was built with (reused by the
    catalogue's swaps); ``load_file``: re-reads the config file (``sluice config reload``)."""
    storage = rt.storage
    file_service = files(rt)

    async def changed() -> None:
        await sync.after_change()

    tenancy = Tenancy(
        storage.tenancy,
        storage.keys,
        storage.meta,
        unit=storage.unit,
        clock=rt.clock,
        changed=changed,
        default_max_keys=rt.settings.max_keys_per_user,
    )
    credentials = CredentialService(
        lambda: rt.config.providers,
        storage.credentials,
        tenancy,
        sealer=_sealer(rt.settings),
        live=rt.credentials,
        clock=rt.clock,
        on_loaded=rt.observability.redactor.add,
    )
    terms = TermsService(rt.config.auth.terms, storage.terms, tenancy, clock=rt.clock)
    mcp_servers = McpServerService(
        rt.config.mcp, storage.mcp_servers, tenancy, registry=rt.mcp, clock=rt.clock
    )
    sync = KeySync(
        rt.keys,
        keys=storage.keys,
        tenancy=storage.tenancy,
        spent_since=storage.spend.spent_since,
        budgets=rt.budgets,
        load_credentials=credentials.load,
        clock=rt.clock,
        redis=rt.redis,
        load_terms=terms.gate,
        load_mcp_servers=mcp_servers.load,
    )
    catalog_service = catalog(
        rt,
        tenancy,
        sync,
        providers=providers if providers is not None else build_providers(rt.config),
        load_file=load_file,
    )
    catalog_service.tester = DeploymentProbe(rt.services, record=rt.usage.record).probe
    scim_config = rt.config.auth.scim
    scim = (
        ScimService(tenancy, storage.scim, org=scim_config.org, clock=rt.clock)
        if scim_config is not None
        else None
    )
    return ControlPlane(
        settings=rt.settings,
        config=rt.config,
        clock=rt.clock,
        cache=rt.keys,
        table=rt.table,
        router=rt.router,
        sync=sync,
        tenancy=tenancy,
        keys=KeyService(tenancy),
        archive=Archive(tenancy),
        credentials=credentials,
        policies=PolicyService(rt.router.policy, storage.meta, tenancy),
        analytics=Analytics(
            storage.analytics,
            rt.clock,
            mcp=storage.mcp_analytics,
            cache=storage.cache_analytics,
            units=storage.unit_analytics,
        ),
        alerts=alerts(rt),
        records=Records(
            spent_since=storage.spend.spent_since,
            bodies=storage.bodies,
            dead_letters=storage.dead_letters,
            usage=storage.usage,
            console=storage.console,
        ),
        shared_state=rt.redis is not None,
        terms=terms,
        sso=SsoService.build(
            rt.config.auth,
            session=rt.session,
            clock=rt.clock,
            redis=rt.redis,
            users=tenancy,
            lookup=storage.tenancy,
            identities=storage.identities,
            org_named=lambda name: next(
                (o.id for o in rt.keys.index.orgs.values() if o.name == name), None
            ),
            scim=scim,
        ),
        scim=scim,
        mcp=McpCatalog(rt.mcp, functools.partial(tool_runner, rt)),
        mcp_servers=mcp_servers,
        response_cache=CacheAdmin(
            rt.cache,
            directory=lambda: rt.keys.index,
            principals=rt.keys.principals,
            canonical=rt.table.canonical,
            clock=rt.clock,
        ),
        files=file_service,
        batches=batches(rt, file_access or file_service),
        catalog=catalog_service,
    )
