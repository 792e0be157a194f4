"""``SimConfig``: what a simulator is made from (frozen), and the demo account's credentials."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

import attrs

from ..endpoints import DEFAULT_ORDER_LIMITS, DEFAULT_WEIGHT_LIMITS
from .accounts import AccountConfig
from .faults import FaultConfig
from .symbols import SymbolSpec

__all__ = [
    "DEMO_API_KEY",
    "DEMO_API_SECRET",
    "DEMO_ED25519_API_KEY",
    "DEMO_ED25519_PRIVATE_KEY",
    "DEMO_ED25519_PUBLIC_KEY",
    "SimConfig",
    "demo_account",
    "options_of",
]

#: The demo account's HMAC credentials (public knowledge: a simulator, not a secret).
DEMO_API_KEY = "gWPWhBAs6ol0tpTx0QgHwoe1uVcMlCLOoBT2CoZtfmd4i5YdVOmkS2ObLRbNumyP"
DEMO_API_SECRET = "zJTuf4Pzrb3IuKPWpf9qRcUAkg25RtW4fKKBEO27ai7DFddnvmOwU8C3851aVyOh"
#: The demo account's Ed25519 API key and key pair (PEM, PKCS#8 / SubjectPublicKeyInfo).
DEMO_ED25519_API_KEY = "bcPyebqLc7Ewgfu1gHZggAzbdS2bQfogjWJgcSDhd9XpzdTiG8yg4c3SSnhsJUlv"
DEMO_ED25519_PRIVATE_KEY = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIKWsvkorFEKz07vnsohT0O9gvB8ZfgGFUoebNXYBkQQ3\n"
    "-----END PRIVATE KEY-----\n"
)
DEMO_ED25519_PUBLIC_KEY = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAcybjknYxQPtOdF41irOMtR+xUF0vaZL17nvw1XlwVq4=\n"
    "-----END PUBLIC KEY-----\n"
)


def demo_account() -> AccountConfig:
    """The demo account: HMAC and Ed25519 keys, 100k USDT and some coins on every market."""
    return AccountConfig(
        name="demo",
        api_key=DEMO_API_KEY,
        api_secret=DEMO_API_SECRET,
        ed25519_api_key=DEMO_ED25519_API_KEY,
        ed25519_public_key=DEMO_ED25519_PUBLIC_KEY,
    )


def _faults(value: FaultConfig | Sequence[FaultConfig] | None) -> tuple[FaultConfig, ...]:
    if value is None:
        return ()
    if isinstance(value, FaultConfig):
        return (value,)
    return tuple(value)


def _names(value: Sequence[str]) -> tuple[str, ...]:
    # (a lone string is one name, not a sequence of letters)
    return (value,) if isinstance(value, str) else tuple(value)


def _weight_limits(value: Mapping[str, int]) -> dict[str, int]:
    out = {market.value: limit for market, limit in DEFAULT_WEIGHT_LIMITS.items()}
    out.update(value)
    return out


def _order_limits(
    value: Mapping[str, Sequence[tuple[int, int]]],
) -> dict[str, Sequence[tuple[int, int]]]:
    # Markets left out keep Binance's limits.
    out: dict[str, Sequence[tuple[int, int]]] = {
        market.value: limits for market, limits in DEFAULT_ORDER_LIMITS.items()
    }
    out.update(value)
    return out


@attrs.frozen(kw_only=True)
class SimConfig:
    """What a simulator is made from; ``SimExchange(**options)`` takes the same keywords.

    Attributes:
        seed: market data and faults are pure functions of the seed (and time / request order).
        weight_window: REQUEST_WEIGHT window in whole seconds (Binance: 60); shorten it to run a
            "minute" of rate limiting in a few seconds.
        weight_limits: weight per window per IP per market (missing markets: Binance's).
        order_limits: per market, ``((window seconds, max new orders), ...)`` per account
            (missing markets: Binance's).
        accounts: the accounts and their keys (default: the demo account only).
        faults: one ``FaultConfig`` or several rules.
        start_time_ms: epoch ms the clock shows when first read (default: wall clock).
        ban_base / ban_max / ban_grace: 418 ban escalation (see ``WeightLimiter``).
        symbols: instruments (default: ``default_symbols``).
        log_unknown_paths: print requests for paths the simulator does not serve (to find
            what a third-party client needs).
        missing_archives: archive files (``/data/...``) whose path contains one of these
            strings answer 404, e.g. ``"BTCUSDT-1m-2024-03"`` (to exercise a client's REST
            fallback in the middle of a range).
        corrupt_archives: matching archive files are served with bytes that do not match
            their ``.CHECKSUM`` (which stays the true file's).
        archive_cache_bytes: built archive zips are kept up to this many bytes in total
            (least recently used dropped first).
        archive_max_rows: archive files of more rows answer 404 (months of busy symbols'
            aggTrades: ~100 million rows, too many to build on demand).
    """

    seed: int = 0
    weight_window: int = 60
    weight_limits: Mapping[str, int] = attrs.field(factory=dict, converter=_weight_limits)
    order_limits: Mapping[str, Sequence[tuple[int, int]]] = attrs.field(
        factory=dict, converter=_order_limits
    )
    accounts: Sequence[AccountConfig] = attrs.field(factory=lambda: [demo_account()], repr=False)
    faults: tuple[FaultConfig, ...] = attrs.field(default=None, converter=_faults)
    start_time_ms: int | None = None
    ban_base: float = 120.0
    ban_max: float = 3 * 86400.0
    ban_grace: int = 5
    symbols: Sequence[SymbolSpec] | None = attrs.field(default=None, repr=False)
    log_unknown_paths: bool = False
    missing_archives: Sequence[str] = attrs.field(default=(), converter=_names)
    corrupt_archives: Sequence[str] = attrs.field(default=(), converter=_names)
    archive_cache_bytes: int = 512 * 2**20
    archive_max_rows: int = 5_000_000

    def options(self) -> dict[str, Any]:
        """The keyword arguments that build this configuration again."""
        return attrs.asdict(self, recurse=False)


P = ParamSpec("P")
S = TypeVar("S")


def options_of(
    config: Callable[P, Any],
) -> Callable[[Callable[Concatenate[S, ...], None]], Callable[Concatenate[S, P], None]]:
    """Give an ``__init__(self, **options)`` the signature of ``config`` (for type checkers and
    ``help()``), so ``SimExchange(seed=1)`` is checked without listing every option twice."""

    def decorate(f: Callable[Concatenate[S, ...], None]) -> Callable[Concatenate[S, P], None]:
        self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        params = [self_param, *inspect.signature(config).parameters.values()]
        f.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
        return f

    return decorate
