"""The simulator's true book: limit-independent, evolving by exact diffs with chained ids."""

from __future__ import annotations

import pytest

from aiocea_trio.sim.market import MarketData
from aiocea_trio.sim.symbols import default_symbols

NOW = 1_767_225_600 + 5 * 3600 + 17
SPECS = default_symbols(NOW * 1000)
CASES = [("spot", "BTCUSDT"), ("spot", "SOLUSDT"), ("usdm", "BTCUSDT"), ("coinm", "ETHUSD_PERP")]


@pytest.mark.parametrize(("market", "symbol"), CASES)
def test_snapshot_plus_diffs_is_the_true_book(market: str, symbol: str) -> None:
    series = MarketData(5, SPECS).get(market, symbol)
    assert series is not None
    band = series.book_model.band
    bids, asks = (dict(side) for side in series.book((NOW - 1) * 1000, band))
    previous = series.update_id(NOW - 1)
    for s in range(NOW, NOW + 40):
        assert series.update_id(s) > previous  # U = previous u + 1 <= u
        previous = series.update_id(s)
        diff_bids, diff_asks = series.book_diff(s)
        assert diff_bids == sorted(diff_bids, reverse=True)
        assert diff_asks == sorted(diff_asks)
        for book, changes in ((bids, diff_bids), (asks, diff_asks)):
            for price, qty in changes:
                if qty:
                    book[price] = qty
                else:
                    book.pop(price, None)
        true_bids, true_asks = series.book(s * 1000, band)
        assert sorted(bids.items(), reverse=True) == true_bids
        assert sorted(asks.items()) == true_asks
        assert len(true_bids) <= band
        assert true_bids[0][0] < true_asks[0][0]


@pytest.mark.parametrize(("market", "symbol"), CASES)
def test_a_snapshot_is_a_prefix_of_a_deeper_one(market: str, symbol: str) -> None:
    series = MarketData(5, SPECS).get(market, symbol)
    assert series is not None
    deep = series.book(NOW * 1000, 1000)
    for limit in (1, 5, 20, 100, 500):
        bids, asks = MarketData(5, SPECS).get(market, symbol).book(NOW * 1000, limit)  # type: ignore[union-attr]
        assert bids == deep[0][:limit]
        assert asks == deep[1][:limit]


def test_deep_levels_mostly_persist() -> None:
    series = MarketData(5, SPECS).get("spot", "ETHUSDT")
    assert series is not None
    changed = 0
    total = 0
    for s in range(NOW, NOW + 10):
        bids, asks = series.book_diff(s)
        changed += len(bids) + len(asks)
        total += sum(len(side) for side in series.book(s * 1000, 5000))
    assert 0 < changed < total * 0.15
