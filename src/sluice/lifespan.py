"""Opens and closes every shared resource; owns the one task group of background work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

from sluice.alerts import AlertService, WatchedDeployment, build_alert_service
from sluice.auth.cache import KeyCache
from sluice.auth.guard import BadKeyGuard
from sluice.auth.service import bootstrap_master_key
from sluice.bringup import PING_TIMEOUT_S, BringUp
from sluice.budgets import seed_budgets
from sluice.budgets.base import BudgetStore
from sluice.budgets.memory import MemoryBudgets
from sluice.budgets.pricing import Pricer, known_context_window
from sluice.clock import Clock, SystemClock
from sluice.config import GatewayConfig, load_config, load_default_config
from sluice.credentials.crypto import Sealer
from sluice.errors import GatewayError
from sluice.lifecycle import Lifecycle
from sluice.limits.base import Limiter
from sluice.limits.memory import MemoryLimiter
from sluice.observability.wiring import Observability, build_observability
from sluice.outage import OutageLog
from sluice.pipeline.services import Services
from sluice.providers.base import Provider, ReadLimits
from sluice.providers.registry import build_provider
from sluice.routing.breaker import BreakerConfig, MemoryBreakers
from sluice.routing.health import DeploymentStats
from sluice.routing.policy import PolicyEngine
from sluice.routing.router import Router
from sluice.routing.table import ModelTable
from sluice.settings import Settings
from sluice.storage.sql.engine import DatabaseTimeouts, create_engine, worker_priority
from sluice.storage.sql.migrate import upgrade_engine
from sluice.storage.sql.repository import SqlStorage
from sluice.tasks import spawn_in
from sluice.tenancy.resolve import DirectoryIndex
from sluice.usage.bodies import BodyPolicy
from sluice.usage.retention import Retention, Target
from sluice.usage.writer import UsageWriter

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from sluice.routing.breaker_redis import RedisBreakers

log = logging.getLogger("sluice")

KEYS_CHANNEL = "sluice:keys"
POLICIES_VERSION = "policies_version"


@dataclass
class Runtime:
    """The process's shared state, built in the lifespan and passed down."""

    settings: Settings
    config: GatewayConfig
    clock: Clock
    storage: SqlStorage
    keys: KeyCache
    usage: UsageWriter
    session: aiohttp.ClientSession
    table: ModelTable
    router: Router
    limiter: Limiter
    budgets: BudgetStore
    pricer: Pricer
    redis: Redis | None = None
    sealer: Sealer | None = None
    _seeded: set[tuple[str, str]] = field(default_factory=set)
    credentials: dict[str, str] = field(default_factory=dict)
    """Decrypted stored credentials by provider name (replace the config's)."""
    generated_master_key: str | None = None
    policies_version: int = 0
    """The policy reload counter this process's routing policies reflect."""
    keys_changed: asyncio.Event = field(default_factory=asyncio.Event)
    alerts: AlertService | None = None
    """Budget-threshold and breaker alerts (``alerts:`` in the config)."""
    observability: Observability | None = None
    body_policy: BodyPolicy | None = None
    """Body logging, when the config turns it on for any org or team."""
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    """Starting (the database not reached yet), ready or draining."""
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    """The background tasks running in the lifespan's task group (cancelled at exit)."""
    group: asyncio.TaskGroup | None = None

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        """Start a background task in the lifespan's task group (cancelled at exit)."""
        assert self.group is not None
        self.tasks.append(spawn_in(self.group, coro, name=name))

    @property
    def services(self) -> Services:
        obs = self.observability
        extra: dict[str, Any] = (
            {"tracing": obs.tracing, "live": obs.live, "redactor": obs.redactor}
            if obs is not None
            else {}
        )
        return Services(
            **extra,
            response_metadata=self.config.observability.response_metadata,
            table=self.table,
            session=self.session,
            router=self.router,
            limiter=self.limiter,
            budgets=self.budgets,
            pricer=self.pricer,
            credentials=self.credentials,
            provider_types={name: p.type for name, p in self.config.providers.items()},
            prices={m.name: m.prices for m in self.config.models if m.prices is not None},
            total_timeout_s=self.config.routing.total_timeout_s,
            read_limits=ReadLimits(
                body_bytes=self.settings.max_upstream_body_bytes,
                event_bytes=self.settings.max_upstream_event_bytes,
            ),
        )

    async def refresh_keys(self, *, force: bool = False) -> None:
        """Reload keys, the directory and stored credentials when anything changed."""
        version = await self.storage.keys.version()
        if force or version != self.keys.version:
            index = DirectoryIndex.build(await self.storage.tenancy.directory())
            await self._load_credentials()
            self.keys.replace(await self.storage.keys.list(), version=version, index=index)
            await self._seed_budgets()

    async def _seed_budgets(self) -> None:
        """Load this period's recorded spend of every budget not seen before, so budgets
        hold across restarts (and for budgets set while running)."""
        fresh = [
            (scope, spec)
            for scope, spec in self.keys.budget_checks()
            if (scope, spec.period) not in self._seeded
        ]
        if not fresh:
            return
        await seed_budgets(
            self.budgets, fresh, spent_since=self.storage.spend.spent_since, now=self.clock.now()
        )
        self._seeded.update((scope, spec.period) for scope, spec in fresh)

    async def refresh_policies(self) -> None:
        """Reload the routing policy files when another process asked for it."""
        if not self.router.policy.enabled:
            return
        version = int(await self.storage.meta.get(POLICIES_VERSION) or 0)
        if version != self.policies_version:
            self.policies_version = version
            result = await asyncio.to_thread(self.router.policy.reload)
            if not result.ok:
                log.error(
                    "routing policy reload failed; keeping the active set: %s",
                    "; ".join(str(p) for p in result.problems),
                )

    async def _load_credentials(self) -> None:
        stored = await self.storage.credentials.all()
        fresh: dict[str, str] = {}
        if stored and self.sealer is None:
            log.error(
                "provider credentials are stored but SLUICE_SECRET_KEY is not set; "
                "using the config's credentials"
            )
        elif self.sealer is not None:
            for record in stored:
                try:
                    fresh[record.provider] = self.sealer.open(
                        record.sealed, context=record.provider
                    )
                except GatewayError as exc:
                    log.error("%s", exc.message)
        self.credentials.clear()
        self.credentials.update(fresh)
        if self.observability is not None:
            self.observability.redactor.add(fresh.values())

    async def announce_key_change(self) -> None:
        """Tell other processes to reload keys now (they also poll)."""
        if self.redis is not None:
            try:
                await self.redis.publish(KEYS_CHANNEL, b"1")
            except Exception:
                log.warning("could not publish a key change to Redis", exc_info=True)


