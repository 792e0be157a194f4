"""``SimExchange``: a simulator's mutable state, built from its frozen ``SimConfig``, and its
ways to be reached (in-process transport, client, HTTP server)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import trio
from starlette.applications import Starlette

from .accounts import Account
from .archives import ArchiveServer
from .auth import Authenticator, KeyEntry
from .clock import SimClock

# (the demo credentials stay importable from here, where they used to live)
from .config import DEMO_API_KEY, DEMO_API_SECRET, SimConfig, options_of
from .config import DEMO_ED25519_API_KEY as DEMO_ED25519_API_KEY
from .config import DEMO_ED25519_PRIVATE_KEY as DEMO_ED25519_PRIVATE_KEY
from .config import DEMO_ED25519_PUBLIC_KEY as DEMO_ED25519_PUBLIC_KEY
from .config import demo_account as demo_account
from .faults import FaultInjector
from .limits import OrderCounter, WeightLimiter, interval_label
from .market import MarketData
from .market_handlers import MarketHandlers, TickerHandlers
from .matching import MatchingEngine
from .params import SymbolLookup
from .pipeline import Pipeline
from .routes import Handlers, build_app
from .serve import serve
from .streams import StreamServer
from .symbols import SymbolSpec, default_symbols
from .trading_handlers import TradingHandlers
from .transport import SimTransport

if TYPE_CHECKING:
    from ..client import BinanceClient

__all__ = ["SimExchange"]


class SimExchange:
    """A Binance-compatible exchange (spot ``/api``, USDⓈ-M ``/fapi``, COIN-M ``/dapi``).

    ``SimExchange(**options)`` takes ``SimConfig``'s keywords (see there), kept frozen as
    ``config``; ``SimExchange.from_config(config)`` builds one from a configuration. The rest
    is the state: the clock, market data, matching engine, limiter, order counters, fault
    injector, keys and accounts, archives, and the ASGI ``app`` serving them.
    """

    config: SimConfig
    clock: SimClock
    symbol_specs: list[SymbolSpec]
    market_data: MarketData
    engine: MatchingEngine
    limiter: WeightLimiter
    order_counter: OrderCounter
    fault_injector: FaultInjector
    auth: Authenticator
    archives: ArchiveServer
    streams: StreamServer
    app: Starlette

    @options_of(SimConfig)
    def __init__(self, **options: Any) -> None:
        config = self.config = SimConfig(**options)
        self.clock = SimClock(config.start_time_ms)
        self.clock.anchor_if_in_trio()
        self.symbol_specs = list(config.symbols or default_symbols(self.clock.initial_ms()))
        self.market_data = MarketData(config.seed, self.symbol_specs)
        self.engine = MatchingEngine(self.market_data, self.symbol_specs)
        self.limiter = WeightLimiter(
            int(config.weight_window),
            config.weight_limits,
            config.ban_base,
            config.ban_max,
            config.ban_grace,
        )
        self.order_counter = OrderCounter(config.order_limits)
        self.fault_injector = FaultInjector(config.faults, config.seed)
        self.auth = Authenticator(config.accounts)
        self.archives = ArchiveServer(
            config.seed,
            self.symbol_specs,
            self.market_data,
            cache_bytes=config.archive_cache_bytes,
            missing=config.missing_archives,
            corrupt=config.corrupt_archives,
            max_rows=config.archive_max_rows,
        )
        self.app = self._build_app()

    @classmethod
    def from_config(cls, config: SimConfig) -> SimExchange:
        """A simulator made from ``config`` (fresh state: clock, accounts, counters)."""
        return cls(**config.options())

    def _build_app(self) -> Starlette:
        pipeline = Pipeline(
            clock=self.clock,
            limiter=self.limiter,
            faults=self.fault_injector,
            order_counter=self.order_counter,
            auth=self.auth,
            log_unknown_paths=self.config.log_unknown_paths,
        )
        symbols = SymbolLookup(self.market_data, self.symbol_specs)
        handlers = Handlers(
            market=MarketHandlers(self.market_data, symbols, self._rate_limits),
            tickers=TickerHandlers(symbols),
            trading=TradingHandlers(self.engine, symbols),
        )
        self.streams = StreamServer(
            self.clock, self.market_data, self.symbol_specs, handlers.tickers
        )
        return build_app(pipeline, handlers, self.archives, self.streams)

    # -- introspection ---------------------------------------------------------------------

    @property
    def keys(self) -> dict[str, KeyEntry]:
        """API key -> its account and how its signatures are checked."""
        return self.auth.keys

    @property
    def accounts_by_name(self) -> dict[str, Account]:
        return self.auth.accounts

    def now_ms(self) -> int:
        """The simulator's current epoch ms (inside trio)."""
        return self.clock.now_ms()

    def account(self, name: str = "demo") -> Account:
        """Live state of an account (balances, orders, positions), for tests and demos."""
        return self.auth.accounts[name]

    def symbols_of(self, market: str) -> list[str]:
        """Symbol names of a market, in exchangeInfo order."""
        return [s.symbol for s in self.symbol_specs if s.market == market]

    @property
    def quarterly_symbol(self) -> str:
        """The COIN-M quarterly contract's name (it depends on the start date)."""
        return next(s.symbol for s in self.symbol_specs if s.contract_type == "CURRENT_QUARTER")

    def weight_rate_limit(self, market: str) -> dict[str, Any]:
        """The REQUEST_WEIGHT entry of exchangeInfo ``rateLimits``."""
        _, name, num = interval_label(int(self.config.weight_window))
        return {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": name,
            "intervalNum": num,
            "limit": self.config.weight_limits[market],
        }

    def order_rate_limits(self, market: str) -> list[dict[str, Any]]:
        """The ORDERS entries of exchangeInfo ``rateLimits``."""
        out = []
        for seconds, limit in self.config.order_limits[market]:
            _, name, num = interval_label(seconds)
            out.append(
                {"rateLimitType": "ORDERS", "interval": name, "intervalNum": num, "limit": limit}
            )
        return out

    def _rate_limits(self, market: str) -> list[dict[str, Any]]:
        return [self.weight_rate_limit(market), *self.order_rate_limits(market)]

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

    def ws_transport(self, client_ip: str = "127.0.0.1") -> httpx.AsyncBaseTransport:
        """An httpx transport reaching REST *and* the streams in-process, for httpx-ws's
        ``aconnect_ws`` (with pings and pongs; see ``SimWebSocketTransport``). Enter it with
        ``async with`` (it owns the connections' tasks). Needs httpx-ws."""
        from .ws_transport import SimWebSocketTransport

        return SimWebSocketTransport(self.app, client_ip)

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
        """Serve over HTTP until cancelled: ``url = await nursery.start(sim.serve, host, port)``
        (port 0 picks a free port; the URL is ``http://host:port``)."""
        await serve(self.app, host, port, task_status=task_status)
