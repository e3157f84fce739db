"""Provider credentials resolved by the core, before an adapter is called.

The boundary: adapters never read the environment or the credential store. A provider's API
key reaches its adapter as ``UpstreamCall.credential``, looked up here per call: the key
stored through the admin API when there is one, else the config's ``api_key`` (``env:NAME``
read when first used, then kept). The secrets a provider family holds besides its API key
(Bedrock's AWS key pair, Vertex AI's service-account key) are resolved once when the adapter
is built (:class:`~sluice.config.secrets.Secrets`); only refreshing the tokens they yield
stays in the adapter's credential objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sluice.config.secrets import SecretRef


class ProviderCredentials(Mapping[str, str]):
    """Each provider's API key by provider name (live: :meth:`set_stored` swaps in the
    keys stored through the admin API; they replace the config's)."""

    __slots__ = ("_refs", "_resolved", "_stored")

    def __init__(self, refs: Mapping[str, SecretRef | None] | None = None) -> None:
        self._refs = {name: ref for name, ref in (refs or {}).items() if ref is not None}
        self._resolved: dict[str, str] = {}
        self._stored: dict[str, str] = {}

    def set_refs(self, refs: Mapping[str, SecretRef | None]) -> None:
        """The providers' configured ``api_key`` references (the catalogue changed)."""
        fresh = {name: ref for name, ref in refs.items() if ref is not None}
        self._resolved = {
            n: v for n, v in self._resolved.items() if self._refs.get(n) == fresh.get(n)
        }
        self._refs = fresh

    def set_stored(self, stored: Mapping[str, str]) -> None:
        self._stored = dict(stored)

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """The key to send for provider ``name``; ``default`` when it has none (an unset
        ``env:`` variable is read again on the next call)."""
        value = self._stored.get(name) or self._resolved.get(name)
        if value is not None:
            return value
        ref = self._refs.get(name)
        value = ref.resolve() if ref is not None else None
        if not value:
            return default
        self._resolved[name] = value
        return value

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(
            [n for n in dict.fromkeys([*self._refs, *self._stored]) if self.get(n) is not None]
        )

    def __len__(self) -> int:
        return len(list(iter(self)))
