"""API keys and signature checks exactly as Binance does them.

The signed payload is the raw, still percent-encoded query string (with the ``signature`` pair
removed) followed by the raw body, with no separator. HMAC-SHA256 signatures are hex (any case);
Ed25519 and RSA (PKCS#1 v1.5, SHA-256) signatures are base64.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

__all__ = ["KeyEntry", "payload_without_signature", "valid_key_format"]

_KEY_FORMAT = re.compile(r"^[A-Za-z0-9]{64}$")


def valid_key_format(api_key: str) -> bool:
    """Binance API keys are 64 alphanumeric characters."""
    return bool(_KEY_FORMAT.match(api_key))


def _strip_signature(raw: bytes) -> bytes:
    if b"signature=" not in raw:
        return raw
    return b"&".join(p for p in raw.split(b"&") if not p.startswith(b"signature="))


def payload_without_signature(query: bytes, body: bytes) -> bytes:
    """The bytes the client signed: query then body, the signature pair removed."""
    return _strip_signature(query) + _strip_signature(body)


@attrs.frozen(repr=False)
class KeyEntry:
    """One API key: the account it belongs to and how to check its signatures."""

    account: str
    hmac_secret: bytes | None = None
    public_key: Ed25519PublicKey | RSAPublicKey | None = None

    def __repr__(self) -> str:  # never show the secret
        kind = "hmac" if self.hmac_secret is not None else "public-key"
        return f"KeyEntry(account={self.account!r}, kind={kind})"

    @classmethod
    def from_pem(cls, account: str, pem: str) -> KeyEntry:
        key = serialization.load_pem_public_key(pem.encode())
        if not isinstance(key, (Ed25519PublicKey, RSAPublicKey)):
            raise ValueError("only Ed25519 and RSA public keys are supported")
        return cls(account=account, public_key=key)

    def verify(self, payload: bytes, signature: str) -> bool:
        if self.hmac_secret is not None:
            expected = hmac.new(self.hmac_secret, payload, hashlib.sha256).hexdigest()
            return hmac.compare_digest(expected, signature.lower())
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return False
        try:
            if isinstance(self.public_key, Ed25519PublicKey):
                self.public_key.verify(raw, payload)
            elif isinstance(self.public_key, RSAPublicKey):
                self.public_key.verify(raw, payload, padding.PKCS1v15(), hashes.SHA256())
            else:
                return False
        except InvalidSignature:
            return False
        return True
