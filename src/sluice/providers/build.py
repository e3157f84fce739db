"""Build a provider adapter from its config row, through the registry table."""

from __future__ import annotations

import importlib

from sluice.config.providers import ProviderConfig
from sluice.config.secrets import Secrets
from sluice.providers.base import Provider
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
