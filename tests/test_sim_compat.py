"""Unmodified third-party Binance clients against the served simulator.

python-binance's ``AsyncClient`` and ccxt's ``binance`` are asyncio libraries: the test serves
the simulator with hypercorn in trio and runs the peer with ``asyncio.run`` in a worker thread
(``trio.to_thread.run_sync``). Only loopback is used: every Binance URL the peers know is pointed
at the simulator. Skipped cleanly when a library is not installed.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import warnings
from decimal import Decimal
from typing import Any

import pytest
import trio

from aiocea_trio.sim import DEMO_API_KEY, DEMO_API_SECRET, SimExchange

LIMIT = 60.0
# Third-party import-time deprecations (websockets, dateparser...) are not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]
HOUR_MS = 3_600_000


def _require(module: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"{module} is not installed ({exc}); pip install python-binance ccxt")


async def _serve(nursery: trio.Nursery) -> tuple[SimExchange, str]:
    sim = SimExchange(seed=21, log_unknown_paths=True)
    url = await nursery.start(sim.serve, "127.0.0.1", 0)
    return sim, url


# -- python-binance ------------------------------------------------------------------------


def _python_binance_client(url: str) -> Any:
    binance = _require("binance")

    class SimAsyncClient(binance.AsyncClient):  # type: ignore[misc,name-defined]
        API_URL = f"{url}/api"
        MARGIN_API_URL = f"{url}/sapi"
        FUTURES_URL = f"{url}/fapi"
        FUTURES_DATA_URL = f"{url}/futures/data"
        FUTURES_COIN_URL = f"{url}/dapi"
        FUTURES_COIN_DATA_URL = f"{url}/futures/data"

    return SimAsyncClient(DEMO_API_KEY, DEMO_API_SECRET)


async def _python_binance_session(url: str) -> dict[str, Any]:
    client = _python_binance_client(url)
    out: dict[str, Any] = {}
    try:
        out["ping"] = await client.ping()
        server_time = (await client.get_server_time())["serverTime"]
        out["info"] = await client.get_exchange_info()
        out["symbol_info"] = await client.get_symbol_info("ETHUSDT")
        out["ticker"] = await client.get_symbol_ticker(symbol="BTCUSDT")
        out["depth"] = await client.get_order_book(symbol="BTCUSDT", limit=10)
        out["klines"] = await client.get_klines(symbol="BTCUSDT", interval="1h", limit=5)
        start = server_time - 30 * HOUR_MS
        out["history"] = await client.get_historical_klines(
            "BTCUSDT", "1m", start, server_time - 2 * HOUR_MS
        )
        out["start"] = start
        out["futures_klines"] = await client.futures_klines(
            symbol="BTCUSDT", interval="1d", limit=3
        )
        out["coin_klines"] = await client.futures_coin_klines(
            symbol="BTCUSD_PERP", interval="1h", limit=4
        )
        out["account"] = await client.get_account()
        out["order"] = await client.create_order(
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.001",
            price="10000",
            newClientOrderId="pb-1",
        )
        out["queried"] = await client.get_order(symbol="BTCUSDT", origClientOrderId="pb-1")
        out["open"] = await client.get_open_orders(symbol="BTCUSDT")
        out["cancelled"] = await client.cancel_order(symbol="BTCUSDT", origClientOrderId="pb-1")
        out["market"] = await client.order_market_buy(symbol="ETHUSDT", quantity="0.01")
        out["futures_order"] = await client.futures_create_order(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002"
        )
        out["futures_balance"] = await client.futures_account_balance()
        out["my_trades"] = await client.get_my_trades(symbol="ETHUSDT")
        out["futures_trades"] = await client.futures_account_trades(symbol="BTCUSDT")
        out["positions"] = await client.futures_position_information(symbol="BTCUSDT")
        out["leverage"] = await client.futures_change_leverage(symbol="BTCUSDT", leverage=10)
        out["futures_account"] = await client.futures_account()
        out["income"] = await client.futures_income_history(symbol="BTCUSDT")
        try:
            await client.get_order(symbol="BTCUSDT", orderId=12345)
        except Exception as exc:  # binance.exceptions.BinanceAPIException
            out["error"] = (type(exc).__name__, getattr(exc, "code", None))
    finally:
        await client.close_connection()
    return out


async def test_python_binance_async_client(nursery: trio.Nursery) -> None:
    _require("binance")
    with trio.fail_after(LIMIT):
        sim, url = await _serve(nursery)
        out = await trio.to_thread.run_sync(lambda: asyncio.run(_python_binance_session(url)))
    assert out["ping"] == {}
    assert [s["symbol"] for s in out["info"]["symbols"]][:3] == ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
    assert out["symbol_info"]["baseAsset"] == "ETH"
    assert Decimal(out["ticker"]["price"]) > 0
    assert len(out["depth"]["bids"]) == 10
    assert len(out["klines"]) == 5
    history = out["history"]
    assert len(history) == 28 * 60  # paginated over 1000-row pages, no gap, no overlap
    assert [r[0] for r in history] == [history[0][0] + i * 60_000 for i in range(len(history))]
    assert history[0][0] >= out["start"]
    assert len(out["futures_klines"]) == 3
    assert len(out["coin_klines"]) == 4
    assert out["account"]["accountType"] == "SPOT"
    assert out["order"]["status"] == "NEW"
    assert out["queried"]["clientOrderId"] == "pb-1"
    assert [o["clientOrderId"] for o in out["open"]] == ["pb-1"]
    assert out["cancelled"]["status"] == "CANCELED"
    assert out["market"]["status"] == "FILLED"
    assert out["futures_order"]["symbol"] == "BTCUSDT"
    assert any(b["asset"] == "USDT" for b in out["futures_balance"])
    assert out["positions"][0]["positionAmt"] == "0.002"
    assert out["leverage"]["leverage"] == 10
    assert {a["asset"] for a in out["futures_account"]["assets"]} >= {"USDT", "BTC", "BNB"}
    assert [p["leverage"] for p in out["futures_account"]["positions"]][:1] == ["10"]
    assert {i["incomeType"] for i in out["income"]} == {"COMMISSION"}
    assert [t["orderId"] for t in out["my_trades"]] == [out["market"]["orderId"]]
    assert [t["orderId"] for t in out["futures_trades"]] == [out["futures_order"]["orderId"]]
    assert out["error"] == ("BinanceAPIException", -2013)
    assert sim.account().by_client[("spot", "BTCUSDT", "pb-1")].status == "CANCELED"
    nursery.cancel_scope.cancel()


# -- ccxt ------------------------------------------------------------------------------------


def _ccxt_exchange(url: str) -> Any:
    ccxt = _require("ccxt.async_support")
    exchange = ccxt.binance(
        {
            "apiKey": DEMO_API_KEY,
            "secret": DEMO_API_SECRET,
            "enableRateLimit": False,
            "options": {"fetchMarkets": ["spot", "linear", "inverse"], "fetchCurrencies": False},
        }
    )
    api = dict(exchange.urls["api"])
    hosts = [f"https://{sub}.binance.com" for sub in ("api", "fapi", "dapi", "eapi", "papi")]
    for key, value in api.items():
        if isinstance(value, str):
            for host in hosts:
                if value.startswith(host):
                    api[key] = url + value[len(host) :]
    # Nothing may reach the internet: every URL ccxt knows now points at the simulator.
    stray = [v for v in api.values() if not (isinstance(v, str) and v.startswith(url))]
    assert not stray, f"ccxt URLs not redirected to the simulator: {stray}"
    exchange.urls["api"] = api
    return exchange


async def _ccxt_session(url: str) -> dict[str, Any]:
    exchange = _ccxt_exchange(url)
    out: dict[str, Any] = {}
    try:
        markets = await exchange.load_markets()
        out["markets"] = sorted(markets)
        out["ticker"] = await exchange.fetch_ticker("BTC/USDT")
        out["book"] = await exchange.fetch_order_book("ETH/USDT", limit=5)
        out["trades"] = await exchange.fetch_trades("BTC/USDT", limit=10)
        now = exchange.milliseconds()
        since = now - 40 * HOUR_MS
        rows: list[list[Any]] = []
        cursor = since
        while len(rows) < 2000:
            page = await exchange.fetch_ohlcv("BTC/USDT", "1m", cursor, 1000)
            if not page:
                break
            rows.extend(page)
            cursor = page[-1][0] + 60_000
        out["ohlcv"] = rows
        out["since"] = since
        out["perp_ohlcv"] = await exchange.fetch_ohlcv("BTC/USDT:USDT", "1h", limit=5)
        out["inverse_ohlcv"] = await exchange.fetch_ohlcv(
            "BTC/USD:BTC", "1h", now - 10 * HOUR_MS, 5
        )
        out["funding"] = await exchange.fetch_funding_rate("BTC/USDT:USDT")
        out["balance"] = await exchange.fetch_balance()
        order = await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 10000)
        out["order"] = order
        out["fetched"] = await exchange.fetch_order(order["id"], "BTC/USDT")
        out["open"] = await exchange.fetch_open_orders("BTC/USDT")
        out["cancel"] = await exchange.cancel_order(order["id"], "BTC/USDT")
        out["market"] = await exchange.create_order("ETH/USDT", "market", "buy", 0.01)
        out["perp_order"] = await exchange.create_order("BTC/USDT:USDT", "market", "buy", 0.002)
        out["positions"] = await exchange.fetch_positions(["BTC/USDT:USDT"])
        out["future_balance"] = await exchange.fetch_balance({"type": "future"})
        out["inverse_positions"] = await exchange.fetch_positions(["BTC/USD:BTC"])
        out["my_trades"] = await exchange.fetch_my_trades("ETH/USDT")
        out["perp_trades"] = await exchange.fetch_my_trades("BTC/USDT:USDT")
    finally:
        await exchange.close()
    return out


async def test_ccxt_binance(nursery: trio.Nursery) -> None:
    _require("ccxt.async_support")
    with trio.fail_after(LIMIT):
        sim, url = await _serve(nursery)
        out = await trio.to_thread.run_sync(lambda: asyncio.run(_ccxt_session(url)))
    assert {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "BTC/USD:BTC"} <= set(out["markets"])
    assert out["ticker"]["last"] > 0
    assert out["ticker"]["low"] <= out["ticker"]["last"] <= out["ticker"]["high"]
    assert len(out["book"]["bids"]) == 5
    assert len(out["trades"]) == 10
    ohlcv = out["ohlcv"]
    assert len(ohlcv) == 2000
    assert ohlcv[0][0] >= out["since"]
    assert all(b[0] - a[0] == 60_000 for a, b in itertools.pairwise(ohlcv))
    assert len(out["perp_ohlcv"]) == 5
    assert len(out["inverse_ohlcv"]) == 5
    assert out["funding"]["fundingRate"] is not None
    assert out["balance"]["USDT"]["free"] == 100000
    assert out["order"]["status"] == "open"
    assert out["fetched"]["id"] == out["order"]["id"]
    assert [o["id"] for o in out["open"]] == [out["order"]["id"]]
    assert out["cancel"]["status"] == "canceled"
    assert out["market"]["status"] == "closed"
    assert out["perp_order"]["symbol"] == "BTC/USDT:USDT"
    assert any(p["contracts"] == 0.002 for p in out["positions"])
    assert out["future_balance"]["USDT"]["total"] < 100000  # the commission paid
    assert out["future_balance"]["BTC"]["total"] == 0  # every margin asset, zero included
    assert out["inverse_positions"] == [] or all(
        p["contracts"] == 0 for p in out["inverse_positions"]
    )
    assert [t["order"] for t in out["my_trades"]] == [out["market"]["id"]]
    assert out["my_trades"][0]["fee"]["currency"] == "ETH"
    assert [t["order"] for t in out["perp_trades"]] == [out["perp_order"]["id"]]
    assert out["perp_trades"][0]["side"] == "buy"
    assert sim.limiter.answered_429 == 0
    nursery.cancel_scope.cancel()


# -- streams: python-binance's socket manager, ccxt pro's watch methods -------------------------


async def _python_binance_streams(url: str) -> dict[str, Any]:
    binance = _require("binance")
    client = _python_binance_client(url)
    manager = binance.BinanceSocketManager(client)
    manager.STREAM_URL = url.replace("http://", "ws://") + "/"
    out: dict[str, Any] = {"trades": [], "klines": []}
    try:
        async with manager.trade_socket("BTCUSDT") as socket:
            while len(out["trades"]) < 5:
                out["trades"].append(await asyncio.wait_for(socket.recv(), 30))
        async with manager.kline_socket("ETHUSDT", interval="1m") as socket:
            out["klines"].append(await asyncio.wait_for(socket.recv(), 30))
    finally:
        await client.close_connection()
    return out


async def test_python_binance_socket_manager(nursery: trio.Nursery) -> None:
    with trio.fail_after(120):
        _sim, url = await _serve(nursery)
        out = await trio.to_thread.run_sync(lambda: asyncio.run(_python_binance_streams(url)))
    trades = out["trades"]
    assert [t["e"] for t in trades] == ["trade"] * 5
    ids = [t["t"] for t in trades]
    assert ids == list(range(ids[0], ids[0] + 5))
    assert all(t["s"] == "BTCUSDT" and Decimal(t["p"]) > 0 for t in trades)
    (kline,) = out["klines"]
    assert kline["e"] == "kline"
    assert kline["k"]["i"] == "1m"


async def _ccxt_pro_session(url: str) -> dict[str, Any]:
    pro = _require("ccxt.pro")
    exchange = pro.binance(
        {"options": {"fetchMarkets": ["spot"], "fetchCurrencies": False}, "enableRateLimit": False}
    )
    api = dict(exchange.urls["api"])
    for key, value in api.items():
        if isinstance(value, str) and value.startswith("https://api.binance.com"):
            api[key] = url + value[len("https://api.binance.com") :]
    ws = dict(api["ws"])
    ws["spot"] = url.replace("http://", "ws://") + "/ws"
    api["ws"] = ws
    exchange.urls["api"] = api
    out: dict[str, Any] = {}
    try:
        await exchange.load_markets()
        trades: list[Any] = []
        while len(trades) < 5:
            trades += await asyncio.wait_for(exchange.watch_trades("BTC/USDT"), 30)
        out["trades"] = trades
        # ccxt's local book: the /api/v3/depth snapshot plus the diff stream, by its own rules
        book = None
        for _ in range(5):
            book = await asyncio.wait_for(exchange.watch_order_book("ETH/USDT"), 30)
        out["book"] = {"bids": book["bids"][:5], "asks": book["asks"][:5], "nonce": book["nonce"]}
        out["snapshot"] = await exchange.fetch_order_book("ETH/USDT", limit=5)
    finally:
        await exchange.close()
    return out


async def test_ccxt_pro_watch_trades_and_order_book(nursery: trio.Nursery) -> None:
    with trio.fail_after(120):
        _sim, url = await _serve(nursery)
        out = await trio.to_thread.run_sync(lambda: asyncio.run(_ccxt_pro_session(url)))
    trades = out["trades"]
    assert len(trades) >= 5
    assert all(t["symbol"] == "BTC/USDT" and t["price"] > 0 for t in trades)
    book = out["book"]
    assert book["bids"][0][0] < book["asks"][0][0]
    assert [b[0] for b in book["bids"]] == sorted((b[0] for b in book["bids"]), reverse=True)
    # the book ccxt keeps from snapshot + diffs is the simulator's book (a second later or so)
    snap = out["snapshot"]
    assert abs(book["bids"][0][0] - snap["bids"][0][0]) / snap["bids"][0][0] < 0.01
