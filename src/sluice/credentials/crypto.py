"""AES-256-GCM sealing of stored credentials with a key from ``SLUICE_SECRET_KEY``."""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sluice.errors import ErrorKind, GatewayError

NONCE_BYTES = 12


class Sealer:
    """Encrypts and decrypts small secrets. The key is ``SLUICE_SECRET_KEY``: 32 bytes in
    base64, or any passphrase (hashed to 32 bytes with SHA-256)."""

    def __init__(self, secret_key: str) -> None:
        try:
            raw = base64.b64decode(secret_key, validate=True)
        except ValueError:
            raw = b""
        self._aead = AESGCM(raw if len(raw) == 32 else hashlib.sha256(secret_key.encode()).digest())

    def seal(self, plaintext: str, *, context: str) -> bytes:
        """``nonce || ciphertext``; ``context`` (e.g. the provider name) is authenticated."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def open(self, sealed: bytes, *, context: str) -> str:
        try:
            return self._aead.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context.encode()
            ).decode()
        except InvalidTag:
            raise GatewayError(
                ErrorKind.GATEWAY_UNAVAILABLE,
                f"the stored credential of {context!r} cannot be decrypted with this "
                "SLUICE_SECRET_KEY",
            ) from None


def mask(secret: str) -> str:
    """What lists show: never more than the last four characters."""
    return "****" if len(secret) <= 8 else f"****{secret[-4:]}"
