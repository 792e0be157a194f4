"""aiocea_trio: drive Binance's REST APIs (spot, USDⓈ-M, COIN-M) as composable trio tasks.

Quick start (no keys, no network: the embedded simulator needs the ``sim`` extra)::

    import trio
    from aiocea_trio import BinanceClient, SimExchange
    from aiocea_trio.tasks import SpotFetchKline

    async def main():
        async with SimExchange().client() as client:  # or BinanceClient(key, secret)
            print(await client.request("GET", "/api/v3/ticker/price", {"symbol": "BTCUSDT"}))
            task = SpotFetchKline(symbol="BTCUSDT", interval="1m", limit=2)
            await task.execute(client)
            print(task.result)

    trio.run(main)

Where things are:

- ``BinanceClient``: one pooled connection per client, signing (``HmacSigner``,
  ``Ed25519Signer``, ``RsaSigner``), server-time sync, a ``RateLimiter`` that keeps requests
  inside Binance's weight budget, orders placed exactly once, typed ``BinanceError`` subclasses.
- ``Task``, ``GatherTask``, ``SerialTask``, ``FunctionTask``; queues (``TaskQueue``,
  ``TaskRing``, ``TaskStack``) feeding an ``Operator`` that streams finished tasks.
- ``aiocea_trio.tasks``: ready-made tasks per market (``Spot*``, ``UsdM*``, ``CoinM*``).
- History: ``download_klines``, ``download_agg_trades``, ``download_funding_rates``,
  ``download_klines_to_file``, ``download_klines_to_parquet``, ``open_kline_stream``: Binance's
  archives joined with the REST API; typed data frames with the ``pandas``/``polars`` extras.
- ``SimExchange``: the Binance-compatible simulator; ``aiocea_trio.testing``: pytest fixtures.
- The ``aiocea-trio`` command (``cli`` extra): ``aiocea-trio --help``.

Every public name is importable from here; the full guide and API reference are in the docs
(the tutorial first, then the how-to pages).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .archives import ArchiveChecksumError as ArchiveChecksumError
from .archives import ArchiveCorruptError as ArchiveCorruptError
from .archives import ArchiveNotFoundError as ArchiveNotFoundError
from .client import BinanceClient as BinanceClient
from .client import ClientStatistics as ClientStatistics
from .client import new_client_order_id as new_client_order_id
from .clock import ExchangeClock as ExchangeClock
from .clock import TimeSync as TimeSync
from .errors import BinanceAPIError as BinanceAPIError
from .errors import BinanceBanError as BinanceBanError
from .errors import BinanceError as BinanceError
from .errors import BinanceRateLimitError as BinanceRateLimitError
from .errors import BinanceResponseError as BinanceResponseError
from .errors import BinanceServerError as BinanceServerError
from .errors import BinanceTimeoutError as BinanceTimeoutError
from .errors import BinanceTransportError as BinanceTransportError
from .errors import ClientNotOpenError as ClientNotOpenError
from .errors import InsecureTransportError as InsecureTransportError
from .errors import OrderStatusUnknownError as OrderStatusUnknownError
from .frames import AGG_TRADE_COLUMNS as AGG_TRADE_COLUMNS
from .frames import FUNDING_RATE_COLUMNS as FUNDING_RATE_COLUMNS
from .frames import KLINE_COLUMNS as KLINE_COLUMNS
from .frames import agg_trade_schema as agg_trade_schema
from .frames import download_klines_frame as download_klines_frame
from .frames import funding_rate_schema as funding_rate_schema
from .frames import kline_schema as kline_schema
from .frames import open_kline_batch_stream as open_kline_batch_stream
from .history import Gap as Gap
from .history import HistoryRows as HistoryRows
from .history import Progress as Progress
from .history import download_agg_trades as download_agg_trades
from .history import download_funding_rates as download_funding_rates
from .history import download_klines as download_klines
from .history import download_klines_to_file as download_klines_to_file
from .history import open_kline_block_stream as open_kline_block_stream
from .history import open_kline_stream as open_kline_stream
from .limits import MAX_BAN_SECONDS as MAX_BAN_SECONDS
from .limits import MAX_RATE_LIMIT_PAUSE as MAX_RATE_LIMIT_PAUSE
from .limits import LimiterStatistics as LimiterStatistics
from .limits import MarketLimits as MarketLimits
from .limits import MarketStatistics as MarketStatistics
from .limits import OrderBudget as OrderBudget
from .limits import RateLimiter as RateLimiter
from .markets import Market as Market
from .markets import market_for_path as market_for_path
from .parquet import download_klines_to_parquet as download_klines_to_parquet
from .pipeline import CompletedChannel as CompletedChannel
from .pipeline import CompositeTask as CompositeTask
from .pipeline import FunctionTask as FunctionTask
from .pipeline import GatherTask as GatherTask
from .pipeline import Operator as Operator
from .pipeline import SerialTask as SerialTask
from .pipeline import Task as Task
from .pipeline import TaskFailedError as TaskFailedError
from .pipeline import TaskQueue as TaskQueue
from .pipeline import TaskRing as TaskRing
from .pipeline import TaskSnapshot as TaskSnapshot
from .pipeline import TaskSource as TaskSource
from .pipeline import TaskStack as TaskStack
from .pipeline import TaskState as TaskState
from .pipeline import TaskTimeoutError as TaskTimeoutError
from .pipeline import task_function as task_function
from .retries import OrderSafety as OrderSafety
from .retries import RetryPolicy as RetryPolicy
from .signing import Ed25519Signer as Ed25519Signer
from .signing import HmacSigner as HmacSigner
from .signing import RsaSigner as RsaSigner
from .signing import Signer as Signer
from .streams import OrderBook as OrderBook
from .streams import OrderBookSyncError as OrderBookSyncError
from .streams import Stream as Stream
from .streams import StreamClosedError as StreamClosedError
from .streams import StreamConnectError as StreamConnectError
from .streams import StreamError as StreamError
from .streams import StreamGap as StreamGap
from .streams import StreamOverflowError as StreamOverflowError
from .streams import StreamSubscribeError as StreamSubscribeError
from .streams import open_order_book as open_order_book
from .streams import open_stream as open_stream
from .tasks import BinanceTask as BinanceTask
from .tasks import CoinMCancelOrder as CoinMCancelOrder
from .tasks import CoinMFetchAccount as CoinMFetchAccount
from .tasks import CoinMFetchAggTrades as CoinMFetchAggTrades
from .tasks import CoinMFetchBalances as CoinMFetchBalances
from .tasks import CoinMFetchBookTicker as CoinMFetchBookTicker
from .tasks import CoinMFetchExchangeInfo as CoinMFetchExchangeInfo
from .tasks import CoinMFetchFundingRate as CoinMFetchFundingRate
from .tasks import CoinMFetchKline as CoinMFetchKline
from .tasks import CoinMFetchOpenInterest as CoinMFetchOpenInterest
from .tasks import CoinMFetchOpenOrders as CoinMFetchOpenOrders
from .tasks import CoinMFetchOrderBook as CoinMFetchOrderBook
from .tasks import CoinMFetchPositionRisk as CoinMFetchPositionRisk
from .tasks import CoinMFetchPremiumIndex as CoinMFetchPremiumIndex
from .tasks import CoinMFetchTicker as CoinMFetchTicker
from .tasks import CoinMFetchTicker24h as CoinMFetchTicker24h
from .tasks import CoinMFetchTrades as CoinMFetchTrades
from .tasks import CoinMFetchUserTrades as CoinMFetchUserTrades
from .tasks import CoinMNewOrder as CoinMNewOrder
from .tasks import CoinMPing as CoinMPing
from .tasks import CoinMQueryOrder as CoinMQueryOrder
from .tasks import CoinMServerTime as CoinMServerTime
from .tasks import CoinMTestOrder as CoinMTestOrder
from .tasks import SpotCancelOrder as SpotCancelOrder
from .tasks import SpotFetchAccount as SpotFetchAccount
from .tasks import SpotFetchAggTrades as SpotFetchAggTrades
from .tasks import SpotFetchAvgPrice as SpotFetchAvgPrice
from .tasks import SpotFetchBalances as SpotFetchBalances
from .tasks import SpotFetchBookTicker as SpotFetchBookTicker
from .tasks import SpotFetchExchangeInfo as SpotFetchExchangeInfo
from .tasks import SpotFetchKline as SpotFetchKline
from .tasks import SpotFetchMyTrades as SpotFetchMyTrades
from .tasks import SpotFetchOpenOrders as SpotFetchOpenOrders
from .tasks import SpotFetchOrderBook as SpotFetchOrderBook
from .tasks import SpotFetchTicker as SpotFetchTicker
from .tasks import SpotFetchTicker24h as SpotFetchTicker24h
from .tasks import SpotFetchTrades as SpotFetchTrades
from .tasks import SpotNewOrder as SpotNewOrder
from .tasks import SpotPing as SpotPing
from .tasks import SpotQueryOrder as SpotQueryOrder
from .tasks import SpotServerTime as SpotServerTime
from .tasks import SpotTestOrder as SpotTestOrder
from .tasks import UsdMCancelOrder as UsdMCancelOrder
from .tasks import UsdMFetchAccount as UsdMFetchAccount
from .tasks import UsdMFetchAggTrades as UsdMFetchAggTrades
from .tasks import UsdMFetchBalances as UsdMFetchBalances
from .tasks import UsdMFetchBookTicker as UsdMFetchBookTicker
from .tasks import UsdMFetchExchangeInfo as UsdMFetchExchangeInfo
from .tasks import UsdMFetchFundingRate as UsdMFetchFundingRate
from .tasks import UsdMFetchKline as UsdMFetchKline
from .tasks import UsdMFetchOpenInterest as UsdMFetchOpenInterest
from .tasks import UsdMFetchOpenOrders as UsdMFetchOpenOrders
from .tasks import UsdMFetchOrderBook as UsdMFetchOrderBook
from .tasks import UsdMFetchPositionRisk as UsdMFetchPositionRisk
from .tasks import UsdMFetchPremiumIndex as UsdMFetchPremiumIndex
from .tasks import UsdMFetchTicker as UsdMFetchTicker
from .tasks import UsdMFetchTicker24h as UsdMFetchTicker24h
from .tasks import UsdMFetchTrades as UsdMFetchTrades
from .tasks import UsdMFetchUserTrades as UsdMFetchUserTrades
from .tasks import UsdMNewOrder as UsdMNewOrder
from .tasks import UsdMPing as UsdMPing
from .tasks import UsdMQueryOrder as UsdMQueryOrder
from .tasks import UsdMServerTime as UsdMServerTime
from .tasks import UsdMTestOrder as UsdMTestOrder

if TYPE_CHECKING:
    from .sim import DEMO_API_KEY as DEMO_API_KEY
    from .sim import DEMO_API_SECRET as DEMO_API_SECRET
    from .sim import SimExchange as SimExchange

__version__ = "0.1.0"

def __getattr__(name: str) -> Any:
    if name in ("DEMO_API_KEY", "DEMO_API_SECRET", "SimExchange"):
        try:
            from . import sim
        except ImportError as exc:
            raise ImportError(
                f"aiocea_trio.{name} needs the simulator's extra ({exc.name} is missing): "
                "pip install 'aiocea-trio[sim]'"
            ) from exc
        return getattr(sim, name)
    raise AttributeError(f"module 'aiocea_trio' has no attribute {name!r}")


__all__ = [
    "AGG_TRADE_COLUMNS",
    "DEMO_API_KEY",
    "DEMO_API_SECRET",
    "FUNDING_RATE_COLUMNS",
    "KLINE_COLUMNS",
    "MAX_BAN_SECONDS",
    "MAX_RATE_LIMIT_PAUSE",
    "ArchiveChecksumError",
    "ArchiveCorruptError",
    "ArchiveNotFoundError",
    "BinanceAPIError",
    "BinanceBanError",
    "BinanceClient",
    "BinanceError",
    "BinanceRateLimitError",
    "BinanceResponseError",
    "BinanceServerError",
    "BinanceTask",
    "BinanceTimeoutError",
    "BinanceTransportError",
    "ClientNotOpenError",
    "ClientStatistics",
    "CoinMCancelOrder",
    "CoinMFetchAccount",
    "CoinMFetchAggTrades",
    "CoinMFetchBalances",
    "CoinMFetchBookTicker",
    "CoinMFetchExchangeInfo",
    "CoinMFetchFundingRate",
    "CoinMFetchKline",
    "CoinMFetchOpenInterest",
    "CoinMFetchOpenOrders",
    "CoinMFetchOrderBook",
    "CoinMFetchPositionRisk",
    "CoinMFetchPremiumIndex",
    "CoinMFetchTicker",
    "CoinMFetchTicker24h",
    "CoinMFetchTrades",
    "CoinMFetchUserTrades",
    "CoinMNewOrder",
    "CoinMPing",
    "CoinMQueryOrder",
    "CoinMServerTime",
    "CoinMTestOrder",
    "CompletedChannel",
    "CompositeTask",
    "Ed25519Signer",
    "ExchangeClock",
    "FunctionTask",
    "Gap",
    "GatherTask",
    "HistoryRows",
    "HmacSigner",
    "InsecureTransportError",
    "LimiterStatistics",
    "Market",
    "MarketLimits",
    "MarketStatistics",
    "Operator",
    "OrderBook",
    "OrderBookSyncError",
    "OrderBudget",
    "OrderSafety",
    "OrderStatusUnknownError",
    "Progress",
    "RateLimiter",
    "RetryPolicy",
    "RsaSigner",
    "SerialTask",
    "Signer",
    "SimExchange",
    "SpotCancelOrder",
    "SpotFetchAccount",
    "SpotFetchAggTrades",
    "SpotFetchAvgPrice",
    "SpotFetchBalances",
    "SpotFetchBookTicker",
    "SpotFetchExchangeInfo",
    "SpotFetchKline",
    "SpotFetchMyTrades",
    "SpotFetchOpenOrders",
    "SpotFetchOrderBook",
    "SpotFetchTicker",
    "SpotFetchTicker24h",
    "SpotFetchTrades",
    "SpotNewOrder",
    "SpotPing",
    "SpotQueryOrder",
    "SpotServerTime",
    "SpotTestOrder",
    "Stream",
    "StreamClosedError",
    "StreamConnectError",
    "StreamError",
    "StreamGap",
    "StreamOverflowError",
    "StreamSubscribeError",
    "Task",
    "TaskFailedError",
    "TaskQueue",
    "TaskRing",
    "TaskSnapshot",
    "TaskSource",
    "TaskStack",
    "TaskState",
    "TaskTimeoutError",
    "TimeSync",
    "UsdMCancelOrder",
    "UsdMFetchAccount",
    "UsdMFetchAggTrades",
    "UsdMFetchBalances",
    "UsdMFetchBookTicker",
    "UsdMFetchExchangeInfo",
    "UsdMFetchFundingRate",
    "UsdMFetchKline",
    "UsdMFetchOpenInterest",
    "UsdMFetchOpenOrders",
    "UsdMFetchOrderBook",
    "UsdMFetchPositionRisk",
    "UsdMFetchPremiumIndex",
    "UsdMFetchTicker",
    "UsdMFetchTicker24h",
    "UsdMFetchTrades",
    "UsdMFetchUserTrades",
    "UsdMNewOrder",
    "UsdMPing",
    "UsdMQueryOrder",
    "UsdMServerTime",
    "UsdMTestOrder",
    "__version__",
    "agg_trade_schema",
    "download_agg_trades",
    "download_funding_rates",
    "download_klines",
    "download_klines_frame",
    "download_klines_to_file",
    "download_klines_to_parquet",
    "funding_rate_schema",
    "kline_schema",
    "market_for_path",
    "new_client_order_id",
    "open_kline_batch_stream",
    "open_kline_block_stream",
    "open_kline_stream",
    "open_order_book",
    "open_stream",
    "task_function",
]
