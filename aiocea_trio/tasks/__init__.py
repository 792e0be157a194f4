"""The ready-made Binance task catalog: spot, USDⓈ-M and COIN-M families.

Names are `<Market><Action>`: `Spot`, `UsdM` or `CoinM`, then `Ping`, `ServerTime`,
`FetchKline`, `NewOrder`... (docs/tasks.md has the table). `BinanceTask` is the base to
subclass for an endpoint the catalog lacks.
"""

from __future__ import annotations

from ._base import BinanceTask as BinanceTask
from .coinm import CoinMCancelOrder as CoinMCancelOrder
from .coinm import CoinMFetchAccount as CoinMFetchAccount
from .coinm import CoinMFetchAggTrades as CoinMFetchAggTrades
from .coinm import CoinMFetchBalances as CoinMFetchBalances
from .coinm import CoinMFetchBookTicker as CoinMFetchBookTicker
from .coinm import CoinMFetchExchangeInfo as CoinMFetchExchangeInfo
from .coinm import CoinMFetchFundingRate as CoinMFetchFundingRate
from .coinm import CoinMFetchKline as CoinMFetchKline
from .coinm import CoinMFetchOpenInterest as CoinMFetchOpenInterest
from .coinm import CoinMFetchOpenOrders as CoinMFetchOpenOrders
from .coinm import CoinMFetchOrderBook as CoinMFetchOrderBook
from .coinm import CoinMFetchPositionRisk as CoinMFetchPositionRisk
from .coinm import CoinMFetchPremiumIndex as CoinMFetchPremiumIndex
from .coinm import CoinMFetchTicker as CoinMFetchTicker
from .coinm import CoinMFetchTicker24h as CoinMFetchTicker24h
from .coinm import CoinMFetchTrades as CoinMFetchTrades
from .coinm import CoinMFetchUserTrades as CoinMFetchUserTrades
from .coinm import CoinMNewOrder as CoinMNewOrder
from .coinm import CoinMPing as CoinMPing
from .coinm import CoinMQueryOrder as CoinMQueryOrder
from .coinm import CoinMServerTime as CoinMServerTime
from .coinm import CoinMTestOrder as CoinMTestOrder
from .spot import SpotCancelOrder as SpotCancelOrder
from .spot import SpotFetchAccount as SpotFetchAccount
from .spot import SpotFetchAggTrades as SpotFetchAggTrades
from .spot import SpotFetchAvgPrice as SpotFetchAvgPrice
from .spot import SpotFetchBalances as SpotFetchBalances
from .spot import SpotFetchBookTicker as SpotFetchBookTicker
from .spot import SpotFetchExchangeInfo as SpotFetchExchangeInfo
from .spot import SpotFetchKline as SpotFetchKline
from .spot import SpotFetchMyTrades as SpotFetchMyTrades
from .spot import SpotFetchOpenOrders as SpotFetchOpenOrders
from .spot import SpotFetchOrderBook as SpotFetchOrderBook
from .spot import SpotFetchTicker as SpotFetchTicker
from .spot import SpotFetchTicker24h as SpotFetchTicker24h
from .spot import SpotFetchTrades as SpotFetchTrades
from .spot import SpotNewOrder as SpotNewOrder
from .spot import SpotPing as SpotPing
from .spot import SpotQueryOrder as SpotQueryOrder
from .spot import SpotServerTime as SpotServerTime
from .spot import SpotTestOrder as SpotTestOrder
from .usdm import UsdMCancelOrder as UsdMCancelOrder
from .usdm import UsdMFetchAccount as UsdMFetchAccount
from .usdm import UsdMFetchAggTrades as UsdMFetchAggTrades
from .usdm import UsdMFetchBalances as UsdMFetchBalances
from .usdm import UsdMFetchBookTicker as UsdMFetchBookTicker
from .usdm import UsdMFetchExchangeInfo as UsdMFetchExchangeInfo
from .usdm import UsdMFetchFundingRate as UsdMFetchFundingRate
from .usdm import UsdMFetchKline as UsdMFetchKline
from .usdm import UsdMFetchOpenInterest as UsdMFetchOpenInterest
from .usdm import UsdMFetchOpenOrders as UsdMFetchOpenOrders
from .usdm import UsdMFetchOrderBook as UsdMFetchOrderBook
from .usdm import UsdMFetchPositionRisk as UsdMFetchPositionRisk
from .usdm import UsdMFetchPremiumIndex as UsdMFetchPremiumIndex
from .usdm import UsdMFetchTicker as UsdMFetchTicker
from .usdm import UsdMFetchTicker24h as UsdMFetchTicker24h
from .usdm import UsdMFetchTrades as UsdMFetchTrades
from .usdm import UsdMFetchUserTrades as UsdMFetchUserTrades
from .usdm import UsdMNewOrder as UsdMNewOrder
from .usdm import UsdMPing as UsdMPing
from .usdm import UsdMQueryOrder as UsdMQueryOrder
from .usdm import UsdMServerTime as UsdMServerTime
from .usdm import UsdMTestOrder as UsdMTestOrder

__all__ = [
    "BinanceTask",
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
]
