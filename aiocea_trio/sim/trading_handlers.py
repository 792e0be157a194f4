"""The signed handlers: orders (parsed by orders.py, matched by matching.py, shown by views.py),
accounts, balances and positions."""

from __future__ import annotations

from typing import Any

from .accounts import Account, Order
from .matching import MatchingEngine
from .orders import parse_new_order, parse_ref
from .params import Ctx, SymbolLookup, int_param, limit_param
from .symbols import SymbolSpec
from .views import AccountViews, order_view, test_order_commissions

__all__ = ["TradingHandlers"]

#: Binance's default BTCUSDT-like leverage brackets:
#: ``(initial leverage, notional floor, notional cap, maintenance margin ratio, cum)``.
_BRACKETS = (
    (125, 0, 50_000, 0.004, 0.0),
    (100, 50_000, 600_000, 0.005, 50.0),
    (50, 600_000, 3_000_000, 0.01, 3_050.0),
    (20, 3_000_000, 12_000_000, 0.025, 48_050.0),
    (10, 12_000_000, 70_000_000, 0.05, 348_050.0),
)


def _account(r: Ctx) -> Account:
    assert r.account is not None  # the pipeline authenticated the signed request
    return r.account


class TradingHandlers:
    """Order entry, queries and cancels; account, balance and position answers."""

    def __init__(self, engine: MatchingEngine, symbols: SymbolLookup) -> None:
        self.engine = engine
        self.views = AccountViews(engine)
        self.symbols = symbols

    # -- orders ----------------------------------------------------------------------------

    def new_order(self, r: Ctx) -> Any:
        """POST .../order: check, reserve, match; the answer in the requested shape."""
        acct = _account(r)
        spec, series = self.engine.spec(r.market, r.params)
        self.engine.sync(acct, r.market, r.now_ms)
        new = parse_new_order(r.market, r.params, series, spec, r.now_ms)
        order = self.engine.place(acct, r.market, spec, new, r.now_ms)
        return order_view(spec, order, new.resp_type, new=True)

    def test_order(self, r: Ctx) -> Any:
        """POST .../order/test: check only."""
        _account(r)
        spec, series = self.engine.spec(r.market, r.params)
        parse_new_order(r.market, r.params, series, spec, r.now_ms)
        if r.market == "spot" and r.params.get("computeCommissionRates", "").lower() == "true":
            return test_order_commissions()
        return {}

    def _named_order(self, r: Ctx, *, cancel: bool) -> tuple[Account, SymbolSpec, Order]:
        """The order a query or cancel names, after the account's orders are brought up to
        date (symbol first, then the order's reference: Binance's order of errors)."""
        acct = _account(r)
        spec, _ = self.engine.spec(r.market, r.params)
        self.engine.sync(acct, r.market, r.now_ms)
        ref = parse_ref(r.market, r.params)
        return acct, spec, self.engine.find(acct, r.market, spec, ref, cancel=cancel)

    def query_order(self, r: Ctx) -> Any:
        """GET .../order: by orderId or origClientOrderId, open or closed."""
        _, spec, order = self._named_order(r, cancel=False)
        return order_view(spec, order, "QUERY")

    def cancel_order(self, r: Ctx) -> Any:
        """DELETE .../order: cancel an open order (-2011 if it is not open)."""
        acct, spec, order = self._named_order(r, cancel=True)
        return self._cancel(acct, spec, order, r.params.get("newClientOrderId"), r.now_ms)

    def _cancel(
        self, acct: Account, spec: SymbolSpec, order: Order, new_client_id: str | None, now: int
    ) -> dict[str, Any]:
        self.engine.cancel(acct, spec, order, now)
        view = order_view(spec, order, "CANCEL")
        if order.market == "spot":
            view["origClientOrderId"] = order.client_order_id
            view["clientOrderId"] = new_client_id or self.engine.new_client_id()
            view["transactTime"] = now
        return view

    def _open_orders(self, r: Ctx) -> list[Order]:
        acct = _account(r)
        symbol = r.params.get("symbol")
        if symbol:
            self.engine.spec(r.market, r.params)
        self.engine.sync(acct, r.market, r.now_ms)
        return self.engine.open_orders(acct, r.market, symbol)

    def open_orders(self, r: Ctx) -> Any:
        """GET .../openOrders, for one symbol or all."""
        specs = self.engine.specs
        return [order_view(specs[(o.market, o.symbol)], o, "QUERY") for o in self._open_orders(r)]

    def cancel_open_orders(self, r: Ctx) -> Any:
        """DELETE /api/v3/openOrders or .../allOpenOrders: every open order of a symbol."""
        acct = _account(r)
        self.symbols.series(r)
        out = []
        for order in self._open_orders(r):
            spec = self.engine.specs[(order.market, order.symbol)]
            out.append(self._cancel(acct, spec, order, None, r.now_ms))
        if r.market != "spot":
            return {"code": 200, "msg": "The operation of cancel all open order is done."}
        return out

    def all_orders(self, r: Ctx) -> Any:
        """GET .../allOrders: the symbol's orders from ``orderId`` on, the last ``limit``."""
        acct = _account(r)
        series = self.symbols.series(r)
        limit = limit_param(r.params, 500, 1000)
        self.engine.sync(acct, r.market, r.now_ms)
        symbol = series.spec.symbol
        orders = [o for o in acct.orders.values() if o.market == r.market and o.symbol == symbol]
        orders.sort(key=lambda o: o.order_id)
        from_id = int_param(r.params, "orderId")
        if from_id is not None:
            orders = [o for o in orders if o.order_id >= from_id]
        return [order_view(series.spec, o, "QUERY") for o in orders[-limit:]]

    # -- accounts --------------------------------------------------------------------------

    def account(self, r: Ctx) -> Any:
        omit = r.params.get("omitZeroBalances", "false").lower() == "true"
        return self.views.spot_account(_account(r), r.now_ms, omit)

    def balance(self, r: Ctx) -> Any:
        return self.views.futures_balance(_account(r), r.market, r.now_ms)

    def futures_account(self, r: Ctx) -> Any:
        version = 3 if r.path.startswith("/fapi/v3/") else 2
        return self.views.futures_account(_account(r), r.market, r.now_ms, version)

    def position_risk(self, r: Ctx) -> Any:
        return self.views.position_risk(_account(r), r.market, r.params, r.now_ms)

    def leverage_bracket(self, r: Ctx) -> Any:
        """Binance's default BTCUSDT-like bracket table (the simulator uses one leverage)."""
        brackets = [
            {
                "bracket": i + 1,
                "initialLeverage": lev,
                "notionalCap": cap,
                "notionalFloor": floor,
                "maintMarginRatio": mmr,
                "cum": cum,
            }
            for i, (lev, floor, cap, mmr, cum) in enumerate(_BRACKETS)
        ]
        rows = [
            {"symbol": s.spec.symbol, "notionalCoef": 1.0, "brackets": brackets}
            for s in self.symbols.selected(r)
        ]
        return rows[0] if "symbol" in r.params else rows
