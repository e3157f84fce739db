"""Build a provider adapter from its config row, through the registry table."""

from __future__ import annotations

import importlib

from sluice.config.providers import ProviderConfig
from sluice.config.secrets import Secrets
from sluice.providers.base import Provider
from sluice.providers.batch_api import BatchApi
from sluice.providers.registry import PROVIDER_TYPES


def build_provider(name: str, config: ProviderConfig) -> Provider:
    """Import the adapter for ``config.type`` and build it, with the secret references its
    config holds (besides ``api_key``, which each call carries) already resolved."""
    spec = PROVIDER_TYPES[config.type]
    module_name, _, attr = spec.factory.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    secrets = Secrets.resolve(config.credential_refs())
    provider: Provider = factory(name, config, spec.options, secrets)
    return provider


def build_batch_api(name: str, config: ProviderConfig) -> BatchApi | None:
    """The batch API client of a provider whose type has one (``None`` otherwise)."""
    spec = PROVIDER_TYPES[config.type]
    if spec.batch_api is None:
        return None
    module_name, _, attr = spec.batch_api.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    api: BatchApi = factory(name, config, spec.options)
    return api
