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
from collections.abc import Iterable, Mapping

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from .accounts import Account, AccountConfig
from .errors import ApiError, mandatory

__all__ = [
    "Authenticator",
    "KeyEntry",
    "Signed",
    "payload_without_signature",
    "valid_key_format",
]

_KEY_FORMAT = re.compile(r"^[A-Za-z0-9]{64}$")
_RECV_SPOT = re.compile(r"^[0-9]{1,10}(\.[0-9]{1,3})?$")


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


@attrs.frozen
class Signed:
    """An authenticated request: whose it is, and its timestamp and recvWindow (ms)."""

    account: Account
    timestamp: float
    recv_window: float


class Authenticator:
    """The accounts' keys, and the checks of a signed request in Binance's order."""

    def __init__(self, configs: Iterable[AccountConfig]) -> None:
        self.keys: dict[str, KeyEntry] = {}
        self.accounts: dict[str, Account] = {}
        for cfg in configs:
            if cfg.name in self.accounts:
                raise ValueError(f"duplicate account name {cfg.name!r}")
            self.accounts[cfg.name] = Account.from_config(cfg)
            if cfg.api_secret is not None:
                self._add_key(cfg.api_key, KeyEntry(cfg.name, hmac_secret=cfg.api_secret.encode()))
            if cfg.ed25519_api_key and cfg.ed25519_public_key:
                self._add_key(
                    cfg.ed25519_api_key, KeyEntry.from_pem(cfg.name, cfg.ed25519_public_key)
                )

    def _add_key(self, api_key: str, entry: KeyEntry) -> None:
        if not valid_key_format(api_key):
            raise ValueError("API keys must be 64 alphanumeric characters (as Binance's)")
        if api_key in self.keys:
            raise ValueError("duplicate API key")
        self.keys[api_key] = entry

    def authenticate(
        self,
        api_key: str,
        market: str,
        params: Mapping[str, str],
        query: bytes,
        body: bytes,
        now: int,
    ) -> Signed:
        """API key, then timestamp/recvWindow syntax, then signature, then timing."""
        if not valid_key_format(api_key):
            raise ApiError(-2014, "API-key format invalid.", status=401)
        entry = self.keys.get(api_key)
        if entry is None:
            raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        raw_ts = params.get("timestamp", "")
        if not raw_ts.isdigit():
            raise mandatory("timestamp")
        ts = float(raw_ts)
        if ts >= 1e15:  # microseconds (spot, since 2024-12)
            ts /= 1000.0
        raw_recv = params.get("recvWindow")
        recv = 5000.0
        if raw_recv is not None:
            ok = _RECV_SPOT.match(raw_recv) if market == "spot" else raw_recv.isdigit()
            if not ok:
                raise mandatory("recvWindow")
            recv = float(raw_recv)
            if recv > 60000:
                raise ApiError(-1131, "recvWindow must be less than 60000")
        signature = params.get("signature")
        if not signature:
            raise mandatory("signature")
        if not entry.verify(payload_without_signature(query, body), signature):
            raise ApiError(-1022, "Signature for this request is not valid.")
        if ts >= now + 1000:
            raise ApiError(
                -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if now - ts > recv:
            raise ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")
        return Signed(self.accounts[entry.account], ts, recv)
