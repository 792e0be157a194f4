"""Every route the simulator serves is an endpoint of the registry (or listed as simulator-only
with its reason), and the simulator treats it as the registry says: market, method, path,
signed, and the weight it charges."""

from __future__ import annotations

import httpx
import pytest
import trio.testing
from starlette.routing import Route

from aiocea_trio.endpoints import ENDPOINTS, Endpoint, find
from aiocea_trio.markets import market_for_path
from aiocea_trio.sim import SimExchange
from aiocea_trio.sim.pipeline import Served
from aiocea_trio.sim.routes import ARCHIVE_PATH, SIMULATOR_ONLY, PathRoute

START = 1_767_225_600_000


def _served(sim: SimExchange) -> list[tuple[str, str, Served]]:
    """(method, route path, served) for every route of the simulator's app."""
    out = []
    for route in sim.app.routes:
        assert isinstance(route, Route)
        if route.path == ARCHIVE_PATH:
            continue
        assert isinstance(route.endpoint, PathRoute), route.path
        out += [(method, route.path, s) for method, s in route.endpoint.by_method.items()]
    return out


SERVED = _served(SimExchange(start_time_ms=START))


def test_the_simulator_serves_its_endpoints() -> None:
    assert len(SERVED) >= 75
    paths = {route.path for route in SimExchange().app.routes if isinstance(route, Route)}
    assert ARCHIVE_PATH in paths
    assert ("GET", ARCHIVE_PATH) in SIMULATOR_ONLY


@pytest.mark.parametrize(
    ("method", "path", "served"), SERVED, ids=[f"{m} {p}" for m, p, _ in SERVED]
)
def test_each_route_is_a_registry_endpoint(method: str, path: str, served: Served) -> None:
    endpoint = served.endpoint
    assert (endpoint.method, endpoint.path) == (method, path)
    assert endpoint.market == market_for_path(path)
    if (method, path) in SIMULATOR_ONLY:
        assert SIMULATOR_ONLY[(method, path)]  # a reason
        assert not any(e is endpoint for e in ENDPOINTS)
        # charged as any endpoint the registry does not list
        assert endpoint.weight == find(endpoint.market, method, path).weight
    else:
        assert any(e is endpoint for e in ENDPOINTS)
        assert find(endpoint.market, method, path) is endpoint


@pytest.mark.parametrize(
    ("method", "path", "served"), SERVED, ids=[f"{m} {p}" for m, p, _ in SERVED]
)
async def test_signed_and_weight_as_the_registry_says(
    method: str, path: str, served: Served, autojump_clock: trio.testing.MockClock
) -> None:
    """Sent without a key, a signed route answers 401 and any other does not; either way the
    request is charged the entry's weight for its parameters."""
    endpoint: Endpoint = served.endpoint
    sim = SimExchange(start_time_ms=START)
    params = {"symbol": sim.symbols_of(endpoint.market.value)[0], "limit": "5"}
    if served.allowed is not None:
        params = {k: v for k, v in params.items() if k in served.allowed}
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        r = await http.request(method, path, params=params)
    assert (r.status_code == 401) == endpoint.signed, r.text
    assert int(r.headers["x-mbx-used-weight-1m"]) == endpoint.request_weight(params)


def test_the_docs_list_every_route_served() -> None:
    from pathlib import Path

    page = (Path(__file__).parent.parent / "docs" / "simulator.md").read_text()
    missing = [
        f"{method} {path}"
        for method, path, _ in _served(SimExchange())
        if not path.startswith("/data/") and f"| `{method} {path}` |" not in page
    ]
    assert not missing, f"docs/simulator.md does not list: {missing}"
