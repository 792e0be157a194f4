"""The signed handlers: orders (parsed by orders.py, matched by matching.py, shown by views.py),
accounts, balances and positions."""

from __future__ import annotations

from typing import Any

from .accounts import (
    FUT_MAKER,
    FUT_TAKER,
    SPOT_MAKER,
    SPOT_TAKER,
    Account,
    AccountTrade,
    Order,
    brackets_of,
)
from .errors import ApiError, mandatory
from .matching import MatchingEngine
from .orders import parse_new_order, parse_ref
from .params import Ctx, SymbolLookup, int_param, limit_param, page_limit
from .symbols import SymbolSpec
from .views import (
    AccountViews,
    account_trade_view,
    income_view,
    max_size,
    order_view,
    test_order_commissions,
)

__all__ = ["TradingHandlers"]

_DAY_MS = 86_400_000
#: The widest startTime..endTime of an account trade query: spot 24 hours, futures 7 days.
_TRADES_WINDOW_MS = {"spot": _DAY_MS, "usdm": 7 * _DAY_MS, "coinm": 7 * _DAY_MS}
_ZEROS = "0.00000000"


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

    # -- account trades --------------------------------------------------------------------

    def _trade_specs(self, r: Ctx) -> list[SymbolSpec]:
        """``symbol`` (COIN-M: or ``pair``, every symbol of it)."""
        if r.market == "coinm" and not r.params.get("symbol") and r.params.get("pair"):
            if "orderId" in r.params:
                raise ApiError(-1128, "Combination of optional parameters invalid.")
            pair = r.params["pair"]
            return [s for s in self.engine.specs.values() if s.market == "coinm" and s.pair == pair]
        if r.market == "coinm" and not r.params.get("symbol"):
            raise mandatory("symbol")
        return [self.engine.spec(r.market, r.params)[0]]

    def my_trades(self, r: Ctx) -> Any:
        """GET /api/v3/myTrades, .../userTrades: the account's fills, Binance's filters.

        ``fromId``: ids from it on (not with a time range); ``startTime``: the oldest from
        it; ``endTime`` alone or nothing: the newest. The range spans at most 24 hours
        (spot) or 7 days (futures, where no range at all means the last 7 days)."""
        acct = _account(r)
        specs = self._trade_specs(r)
        limit = page_limit(r, 500)
        order_id = int_param(r.params, "orderId")
        from_id = int_param(r.params, "fromId")
        start = int_param(r.params, "startTime")
        end = int_param(r.params, "endTime")
        if from_id is not None and (start is not None or end is not None):
            raise ApiError(-1128, "Combination of optional parameters invalid.")
        window = _TRADES_WINDOW_MS[r.market]
        if start is not None and end is not None:
            if start > end:
                raise ApiError(-1023, "Start time is greater than end time.")
            if end - start > window:
                hours = window // 3_600_000
                days = f"{hours // 24} days" if hours > 24 else f"{hours} hours"
                raise ApiError(-1127, f"More than {days} between startTime and endTime.")
        elif r.market != "spot" and from_id is None:
            if start is not None:
                end = start + window
            else:
                end = r.now_ms if end is None else end
                start = end - window
        self.engine.sync(acct, r.market, r.now_ms)
        rows: list[tuple[SymbolSpec, AccountTrade]] = []
        for spec in specs:
            for t in acct.trades.get((r.market, spec.symbol), ()):
                if order_id is not None and t.order_id != order_id:
                    continue
                if from_id is not None and t.id < from_id:
                    continue
                if (start is not None and t.time_ms < start) or (
                    end is not None and t.time_ms > end
                ):
                    continue
                rows.append((spec, t))
        if len(specs) > 1:
            rows.sort(key=lambda row: (row[1].time_ms, row[0].symbol, row[1].id))
        oldest_first = from_id is not None or (start is not None and "startTime" in r.params)
        rows = rows[:limit] if oldest_first else rows[-limit:]
        return [account_trade_view(spec, t) for spec, t in rows]

    # -- commissions -----------------------------------------------------------------------

    def account_commission(self, r: Ctx) -> Any:
        """GET /api/v3/account/commission: the symbol's rates (no BNB discount applied)."""
        _account(r)
        spec, _ = self.engine.spec(r.market, r.params)
        zero = {"maker": _ZEROS, "taker": _ZEROS, "buyer": _ZEROS, "seller": _ZEROS}
        return {
            "symbol": spec.symbol,
            "standardCommission": {
                "maker": f"{SPOT_MAKER:.8f}",
                "taker": f"{SPOT_TAKER:.8f}",
                "buyer": _ZEROS,
                "seller": _ZEROS,
            },
            "specialCommission": dict(zero),
            "taxCommission": dict(zero),
            "discount": {
                "enabledForAccount": False,
                "enabledForSymbol": False,
                "discountAsset": "BNB",
                "discount": "0.00000000",
            },
        }

    def trade_fee(self, r: Ctx) -> Any:
        """GET /sapi/v1/asset/tradeFee: every spot symbol's rates, or ``symbol``'s."""
        _account(r)
        if r.params.get("symbol"):
            specs = [self.engine.spec("spot", r.params)[0]]
        else:
            specs = [s for s in self.engine.specs.values() if s.market == "spot"]
        return [
            {
                "symbol": s.symbol,
                "makerCommission": str(SPOT_MAKER),
                "takerCommission": str(SPOT_TAKER),
            }
            for s in specs
        ]

    def commission_rate(self, r: Ctx) -> Any:
        """GET /fapi/v1/commissionRate, /dapi/v1/commissionRate."""
        _account(r)
        spec, _ = self.engine.spec(r.market, r.params)
        return {
            "symbol": spec.symbol,
            "makerCommissionRate": str(FUT_MAKER),
            "takerCommissionRate": str(FUT_TAKER),
        }

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
        version = 3 if r.path.startswith("/fapi/v3/") else 2
        return self.views.position_risk(_account(r), r.market, r.params, r.now_ms, version)

    def leverage_bracket(self, r: Ctx) -> Any:
        """GET /fapi/v1/leverageBracket (notional in USDT) and /dapi/v2/leverageBracket
        (quantity in coin): the brackets the simulator computes margins with."""
        _account(r)
        coinm = r.market == "coinm"
        floor, cap = ("qtyFloor", "qtyCap") if coinm else ("notionalFloor", "notionalCap")
        rows = []
        for s in self.symbols.selected(r):
            brackets = [
                {
                    "bracket": b.number,
                    "initialLeverage": b.leverage,
                    cap: int(b.cap),
                    floor: int(b.floor),
                    "maintMarginRatio": float(b.mmr),
                    "cum": float(b.cum),
                }
                for b in brackets_of(s.spec)
            ]
            rows.append({"symbol": s.spec.symbol, "notionalCoef": 1.0, "brackets": brackets})
        return rows[0] if "symbol" in r.params and not coinm else rows

    def change_leverage(self, r: Ctx) -> Any:
        """POST /fapi/v1/leverage, /dapi/v1/leverage: 1 to the first bracket's leverage
        (-4028 otherwise); refused (-2027) when the position exceeds the new maximum."""
        acct = _account(r)
        spec, _ = self.engine.spec(r.market, r.params)
        raw = r.params.get("leverage")
        if raw is None:
            raise mandatory("leverage")
        lev = int_param(r.params, "leverage")
        assert lev is not None
        if not 1 <= lev <= brackets_of(spec)[0].leverage:
            raise ApiError(-4028, f"Leverage {raw} is not valid")
        self.engine.sync(acct, r.market, r.now_ms)
        pos = acct.positions.get((r.market, spec.symbol))
        if pos is not None and pos.amt:
            mark = self.engine.mark(spec, r.now_ms // 1000)
            size = abs(pos.amt) * (spec.contract_size / mark if r.market == "coinm" else mark)
            if size > max_size(spec, lev):
                msg = "Exceeded the maximum allowable position at current leverage."
                raise ApiError(-2027, msg)
        acct.leverage[(r.market, spec.symbol)] = lev
        acct.update_ms = r.now_ms
        key = "maxQty" if r.market == "coinm" else "maxNotionalValue"
        return {"leverage": lev, key: str(max_size(spec, lev)), "symbol": spec.symbol}

    def change_margin_type(self, r: Ctx) -> Any:
        """POST /fapi/v1/marginType, /dapi/v1/marginType: ISOLATED or CROSSED; -4046 when
        already so, -4048 with a position, -4047 with open orders."""
        acct = _account(r)
        spec, _ = self.engine.spec(r.market, r.params)
        wanted = r.params.get("marginType")
        if not wanted:
            raise mandatory("marginType")
        if wanted.upper() not in ("ISOLATED", "CROSSED"):
            raise ApiError(-1116, "Invalid marginType.")
        iso = wanted.upper() == "ISOLATED"
        key = (r.market, spec.symbol)
        if acct.isolated(*key) == iso:
            raise ApiError(-4046, "No need to change margin type.")
        self.engine.sync(acct, r.market, r.now_ms)
        pos = acct.positions.get(key)
        if pos is not None and pos.amt:
            raise ApiError(-4048, "Margin type cannot be changed if there exists position.")
        if self.engine.open_orders(acct, r.market, spec.symbol):
            raise ApiError(-4047, "Margin type cannot be changed if there exists open orders.")
        acct.margin_type[key] = "isolated" if iso else "cross"
        acct.update_ms = r.now_ms
        return {"code": 200, "msg": "success"}

    def income(self, r: Ctx) -> Any:
        """GET /fapi/v1/income, /dapi/v1/income: REALIZED_PNL, COMMISSION and FUNDING_FEE
        rows, oldest first; without startTime/endTime the last 7 days; limit 100 (max 1000),
        ``page`` from 1."""
        acct = _account(r)
        symbol = r.params.get("symbol")
        if symbol:
            self.engine.spec(r.market, r.params)
        kind = r.params.get("incomeType")
        self.engine.sync(acct, r.market, r.now_ms)
        start = int_param(r.params, "startTime")
        end = int_param(r.params, "endTime")
        if start is None and end is None:
            start = r.now_ms - 7 * _DAY_MS
        elif start is None:
            assert end is not None
            start = end - 7 * _DAY_MS
        if end is None:
            end = r.now_ms
        limit = page_limit(r, 100)
        page = int_param(r.params, "page") or 1
        rows = [
            i
            for i in acct.income[r.market]
            if start <= i.time_ms <= end
            and (not symbol or i.symbol == symbol)
            and (not kind or i.kind == kind)
        ]
        rows.sort(key=lambda i: (i.time_ms, i.tran_id))
        chosen = rows[(page - 1) * limit : page * limit]
        return [income_view(i.symbol, i) for i in chosen]