def resolve_config(settings: Settings) -> GatewayConfig:
    return load_config(settings.config) if settings.config else load_default_config()


def new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60, ttl_dns_cache=300),
        timeout=aiohttp.ClientTimeout(total=None),
        skip_auto_headers=("User-Agent",),
        auto_decompress=True,
    )


async def _poll_keys(rt: Runtime) -> None:
    outage = OutageLog(log, "key refresh", meanwhile="serving the cached keys", clock=rt.clock)
    while True:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(rt.settings.key_refresh_interval_s):
                await rt.keys_changed.wait()
        rt.keys_changed.clear()
        try:
            await rt.refresh_keys()
            await rt.refresh_policies()
        except Exception as exc:
            outage.failed(exc)
        else:
            outage.succeeded()


async def _listen_keys(rt: Runtime, redis: Redis) -> None:
    outage = OutageLog(
        log,
        "Redis key-change subscription",
        meanwhile="polling the database for key changes",
        dependency="Redis",
        is_outage=_redis_down,
        clock=rt.clock,
    )
    while True:
        try:
            pubsub = redis.pubsub()
            async with pubsub:
                await pubsub.subscribe(KEYS_CHANNEL)
                outage.succeeded()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        rt.keys_changed.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outage.failed(exc)
            await asyncio.sleep(1.0)


