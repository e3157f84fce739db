"""Opens and closes every shared resource; owns the one task group of background work.

The resources are a :class:`~sluice.runtime.Runtime`; the control plane's services are built
over them once, here, and handed out with it (:class:`Process`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from sluice import background, wiring
from sluice.auth.cache import KeyCache
from sluice.auth.guard import BadKeyGuard
from sluice.auth.oidc.bearer import bearer_tokens
from sluice.auth.service import bootstrap_master_key
from sluice.batches.worker import BatchWorker
from sluice.bringup import PING_TIMEOUT_S, BringUp
from sluice.budgets.pricing import Pricer, known_context_window
from sluice.clock import Clock, SystemClock
from sluice.config import GatewayConfig
from sluice.control.catalog_view import CatalogConflict
from sluice.control.plane import ControlPlane
from sluice.credentials.resolve import ProviderCredentials
from sluice.documents.reader import DocumentReader
from sluice.files.base import FileAccess
from sluice.lifecycle import Lifecycle
from sluice.mcp.registry import Registry
from sluice.observability.wiring import build_observability
from sluice.providers.registry import PROVIDER_TYPES
from sluice.routing.table import ModelTable
from sluice.runtime import Runtime, new_session, resolve_config
from sluice.settings import Settings
from sluice.storage.sql.engine import DatabaseTimeouts, create_engine
from sluice.storage.sql.migrate import upgrade_engine
from sluice.storage.sql.repository import SqlStorage
from sluice.usage.bodies import BodyPolicy
from sluice.usage.writer import UsageWriter

if TYPE_CHECKING:
    from sluice.cache.semantic.index import SemanticCache

log = logging.getLogger("sluice")


@dataclass(frozen=True, slots=True)
class Process:
    """What the lifespan hands the app: the resources and the control plane over them."""

    runtime: Runtime
    control: ControlPlane


async def _migrate(rt: Runtime) -> None:
    """Migrations may run long on a big table: on PostgreSQL they get an engine of their own,
    without the serving engine's command timeout."""
    engine = rt.storage.engine
    if engine.dialect.name != "postgresql":
        await upgrade_engine(engine)
        return
    timeouts = DatabaseTimeouts(connect_s=rt.settings.database_connect_timeout_s)
    own = create_engine(rt.settings.resolved_database_url(), timeouts=timeouts)
    try:
        await upgrade_engine(own)
    finally:
        await own.dispose()


def _connect_steps(
    rt: Runtime,
    control: ControlPlane,
    *,
    migrate: bool,
    semantic: SemanticCache | None,
    worker: BatchWorker | None = None,
    fatal: list[Exception] | None = None,
) -> Callable[[], Coroutine[Any, Any, None]]:
    """What the process does once its database answers (see ``sluice.bringup``).
    ``fatal``: gets the errors no retry can mend (a stored entry that the config file also
    defines), so the start fails on them."""

    async def steps() -> None:
        async with asyncio.timeout(PING_TIMEOUT_S):
            await rt.storage.ping()
        if migrate:
            await _migrate(rt)
        master = await bootstrap_master_key(rt.storage.meta, rt.settings.master_key)
        if master.generated:
            log.warning("generated an admin key (shown once, stored hashed): %s", master.generated)
        rt.keys.set_master_hash(master.hash)
        await control.sync.refresh(force=True)
        # A stored model or provider that clashes with the file stops the start.
        try:
            await control.catalog.follow(force=True, strict=True)
        except CatalogConflict as exc:
            log.error("cannot start: %s; remove one of them", exc.message)
            if fatal is not None:
                fatal.append(exc)
            raise
        poll = background.poll_keys(
            control.sync,
            control.policies,
            control.catalog,
            interval_s=rt.settings.key_refresh_interval_s,
            clock=rt.clock,
        )
        rt.tasks.spawn(poll, name="key-refresh")
        if rt.settings.config:  # a file to re-read
            rt.tasks.spawn(background.reload_on_hangup(control.catalog), name="config-hangup")
        rt.tasks.spawn(control.alerts.run(), name="alerts")
        rt.tasks.spawn(wiring.retention(rt).run(), name="retention")
        if worker is not None:
            rt.tasks.spawn(worker.run(), name="batch-worker")
        rt.tasks.spawn(control.files.run(), name="files-cleanup")
        if semantic is not None:
            from sluice.cache.semantic import run_sweeps

            rt.tasks.spawn(run_sweeps(semantic, clock=rt.clock), name="semantic-cache-sweep")

    return steps


