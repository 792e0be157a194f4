"""``SimExchange``: the simulator's configuration and state, and its ways to be reached."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import trio
from starlette.applications import Starlette

from ..endpoints import DEFAULT_ORDER_LIMITS, DEFAULT_WEIGHT_LIMITS
from ..markets import Market
from .accounts import Account, AccountConfig, Trading
from .app import build_app
from .archives import ArchiveServer
from .auth import KeyEntry, valid_key_format
from .clock import SimClock
from .faults import FaultConfig, FaultInjector
from .limits import OrderCounter, WeightLimiter, interval_label
from .market import MarketData
from .serve import serve as _serve
from .symbols import SymbolSpec, default_symbols
from .transport import SimTransport

if TYPE_CHECKING:
    from ..client import BinanceClient

__all__ = [
    "DEMO_API_KEY",
    "DEMO_API_SECRET",
    "DEMO_ED25519_API_KEY",
    "DEMO_ED25519_PRIVATE_KEY",
    "DEMO_ED25519_PUBLIC_KEY",
    "SimExchange",
    "demo_account",
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


def _limits(value: Mapping[str, int]) -> dict[str, int]:
    out = {market.value: limit for market, limit in DEFAULT_WEIGHT_LIMITS.items()}
    out.update(value)
    return out


@attrs.define(eq=False, kw_only=True)
class SimExchange:
    """A Binance-compatible exchange (spot ``/api``, USDⓈ-M ``/fapi``, COIN-M ``/dapi``).

    Attributes:
        seed: market data and faults are pure functions of the seed (and time / request order).
        weight_window: REQUEST_WEIGHT window in whole seconds (Binance: 60); shorten it to run a
            "minute" of rate limiting in a few seconds.
        weight_limits: weight per window per IP per market (missing markets: Binance's).
        order_limits: per market, ``((window seconds, max new orders), ...)`` per account.
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
    weight_limits: Mapping[str, int] = attrs.field(factory=dict, converter=_limits)
    order_limits: Mapping[str, Sequence[tuple[int, int]]] = attrs.field(
        factory=lambda: {market.value: limits for market, limits in DEFAULT_ORDER_LIMITS.items()}
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

    clock: SimClock = attrs.field(init=False, repr=False)
    symbol_specs: list[SymbolSpec] = attrs.field(init=False, repr=False)
    market_data: MarketData = attrs.field(init=False, repr=False)
    trading: Trading = attrs.field(init=False, repr=False)
    limiter: WeightLimiter = attrs.field(init=False, repr=False)
    order_counter: OrderCounter = attrs.field(init=False, repr=False)
    fault_injector: FaultInjector = attrs.field(init=False, repr=False)
    keys: dict[str, KeyEntry] = attrs.field(init=False, repr=False)
    accounts_by_name: dict[str, Account] = attrs.field(init=False, repr=False)
    archives: ArchiveServer = attrs.field(init=False, repr=False)
    app: Starlette = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.clock = SimClock(self.start_time_ms)
        self.clock.anchor_if_in_trio()
        self.symbol_specs = list(self.symbols or default_symbols(self.clock.initial_ms()))
        self.market_data = MarketData(self.seed, self.symbol_specs)
        self.trading = Trading(self.market_data, self.symbol_specs)
        self.limiter = WeightLimiter(
            int(self.weight_window), self.weight_limits, self.ban_base, self.ban_max, self.ban_grace
        )
        for market in Market:
            self.order_limits.setdefault(market.value, DEFAULT_ORDER_LIMITS[market])  # type: ignore[attr-defined]
        self.order_counter = OrderCounter(self.order_limits)
        self.fault_injector = FaultInjector(self.faults, self.seed)
        self.keys = {}
        self.accounts_by_name = {}
        for cfg in self.accounts:
            if cfg.name in self.accounts_by_name:
                raise ValueError(f"duplicate account name {cfg.name!r}")
            self.accounts_by_name[cfg.name] = Account.from_config(cfg)
            if cfg.api_secret is not None:
                self._add_key(cfg.api_key, KeyEntry(cfg.name, hmac_secret=cfg.api_secret.encode()))
            if cfg.ed25519_api_key and cfg.ed25519_public_key:
                self._add_key(
                    cfg.ed25519_api_key, KeyEntry.from_pem(cfg.name, cfg.ed25519_public_key)
                )
        self.archives = ArchiveServer(
            self.seed,
            self.symbol_specs,
            self.market_data,
            cache_bytes=self.archive_cache_bytes,
            missing=self.missing_archives,
            corrupt=self.corrupt_archives,
            max_rows=self.archive_max_rows,
        )
        self.app = build_app(self)

    def _add_key(self, api_key: str, entry: KeyEntry) -> None:
        if not valid_key_format(api_key):
            raise ValueError("API keys must be 64 alphanumeric characters (as Binance's)")
        if api_key in self.keys:
            raise ValueError("duplicate API key")
        self.keys[api_key] = entry

    # -- introspection ---------------------------------------------------------------------

    def now_ms(self) -> int:
        """The simulator's current epoch ms (inside trio)."""
        return self.clock.now_ms()

    def account(self, name: str = "demo") -> Account:
        """Live state of an account (balances, orders, positions), for tests and demos."""
        return self.accounts_by_name[name]

    def symbols_of(self, market: str) -> list[str]:
        """Symbol names of a market, in exchangeInfo order."""
        return [s.symbol for s in self.symbol_specs if s.market == market]

    @property
    def quarterly_symbol(self) -> str:
        """The COIN-M quarterly contract's name (it depends on the start date)."""
        return next(s.symbol for s in self.symbol_specs if s.contract_type == "CURRENT_QUARTER")

    def weight_rate_limit(self, market: str) -> dict[str, Any]:
        """The REQUEST_WEIGHT entry of exchangeInfo ``rateLimits``."""
        _, name, num = interval_label(int(self.weight_window))
        return {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": name,
            "intervalNum": num,
            "limit": self.weight_limits[market],
        }

    def order_rate_limits(self, market: str) -> list[dict[str, Any]]:
        """The ORDERS entries of exchangeInfo ``rateLimits``."""
        out = []
        for seconds, limit in self.order_limits[market]:
            _, name, num = interval_label(seconds)
            out.append(
                {"rateLimitType": "ORDERS", "interval": name, "intervalNum": num, "limit": limit}
            )
        return out

    async def warm_archives(
        self, market: str, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> int:
        """Build (and cache) the kline archives a download of ``[start_ms, end_ms)`` with
        ``source="auto"`` would fetch now: whole published months, then whole published days.

        Call it before timing anything; builds run in a worker thread, one file at a time.
        Files that are not published (or named in ``missing_archives``) are skipped. Returns
        the number of files now cached. A checkpoint.
        """
        from ..archives import plan_kline_archives

        now = self.now_ms()
        files, _ = plan_kline_archives(
            market, symbol, interval, start_ms, end_ms, now - now % 86_400_000
        )
        ready = 0
        for file in files:
            target = self.archives.resolve(file.path, now)
            if target is not None:
                await self.archives.get(target)
                ready += 1
        await trio.lowlevel.checkpoint()
        return ready

    # -- ways in ---------------------------------------------------------------------------

    def transport(self, client_ip: str = "127.0.0.1") -> SimTransport:
        """An httpx transport reaching the simulator in-process (no sockets)."""
        return SimTransport(self.app, client_ip)

    def client(self, **kwargs: Any) -> BinanceClient:
        """A ``BinanceClient`` for the demo account, wired in-process."""
        from ..client import BinanceClient

        kwargs.setdefault("base_url", "http://sim.localhost")
        kwargs.setdefault("transport", self.transport())
        return BinanceClient(DEMO_API_KEY, DEMO_API_SECRET, **kwargs)

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve over HTTP until cancelled: ``url = await nursery.start(sim.serve, host, port)``."""
        await _serve(self, host, port, task_status=task_status)