def _redis_down(exc: BaseException) -> bool:
    """Redis cannot be reached or does not answer (by exception type)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeout

    return isinstance(exc, RedisConnectionError | RedisTimeout | OSError)


def _retention(rt: Runtime) -> Retention:
    storage = rt.storage
    targets = [Target("usage_events", storage.usage, rt.settings.usage_retention_days)]
    if rt.body_policy is not None:
        targets.append(Target("usage_bodies", storage.bodies, rt.body_policy.retention_days))
    return Retention(targets, clock=rt.clock, interval_s=rt.settings.usage_purge_interval_s)


def _urgency(storage: SqlStorage) -> Callable[[bool], None] | None:
    priority = worker_priority(storage.engine)
    return priority.urgent if priority is not None else None


def _governance(clock: Clock, redis: Any, *, lease_s: float) -> tuple[Limiter, BudgetStore]:
    """Rate limits and budgets: in this process, or shared through Redis."""
    if redis is not None:  # the Redis client is imported only when one is configured
        from sluice.budgets.redis import RedisBudgets
        from sluice.limits.redis import RedisLimiter

        return RedisLimiter(redis, lease_s=lease_s), RedisBudgets(redis, clock)
    return MemoryLimiter(clock), MemoryBudgets(clock)


def _router(
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
    router = Router(
        table,
        stats=DeploymentStats(clock, window_s=config.routing.breaker.window_s),
        breakers=breakers,
        config=config.routing,
        clock=clock,
        policy=policy,
        gateway=config,
    )
    return router, breakers


def _alerts(rt: Runtime) -> AlertService:
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


def _build_providers(config: GatewayConfig) -> dict[str, Provider]:
    return {name: build_provider(name, cfg) for name, cfg in config.providers.items()}


async def _background(rt: Runtime, breakers: MemoryBreakers | RedisBreakers) -> None:
    """Start the background work that needs no database (the usage writer only writes
    rows, and there are none before the database answered)."""
    assert rt.observability is not None
    rt.spawn(rt.usage.run(), name="usage-writer")
    rt.spawn(rt.observability.sample_forever(), name="metrics-sampler")
    if rt.redis is not None:
        rt.spawn(_listen_keys(rt, rt.redis), name="key-listen")
        from sluice.budgets.redis import RedisBudgets
        from sluice.limits.redis import RedisLimiter

        if isinstance(rt.limiter, RedisLimiter):  # slot leases and owed releases
            rt.spawn(rt.limiter.upkeep(), name="limits-upkeep")
        if isinstance(rt.budgets, RedisBudgets):  # owed settlements
            rt.spawn(rt.budgets.upkeep(), name="budgets-upkeep")
    if not isinstance(breakers, MemoryBreakers):
        try:
            await breakers.sync()  # start from the breakers the other replicas see
        except Exception:
            log.warning("Redis unreachable at start; breakers start closed", exc_info=True)
        rt.spawn(breakers.run(), name="breaker-sync")


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


def _connect_steps(rt: Runtime, *, migrate: bool) -> Callable[[], Coroutine[Any, Any, None]]:
    """What the process does once its database answers (see ``sluice.bringup``)."""

    async def steps() -> None:
        async with asyncio.timeout(PING_TIMEOUT_S):
            await rt.storage.ping()
        if migrate:
            await _migrate(rt)
        master = await bootstrap_master_key(rt.storage.meta, rt.settings.master_key)
        if master.generated:
            log.warning("generated an admin key (shown once, stored hashed): %s", master.generated)
            rt.generated_master_key = master.generated
        rt.keys.set_master_hash(master.hash)
        await rt.refresh_keys(force=True)
        assert rt.alerts is not None
        rt.spawn(_poll_keys(rt), name="key-refresh")
        rt.spawn(rt.alerts.run(), name="alerts")
        rt.spawn(_retention(rt).run(), name="retention")

    return steps


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    config: GatewayConfig | None = None,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
    lifecycle: Lifecycle | None = None,
) -> AsyncIterator[Runtime]:
    """Open everything, run the background tasks, and close it all in reverse order.

    The runtime is yielded whether or not the database answered: until it does, the
    lifecycle stays ``starting`` and a background task keeps trying (``sluice.bringup``).
    On exit the usage buffer is flushed after the background tasks stop.
    """
    clock = clock or SystemClock()
    config = config or resolve_config(settings)
    providers = _build_providers(config)
    storage = SqlStorage.from_url(
        settings.resolved_database_url(),
        timeouts=DatabaseTimeouts(
            connect_s=settings.database_connect_timeout_s,
            command_s=settings.database_command_timeout_s,
        ),
    )
    redis: Any = None
    session: aiohttp.ClientSession | None = None
    try:
        if settings.redis_url:
            from redis.asyncio import Redis as RedisClient

            redis = RedisClient.from_url(settings.redis_url)
        session = new_session()
        table = ModelTable.build(
            config, providers, created=int(clock.now()), known_window=known_context_window
        )
        limiter, budgets = _governance(clock, redis, lease_s=settings.redis_slot_lease_s)
        router, breakers = _router(config, table, clock, redis)
        pricer = Pricer(clock)
        pricer.preload(
            (config.providers[d.provider].type, d.model)
            for m in config.models
            if m.prices is None
            for d in m.deployments
        )
        body_policy = BodyPolicy(config.body_logging) if config.body_logging.enabled else None
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
            usage=UsageWriter(
                storage.usage,
                storage.keys,
                interval_s=settings.usage_flush_interval_s,
                batch_size=settings.usage_batch_size,
                bodies=(body_policy, storage.bodies) if body_policy else None,
                clock=clock,
                urgent=_urgency(storage),
                dead_letters=storage.dead_letters,
            ),
            session=session,
            table=table,
            router=router,
            limiter=limiter,
            budgets=budgets,
            pricer=pricer,
            body_policy=body_policy,
            redis=redis,
            sealer=Sealer(settings.secret_key.get_secret_value()) if settings.secret_key else None,
            lifecycle=lifecycle or Lifecycle(),
        )
        rt.observability = build_observability(
            settings, config, table=table, writer=rt.usage, breakers=breakers
        )
        rt.alerts = _alerts(rt)
        bring_up = BringUp(
            _connect_steps(rt, migrate=migrate),
            rt.lifecycle,
            retry_max_s=settings.startup_retry_max_s,
        )
        async with asyncio.TaskGroup() as group:
            rt.group = group
            try:
                await _background(rt, breakers)
                # Tried once here, so a process whose database answers is ready when its
                # start-up completes; otherwise it serves 503s and keeps trying.
                if not await bring_up.attempt():
                    rt.spawn(bring_up.retry(), name="bring-up")
                yield rt
            finally:
                for task in rt.tasks:
                    task.cancel()
        await rt.usage.close()  # its observers count the last rows, so metrics close after
        rt.observability.close()
    finally:
        if session is not None:
            await session.close()
        if redis is not None:
            await redis.aclose()
        await storage.close()