def _attach(rt: Runtime, session: aiohttp.ClientSession) -> None:
    """The key cache's bearer tokens and the response cache's team names."""
    if rt.cache is not None:
        rt.cache.team_name = functools.partial(_team_name, rt.keys)
    rt.keys.bearer = bearer_tokens(
        rt.config.auth, rt.keys, session=session, clock=rt.clock, guard=rt.keys.guard
    )


def _bind(rt: Runtime, session: aiohttp.ClientSession, control: ControlPlane) -> ControlPlane:
    """What the runtime's resources need: :func:`_attach`, and of the control plane the
    files service for documents in chat (whose reader is opened here). Returns ``control``."""
    _attach(rt, session)
    if rt.config.documents.enabled:
        rt.documents = DocumentReader(rt.config.documents, files=control.files)
    return control


def _unbind(rt: Runtime) -> None:
    if rt.documents is not None:
        rt.documents.close()


def _bring_up(
    rt: Runtime,
    control: ControlPlane,
    *,
    migrate: bool,
    semantic: SemanticCache | None,
    worker: BatchWorker | None,
) -> tuple[BringUp, list[Exception]]:
    """The start-up steps that need the database, and where their fatal errors go."""
    fatal: list[Exception] = []
    steps = _connect_steps(
        rt, control, migrate=migrate, semantic=semantic, worker=worker, fatal=fatal
    )
    return BringUp(steps, rt.lifecycle, retry_max_s=rt.settings.startup_retry_max_s), fatal


async def _first_attempt(rt: Runtime, bring_up: BringUp, fatal: list[Exception]) -> None:
    """Try once now, so a process whose database answers is ready when its start-up
    completes; otherwise it serves 503s and keeps trying, unless no retry can help."""
    if await bring_up.attempt():
        return
    if fatal:
        raise StartError(str(fatal[0])) from fatal[0]
    rt.tasks.spawn(bring_up.retry(), name="bring-up")


class StartError(Exception):
    """The process cannot start (a conflict a retry cannot mend); the message says why."""


def _team_name(keys: KeyCache, team_id: str) -> str | None:
    team = keys.index.teams.get(team_id)
    return None if team is None else team.name


def _storage(settings: Settings) -> SqlStorage:
    return SqlStorage.from_url(
        settings.resolved_database_url(),
        timeouts=DatabaseTimeouts(
            connect_s=settings.database_connect_timeout_s,
            command_s=settings.database_command_timeout_s,
        ),
    )


def _pricer(config: GatewayConfig, clock: Clock) -> Pricer:
    """The price table, with every configured model's rates resolved; a model with a
    deployment whose price is unknown is reported once, in the config's names (deployments
    served inside the gateway, the mock provider's, cost nothing and are not reported)."""
    pricer = Pricer(clock)
    for model in config.models:
        if model.prices is not None:
            continue
        billed = [
            d
            for d in model.deployments
            if not PROVIDER_TYPES[config.providers[d.provider].type].in_process
        ]
        unknown = pricer.preload((config.providers[d.provider].type, d.model) for d in billed)
        if unknown:
            names = ", ".join(
                d.key for d in billed if (config.providers[d.provider].type, d.model) in unknown
            )
            log.warning(
                "model %r: no known price for %s; its requests cost $0 for budgets and "
                "usage until the model gets prices: in the config",
                model.name,
                names,
            )
    return pricer


