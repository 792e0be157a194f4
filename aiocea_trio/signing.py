"""Request signers: HMAC-SHA256, Ed25519 and RSA, exactly as Binance documents them.

Each signer returns the value that goes after ``signature=`` in the query
string: a hex digest for HMAC; base64, already percent-encoded, for Ed25519
and RSA. Key material lives only inside the signer, and no repr shows it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import quote

if TYPE_CHECKING:  # imported when an asymmetric key is used: ~8 MB that HMAC never needs
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

__all__ = ["Ed25519Signer", "HmacSigner", "RsaSigner", "Signer"]


@runtime_checkable
class Signer(Protocol):
    """Anything that turns a request payload into Binance's ``signature`` value."""

    def sign(self, payload: str) -> str:
        """Sign the percent-encoded query string followed by the body."""
        ...


class HmacSigner:
    """HMAC-SHA256 with the API secret, as a lowercase hex digest."""

    __slots__ = ("_mac",)

    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode() if isinstance(secret, str) else bytes(secret)
        if not key:
            raise ValueError("the API secret is empty")
        # Keyed once: each signature copies the prepared state instead of re-keying.
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def sign(self, payload: str) -> str:
        mac = self._mac.copy()
        mac.update(payload.encode())
        return mac.hexdigest()

    def __repr__(self) -> str:
        return "HmacSigner(secret=<redacted>)"


def _load_private_key(key: object, password: str | bytes | None) -> object:
    if isinstance(key, str):
        key = key.encode()
    if isinstance(key, bytes):
        from cryptography.hazmat.primitives import serialization

        pwd = password.encode() if isinstance(password, str) else password
        try:
            return serialization.load_pem_private_key(key, password=pwd)
        except (ValueError, TypeError):
            # The cryptography message may quote key bytes; say what is wrong, not what was read.
            raise ValueError(
                "could not load the private key: expected PEM text (PKCS#8), "
                "with the right password if it is encrypted"
            ) from None
    return key


def _public_pem(key: ed25519.Ed25519PublicKey | rsa.RSAPublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


def _b64_quoted(signature: bytes) -> str:
    return quote(base64.b64encode(signature).decode("ascii"), safe="")


class Ed25519Signer:
    """Ed25519 over the payload bytes; Binance's recommended key type."""

    __slots__ = ("_key",)

    def __init__(
        self,
        private_key: str | bytes | ed25519.Ed25519PrivateKey,
        *,
        password: str | bytes | None = None,
    ) -> None:
        from cryptography.hazmat.primitives.asymmetric import ed25519

        key = _load_private_key(private_key, password)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise TypeError("Ed25519Signer needs an Ed25519 private key")
        self._key = key

    def sign(self, payload: str) -> str:
        return _b64_quoted(self._key.sign(payload.encode()))

    def public_key_pem(self) -> str:
        """The public key to register with Binance."""
        return _public_pem(self._key.public_key())

    def __repr__(self) -> str:
        return "Ed25519Signer(private_key=<redacted>)"


class RsaSigner:
    """RSASSA-PKCS1-v1_5 with SHA-256 (2048- or 4096-bit PKCS#8 keys)."""

    __slots__ = ("_hash", "_key", "_padding")

    def __init__(
        self,
        private_key: str | bytes | rsa.RSAPrivateKey,
        *,
        password: str | bytes | None = None,
    ) -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        key = _load_private_key(private_key, password)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError("RsaSigner needs an RSA private key")
        self._key = key
        self._padding, self._hash = padding.PKCS1v15(), hashes.SHA256()

    def sign(self, payload: str) -> str:
        return _b64_quoted(self._key.sign(payload.encode(), self._padding, self._hash))

    def public_key_pem(self) -> str:
        """The public key to register with Binance."""
        return _public_pem(self._key.public_key())

    def __repr__(self) -> str:
        return "RsaSigner(private_key=<redacted>)"
