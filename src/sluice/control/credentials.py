"""Provider credentials: stored sealed (``SLUICE_SECRET_KEY``), shown masked, and the live
map of decrypted stored credentials the data plane reads (they replace the config's)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sluice.auth.principal import Principal
from sluice.clock import Clock
from sluice.config.providers import ProviderConfig
from sluice.credentials.crypto import Sealer, mask
from sluice.credentials.resolve import ProviderCredentials
from sluice.errors import ErrorKind, GatewayError
from sluice.storage.base import CredentialRepository, StoredCredential
from sluice.tenancy.rules import forbidden, not_found
from sluice.tenancy.service import Tenancy

log = logging.getLogger("sluice")


@dataclass(frozen=True, slots=True)
class ProviderCredential:
    """A configured provider with its credential masked (never the secret)."""

    name: str
    type: str
    base_url: str | None
    credential_source: str
    """``stored`` (set through the admin API or console), ``config`` (the YAML's
    ``api_key``) or ``none``."""
    credential: str | None
    """Masked: ``****abcd`` for a stored or literal key, ``env:NAME`` for a reference."""


def admin_only(actor: Principal) -> None:
    if not actor.is_admin:
        raise forbidden("only admins manage providers")


class CredentialService:
    """Lists, stores and removes provider credentials (admins only, audited with the
    masked value), and loads the stored ones into :attr:`live`."""

    def __init__(
        self,
        providers: Callable[[], Mapping[str, ProviderConfig]],
        repo: CredentialRepository,
        tenancy: Tenancy,
        *,
        sealer: Sealer | None,
        live: ProviderCredentials,
        clock: Clock,
        on_loaded: Callable[[Iterable[str]], None] | None = None,
    ) -> None:
        """``live``: the keys the data plane sends, by provider name; this service is the
        only writer of their stored part. ``on_loaded``: told every decrypted value (the
        log redactor). ``providers``: the providers served now (the config file's and the
        stored ones)."""
        self._providers = providers
        self._repo = repo
        self._tenancy = tenancy
        self._sealer = sealer
        self.live = live
        self._clock = clock
        self._on_loaded = on_loaded

    @property
    def can_store(self) -> bool:
        """Whether credentials can be stored (``SLUICE_SECRET_KEY`` is set)."""
        return self._sealer is not None

    async def describe(self, name: str) -> ProviderCredential:
        cfg = self._providers()[name]
        stored = {c.provider: c for c in await self._repo.all()}
        if name in stored:
            source, shown = "stored", stored[name].preview
        elif cfg.api_key_ref is not None:
            env = cfg.api_key_ref.env_name
            value = cfg.api_key_ref.resolve()
            source, shown = "config", f"env:{env}" if env else mask(value or "")
        else:
            source, shown = "none", None
        return ProviderCredential(name, cfg.type, cfg.base_url, source, shown)

    async def list(self, actor: Principal) -> list[ProviderCredential]:
        admin_only(actor)
        return [await self.describe(name) for name in self._providers()]

    async def store(self, actor: Principal, name: str, api_key: str) -> ProviderCredential:
        """Seal and store a provider's key."""
        admin_only(actor)
        self._known(name)
        if self._sealer is None:
            raise GatewayError(
                ErrorKind.GATEWAY_UNAVAILABLE,
                "set SLUICE_SECRET_KEY to store provider credentials",
            )
        preview = mask(api_key)
        sealed = self._sealer.seal(api_key, context=name)
        record = StoredCredential(name, sealed, preview, self._clock.now())
        async with self._tenancy.changing(
            actor, "provider.credential", ("provider", name), after={"credential": preview}
        ) as unit:
            await unit.credentials.put(record)
        return await self.describe(name)

    async def remove(self, actor: Principal, name: str) -> ProviderCredential:
        admin_only(actor)
        self._known(name)
        async with self._tenancy.changing(
            actor, "provider.credential_remove", ("provider", name)
        ) as unit:
            if not await unit.credentials.delete(name):
                raise not_found("stored credential of", name)
        return await self.describe(name)

    async def load(self) -> None:
        """Decrypt the stored credentials into :attr:`live` (one that cannot be opened is
        logged and left out; the config's credential applies to that provider)."""
        stored = await self._repo.all()
        fresh: dict[str, str] = {}
        if stored and self._sealer is None:
            log.error(
                "provider credentials are stored but SLUICE_SECRET_KEY is not set; "
                "using the config's credentials"
            )
        elif self._sealer is not None:
            for record in stored:
                try:
                    fresh[record.provider] = self._sealer.open(
                        record.sealed, context=record.provider
                    )
                except GatewayError as exc:
                    log.error("%s", exc.message)
        self.live.set_stored(fresh)
        if self._on_loaded is not None:
            self._on_loaded(fresh.values())

    def _known(self, name: str) -> None:
        if name not in self._providers():
            raise not_found("provider", name)