@contextlib.asynccontextmanager
async def open_process(
    settings: Settings,
    config: GatewayConfig | None = None,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
    lifecycle: Lifecycle | None = None,
    files: FileAccess | None = None,
) -> AsyncIterator[Process]:
    """Open everything, run the background tasks, and close it all in reverse order.

    The process is yielded whether or not the database answered: until it does, the
    lifecycle stays ``starting`` and a background task keeps trying (``sluice.bringup``).
    On exit the usage buffer is flushed after the background tasks stop. ``files``: what
    batches read their input from and write their output to (``None``: no batch runs).
    """
    clock = clock or SystemClock()
    config = config or resolve_config(settings)
    providers = wiring.build_providers(config)
    storage = _storage(settings)
    redis: Any = None
    session: aiohttp.ClientSession | None = None
    mcp = Registry(config.mcp, clock=clock)
    try:
        await mcp.__aenter__()
        if settings.redis_url:
            from redis.asyncio import Redis as RedisClient

            redis = RedisClient.from_url(settings.redis_url)
        session = new_session()
        table = ModelTable.build(
            config,
            providers,
            created=int(clock.now()),
            known_window=known_context_window,
            batch_apis=wiring.build_batch_apis(config),
        )
        limiter, budgets = wiring.governance(clock, redis, lease_s=settings.redis_slot_lease_s)
        router, breakers = wiring.router(config, table, clock, redis)
        body_policy = BodyPolicy(config.body_logging) if config.body_logging.enabled else None
        cache = wiring.response_cache(config, clock, redis)
        usage = UsageWriter(
            storage.usage,
            storage.keys,
            interval_s=settings.usage_flush_interval_s,
            batch_size=settings.usage_batch_size,
            bodies=(body_policy, storage.bodies) if body_policy else None,
            clock=clock,
            urgent=wiring.urgency(storage),
            dead_letters=storage.dead_letters,
        )
        rt = Runtime(
            settings=settings,
            config=config,
            clock=clock,
            storage=storage,
            keys=KeyCache(
                clock,
                master_hash=None,  # known once the database answers
                everything=table.everything,
                canonical=table.canonical,
                guard=BadKeyGuard.from_settings(settings, clock),
            ),
            usage=usage,
            session=session,
            table=table,
            router=router,
            limiter=limiter,
            budgets=budgets,
            pricer=_pricer(config, clock),
            observability=build_observability(
                settings,
                config,
                table=table,
                writer=usage,
                breakers=breakers,
                cache=None if cache is None else cache.totals,
            ),
            body_policy=body_policy,
            mcp=mcp,
            redis=redis,
            credentials=ProviderCredentials(
                {name: p.api_key_ref for name, p in config.providers.items()}
            ),
            lifecycle=lifecycle or Lifecycle(),
            cache=cache,
        )
        control = _bind(
            rt,
            session,
            wiring.control_plane(
                rt,
                file_access=files,
                providers=providers,
                load_file=(lambda: resolve_config(settings)) if settings.config else None,
            ),
        )
        semantic = wiring.semantic_cache(rt, control)
        worker = wiring.batch_worker(
            rt, control.batches, files or control.files, rt.observability.metrics.batches
        )
        bring_up, fatal = _bring_up(rt, control, migrate=migrate, semantic=semantic, worker=worker)
        try:
            async with asyncio.TaskGroup() as group:
                rt.tasks.bind(group)
                try:
                    await background.start(rt, control.sync, breakers)
                    # Tried once here, so a process whose database answers is ready when its
                    # start-up completes; otherwise it serves 503s and keeps trying.
                    await _first_attempt(rt, bring_up, fatal)
                    yield Process(rt, control)
                finally:
                    if worker is not None:  # first: its last writes meet a database in use
                        await worker.stop(timeout_s=settings.shutdown_grace_s)
                    rt.tasks.cancel_all()
                    _unbind(rt)
        except* StartError as group:
            raise group.exceptions[0] from None
        await rt.usage.close()  # its observers count the last rows, so metrics close after
        rt.observability.close()
    finally:
        await mcp.aclose()  # every stdio process it started is gone after this
        if session is not None:
            await session.close()
        if redis is not None:
            await redis.aclose()
        await storage.close()
