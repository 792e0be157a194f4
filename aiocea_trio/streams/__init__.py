"""Binance market streams over WebSocket, as trio receive channels that never fail silently.

``async with open_stream(client, "btcusdt@kline_1m") as stream: async for event in stream:``
— see docs/streams.md. The design is described at the top of ``_manager.py``.
"""

from __future__ import annotations

from ._buffer import Policy as Policy
from ._buffer import StreamClosedError as StreamClosedError
from ._buffer import StreamError as StreamError
from ._buffer import StreamOverflowError as StreamOverflowError
from ._manager import DEFAULT_BUFFER as DEFAULT_BUFFER
from ._manager import Stream as Stream
from ._manager import StreamConnectError as StreamConnectError
from ._manager import StreamStatistics as StreamStatistics
from ._manager import StreamSubscribeError as StreamSubscribeError
from ._manager import default_policy as default_policy
from ._manager import open_stream as open_stream
from .book import BookSnapshot as BookSnapshot
from .book import BookStatistics as BookStatistics
from .book import OrderBook as OrderBook
from .book import OrderBookSyncError as OrderBookSyncError
from .book import open_order_book as open_order_book
from .events import AggTrade as AggTrade
from .events import BookTicker as BookTicker
from .events import DepthUpdate as DepthUpdate
from .events import Event as Event
from .events import Kline as Kline
from .events import MarkPrice as MarkPrice
from .events import MiniTicker as MiniTicker
from .events import PartialDepth as PartialDepth
from .events import RawEvent as RawEvent
from .events import StreamGap as StreamGap
from .events import Ticker as Ticker
from .events import Trade as Trade
from .feed import TaskFeed as TaskFeed
from .feed import tasks_from as tasks_from

__all__ = [
    "DEFAULT_BUFFER",
    "AggTrade",
    "BookSnapshot",
    "BookStatistics",
    "BookTicker",
    "DepthUpdate",
    "Event",
    "Kline",
    "MarkPrice",
    "MiniTicker",
    "OrderBook",
    "OrderBookSyncError",
    "PartialDepth",
    "Policy",
    "RawEvent",
    "Stream",
    "StreamClosedError",
    "StreamConnectError",
    "StreamError",
    "StreamGap",
    "StreamOverflowError",
    "StreamStatistics",
    "StreamSubscribeError",
    "TaskFeed",
    "Ticker",
    "Trade",
    "default_policy",
    "open_order_book",
    "open_stream",
    "tasks_from",
]
