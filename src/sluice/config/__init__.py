"""The YAML gateway config: typed, frozen, validated once."""

from sluice.config.loader import ConfigError, load_config, load_default_config
from sluice.config.model import DeploymentConfig, GatewayConfig, ModelConfig
from sluice.config.providers import ProviderConfig, validate_provider
from sluice.config.secrets import SecretRef

__all__ = [
    "ConfigError",
    "DeploymentConfig",
    "GatewayConfig",
    "ModelConfig",
    "ProviderConfig",
    "SecretRef",
    "load_config",
    "load_default_config",
    "validate_provider",
]
