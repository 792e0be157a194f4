"""The request pipeline, as Binance runs it: every request is charged its weight first, then
faults are drawn, then the parameters, API key, signature and timestamp are checked, then the
order is counted and the handler runs; spot orders that succeed are refunded their weight."""

from __future__ import annotations

from typing import Any

import attrs
import trio
from starlette.requests import Request
from starlette.responses import Response

from ..endpoints import Endpoint, find
from .auth import Authenticator
from .clock import SimClock
from .errors import ApiError
from .faults import FaultDecision, FaultInjector
from .limits import OrderCounter, WeightLimiter
from .params import Ctx, Handler, parse_params
from .responses import DripResponse, DropResponse, dumps, error, garbage, reply

__all__ = ["Pipeline", "Served"]

_STATUS_UNKNOWN = (
    "An unexpected response was received from the message bus. Execution status unknown."
)
_TOO_MUCH = "Too much request weight used; please use WebSocket Streams for live updates."


@attrs.frozen
class Served:
    """A route the simulator serves: the registry's endpoint and the handler answering it.

    Attributes:
        allowed: the parameters it reads (others are -1104); None accepts any (signed ones).
    """

    endpoint: Endpoint
    handler: Handler
    allowed: frozenset[str] | None = None


@attrs.define(eq=False, slots=True)
class _Admitted:
    """A request that was charged its weight."""

    ip: str
    query: bytes
    body: bytes
    params: dict[str, str]
    params_error: ApiError | None
    weight: int
    headers: dict[str, str]


@attrs.frozen(kw_only=True)
class Pipeline:
    """What every request goes through, around its handler."""

    clock: SimClock
    limiter: WeightLimiter
    faults: FaultInjector
    order_counter: OrderCounter
    auth: Authenticator
    log_unknown_paths: bool = False

    async def respond(
        self, request: Request, market: str, served: Served | None, *, known_path: bool
    ) -> Response:
        """The answer to ``request``; ``served`` None: nothing serves its method and path."""
        scope = request.scope
        method: str = scope["method"]
        path: str = scope["path"]
        now = self.clock.now_ms()
        endpoint = served.endpoint if served is not None else find(market, method, path)
        admitted = await self._admit(request, market, endpoint, now)
        if isinstance(admitted, Response):
            return admitted
        if served is None:
            if known_path:
                return reply(405, {"code": -1000, "msg": "Method not allowed."}, admitted.headers)
            if self.log_unknown_paths:
                print(f"simulator: unknown path {method} {path}", flush=True)
            return reply(404, {"code": -1000, "msg": "Unknown path."}, admitted.headers)
        placement = endpoint.counts_as_order
        is_order = placement or endpoint.order is not None
        elapsed_s = (now - self.clock.initial_ms()) / 1000.0
        decision = self.faults.decide(path, is_order, placement, elapsed_s)
        early = _early_answer(decision, admitted.headers)
        if early is not None:
            return early
        ctx = Ctx(method, path, market, admitted.params, now, limit_rule=endpoint.limit)
        try:
            result = await self._run(request, served, ctx, admitted, decision)
        except ApiError as exc:
            return error(exc, admitted.headers)
        if endpoint.free_on_success:
            used = self.limiter.refund(market, admitted.ip, admitted.weight, ctx.now_ms)
            admitted.headers[self.limiter.header] = str(used)
        return await _answer(result, decision, placement, admitted.headers)

    async def _admit(
        self, request: Request, market: str, endpoint: Endpoint, now: int
    ) -> _Admitted | Response:
        """Read the parameters and charge the weight (before anything can fail, as Binance)."""
        scope = request.scope
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        query: bytes = scope.get("query_string", b"")
        body = b"" if scope["method"] == "GET" else await request.body()
        headers: dict[str, str] = {}
        params_error: ApiError | None = None
        try:
            params = parse_params(query, body)
        except ApiError as exc:
            params, params_error = {}, exc
        weight = endpoint.request_weight(params)
        try:
            used = self.limiter.charge(market, ip, weight, now)
        except ApiError as exc:
            return error(exc, headers)
        headers[self.limiter.header] = str(used)
        return _Admitted(ip, query, body, params, params_error, weight, headers)

    async def _run(
        self,
        request: Request,
        served: Served,
        ctx: Ctx,
        admitted: _Admitted,
        decision: FaultDecision,
    ) -> Any:
        """Parameters, then authentication, the fault's latency, order counting, the handler."""
        params = admitted.params
        if admitted.params_error is not None:
            raise admitted.params_error
        if served.allowed is not None and not params.keys() <= served.allowed:
            read = len(params.keys() & served.allowed)
            raise ApiError(
                -1104,
                f"Not all sent parameters were read; read '{read}' parameter(s) but was sent "
                f"'{len(params)}'.",
            )
        signed = served.endpoint.signed
        ts = recv = 0.0
        if signed:
            api_key = request.headers.get("x-mbx-apikey", "")
            auth = self.auth.authenticate(
                api_key, ctx.market, params, admitted.query, admitted.body, ctx.now_ms
            )
            ctx.account, ts, recv = auth.account, auth.timestamp, auth.recv_window
        if decision.latency:
            await trio.sleep(decision.latency)
            ctx.now_ms = self.clock.now_ms()
            if signed and ctx.market == "spot" and ctx.now_ms - ts > recv:
                # Spot's second, pre-engine recvWindow check (since 2025-06).
                raise ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")
        if served.endpoint.counts_as_order:
            assert ctx.account is not None
            name = ctx.account.config.name
            admitted.headers.update(self.order_counter.count(name, ctx.market, ctx.now_ms))
        return served.handler(ctx)


def _early_answer(decision: FaultDecision, headers: dict[str, str]) -> Response | None:
    """The faults that answer without processing the request (None: process it)."""
    if decision.drop:
        return DropResponse()
    if decision.error:
        return reply(503, {"code": -1006, "msg": _STATUS_UNKNOWN}, headers)
    if decision.rate_limited is not None:
        retry = {"Retry-After": f"{decision.rate_limited:g}"}
        return reply(429, {"code": -1003, "msg": _TOO_MUCH}, {**headers, **retry})
    if decision.error_in_200:
        msg = "An unknown error occurred while processing the request."
        return reply(200, {"code": -1000, "msg": msg}, headers)
    return None


async def _answer(
    result: Any, decision: FaultDecision, placement: bool, headers: dict[str, str]
) -> Response:
    """The processed request's answer, or what a fault makes of it."""
    if decision.lose_response and placement:
        return DropResponse()
    if decision.garbage is not None:
        return garbage(decision.garbage, dumps(result), headers)
    if decision.slow_response:
        await trio.sleep(decision.slow_response)
    if decision.drip_interval:
        return DripResponse(dumps(result), 200, headers, decision.drip_interval)
    return reply(200, result, headers)
