"""The simulator's WebSocket market streams: Binance's paths, subscription protocol and rules.

Paths (on the REST host and port): spot ``/ws``, ``/ws/<s1>/<s2>``, ``/stream?streams=a/b``;
USDⓈ-M under ``/fstream``: ``/fstream/public/ws|stream`` and ``/fstream/market/ws|stream``
(a route delivers only its own kinds, ``USDM_ROUTES``; the unrouted ``/fstream/ws|stream``
delivers ``public`` ones), COIN-M ``/dstream/ws|stream``. Raw paths send payloads, combined
ones ``{"stream": name, "data": payload}``.

One connection is one nursery owned by its ASGI call: a reader (protocol, message-rate
limit, pongs), a writer draining a bounded queue, a pusher (the streams' schedules), a pinger
and the 24-hour limit. Whatever closes the connection cancels that nursery. When the queue is
full the client is not reading fast enough and is disconnected, as Binance does, so memory
stays bounded.

Pings: ASGI has no ping frames, so the simulator uses an extension of its own
(``PING_EXTENSION`` in ``scope["extensions"]``): the app sends ``{"type":
"aiocea.websocket.ping", "bytes": ...}`` and receives ``aiocea.websocket.pong`` (and
``aiocea.websocket.ping`` for the client's own pings). ``serve.py`` (hypercorn) and
``SimWebSocketTransport`` (httpx-ws, in-process) provide it; under a server without it no
pings are sent and no pong deadline applies.
"""

from __future__ import annotations

import json
import math
import re
from collections import deque
from typing import Any, Final
from urllib.parse import parse_qs

import attrs
import trio
from starlette.types import Message, Receive, Scope, Send

from .clock import SimClock
from .market import MarketData
from .market_handlers import TickerHandlers
from .stream_payloads import Payload, Stream, StreamError, parse_stream, route_of
from .symbols import SymbolSpec

__all__ = ["PING_EXTENSION", "RULES", "StreamConnection", "StreamRules", "StreamServer"]

#: The ASGI extension through which the simulator pings and sees pongs.
PING_EXTENSION: Final = "aiocea.websocket.ping"
_PING: Final = "aiocea.websocket.ping"
_PONG: Final = "aiocea.websocket.pong"

_PATH = re.compile(
    r"^(?:(?P<prefix>/fstream(?:/(?P<route>public|market))?|/dstream))?"
    r"/(?P<mode>ws|stream)(?:/(?P<streams>.*))?$"
)
_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_SPOT_ID = re.compile(r"^[A-Za-z0-9]{1,36}$")


@attrs.frozen
class StreamRules:
    """A market's connection rules (Binance's, §10.2 of the notes)."""

    ping_interval: float
    """Seconds between the server's pings."""
    pong_timeout: float
    """Seconds an unanswered ping is tolerated before the connection is closed."""
    max_incoming_per_s: int
    """Incoming frames (JSON, ping, pong) per second; more closes the connection."""
    max_streams: int
    lifetime: float = 86400.0
    """Seconds a connection lasts at most."""
    send_buffer: int = 2048
    """Messages queued for a client; a full queue (a slow consumer) closes the connection."""


RULES: Final[dict[str, StreamRules]] = {
    "spot": StreamRules(ping_interval=20, pong_timeout=60, max_incoming_per_s=5, max_streams=1024),
    "usdm": StreamRules(180, 600, 10, 1024),
    "coinm": StreamRules(180, 600, 10, 200),
}
#: Connection attempts per IP: at most 300 per 5 minutes (spot's rule, applied everywhere).
ATTEMPTS: Final = (300, 300.0)


class _Closed(Exception):
    """Raised inside a connection's nursery to end it with a close code and reason."""

    def __init__(self, code: int, reason: str, *, flush: bool = True) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason
        self.flush = flush
        """Send what is already queued before the close frame (as a socket server whose
        replies were written before the close would); not for a drop or a slow consumer."""


@attrs.define(eq=False)
class StreamConnection:
    """One client connection: its streams, properties and state (``StreamServer.connections``)."""

    server: StreamServer
    market: str
    route: str | None
    combined: bool
    client_ip: str
    rules: StreamRules
    has_ping: bool
    streams: dict[str, Stream] = attrs.field(factory=dict)
    opened: float = attrs.field(factory=trio.current_time)
    close_code: int | None = None
    close_reason: str = ""
    silent_until: float = -math.inf
    sent: int = 0
    _out: trio.MemorySendChannel[str] | None = None
    _changed: trio.Event = attrs.field(factory=trio.Event)
    _incoming: deque[float] = attrs.field(factory=deque)
    _unanswered: dict[bytes, float] = attrs.field(factory=dict)
    _scope: trio.CancelScope | None = None
    _pending_close: _Closed | None = None
    _end: float = math.inf
    _end_reason: str = "connection lifetime (24 h) reached"
    _end_changed: trio.Event = attrs.field(factory=trio.Event)

    def __attrs_post_init__(self) -> None:
        self._end = self.opened + self.rules.lifetime

    # -- faults and control ---------------------------------------------------------------

    def close_soon(self, code: int, reason: str, *, flush: bool = True) -> None:
        """End the connection (from outside its tasks): it closes with ``code``."""
        self._pending_close = _Closed(code, reason, flush=flush)
        if self._scope is not None:
            self._scope.cancel()

    def silent(self) -> bool:
        return trio.current_time() < self.silent_until

    # -- sending ---------------------------------------------------------------------------

    def _queue(self, text: str) -> None:
        assert self._out is not None
        try:
            self._out.send_nowait(text)
        except trio.ClosedResourceError:  # (closing: nothing more is sent)
            return
        except trio.WouldBlock:
            raise _Closed(1008, "slow consumer: send buffer full", flush=False) from None

    def _reply(self, body: dict[str, Any]) -> None:
        self._queue(json.dumps(body, separators=(",", ":")))

    def _push(self, name: str, payload: Payload) -> None:
        body = {"stream": name, "data": payload} if self.combined else payload
        self._queue(json.dumps(body, separators=(",", ":")))

    # -- tasks -----------------------------------------------------------------------------

    async def run(self, receive: Receive, send: Send, initial: list[str]) -> None:
        """Serve the connection until it closes; then send the close frame if still open.

        The writer outlives the other tasks: a close for a broken rule (rate, pong, 24 h,
        shutdown) first lets it send what is queued (within 5 s), as a server whose replies
        were written before the offending frame arrived; a drop or a slow consumer cancels it.
        """
        out, inbox = trio.open_memory_channel[str](self.rules.send_buffer)
        self._out = out
        for name in initial:
            try:
                self._subscribe(name)
            except StreamError:
                continue
        closed: _Closed | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._writer, inbox, send)
            with out:  # closed: the writer ends once it has sent the rest
                closed = await self._serve(receive, send)
            if closed is None or not closed.flush:
                nursery.cancel_scope.cancel()
            else:
                nursery.cancel_scope.deadline = trio.current_time() + 5
        if closed is not None:
            self.close_code, self.close_reason = closed.code, closed.reason
            with trio.move_on_after(5, shield=True):
                await send(
                    {"type": "websocket.close", "code": closed.code, "reason": closed.reason}
                )

    async def _serve(self, receive: Receive, send: Send) -> _Closed | None:
        """Run the reader, pusher, pinger and lifetime until one ends the connection: the
        close to send, or None when the client disconnected."""
        closed: _Closed | None = None
        disconnected = False
        try:
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                if self._pending_close is not None:  # (closed before it started)
                    nursery.cancel_scope.cancel()
                nursery.start_soon(self._pusher)
                nursery.start_soon(self._lifetime)
                if self.has_ping:
                    nursery.start_soon(self._pinger, send)
                await self._reader(receive)
                disconnected = True
                nursery.cancel_scope.cancel()
        except* _Closed as group:
            first = group.exceptions[0]
            assert isinstance(first, _Closed)
            closed = first
        if disconnected:
            return None
        return closed or self._pending_close

    async def _reader(self, receive: Receive) -> None:
        """Incoming frames: the protocol, the rate limit, pongs. Returns on disconnect."""
        limit = self.rules.max_incoming_per_s
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                self.close_code = message.get("code", 1000)
                return
            now = trio.current_time()
            incoming = self._incoming
            incoming.append(now)
            while incoming and incoming[0] <= now - 1.0:
                incoming.popleft()
            if len(incoming) > limit:
                raise _Closed(1008, "too many requests")
            if kind == _PONG:
                data = bytes(message.get("bytes", b""))
                self._unanswered.pop(data, None)
            elif kind == "websocket.receive" and not self.silent():
                self._handle(message)

    async def _writer(self, inbox: trio.MemoryReceiveChannel[str], send: Send) -> None:
        async for text in inbox:
            await send({"type": "websocket.send", "text": text})
            self.sent += 1

    async def _pusher(self) -> None:
        """Each stream at every multiple of its period on the simulator's clock."""
        clock = self.server.clock
        while True:
            live = [s for s in self.streams.values() if not s.silent]
            now = clock.now_ms()
            if not live:
                self._changed = trio.Event()
                await self._changed.wait()
                continue
            due = min(s.due_ms for s in live)
            if due > now:
                self._changed = trio.Event()
                with trio.move_on_after((due - now) / 1000.0):
                    await self._changed.wait()
                continue
            for stream in live:
                if stream.due_ms <= now and self.streams.get(stream.name) is stream:
                    if not self.silent():
                        for payload in stream.events(stream.due_ms):
                            self._push(stream.name, payload)
                    period = stream.period_ms
                    stream.due_ms = max(stream.due_ms + period, now - now % period)
                    if stream.due_ms <= now:
                        stream.due_ms += period
                    # the writer drains between streams: only a client that does not read
                    # fills the queue, not a second's burst over many streams
                    await trio.lowlevel.checkpoint()
            await trio.lowlevel.checkpoint()

    async def _pinger(self, send: Send) -> None:
        """A ping every ``ping_interval``; an unanswered one older than ``pong_timeout``
        closes the connection."""
        rules = self.rules
        next_ping = trio.current_time() + rules.ping_interval
        while True:
            now = trio.current_time()
            oldest = min(self._unanswered.values(), default=math.inf)
            if now - oldest >= rules.pong_timeout:
                raise _Closed(1008, "pong timeout")
            if now >= next_ping:
                if not self.silent():
                    payload = str(self.server.clock.now_ms()).encode()
                    self._unanswered[payload] = now
                    await send({"type": _PING, "bytes": payload})
                next_ping = now + rules.ping_interval
            await trio.sleep_until(min(next_ping, oldest + rules.pong_timeout))

    async def _lifetime(self) -> None:
        """The 24-hour limit, or an earlier end set by ``end_at`` (a server shutdown)."""
        while True:
            self._end_changed = trio.Event()
            with trio.move_on_at(self._end):
                await self._end_changed.wait()
                continue
            raise _Closed(1000, self._end_reason)

    def end_at(self, when: float, reason: str) -> None:
        """Close the connection at trio time ``when`` (if earlier than planned)."""
        if when < self._end:
            self._end, self._end_reason = when, reason
            self._end_changed.set()

    # -- the subscription protocol (§10.3) --------------------------------------------------

    def _handle(self, message: Message) -> None:
        text = message.get("text")
        if text is None:
            text = bytes(message.get("bytes") or b"").decode("utf-8", "replace")
        try:
            request = json.loads(text)
        except ValueError as exc:
            self._reply({"code": 3, "msg": f"Invalid JSON: {exc}", "id": None})
            return
        if not isinstance(request, dict) or "method" not in request:
            self._reply({"code": 2, "msg": "Invalid request: missing field `method`", "id": None})
            return
        rid = request.get("id")
        if not self._valid_id(rid):
            msg = "Invalid request: request ID must be an unsigned integer"
            self._reply({"code": 2, "msg": msg, "id": None})
            return
        method = request["method"]
        params = request.get("params", [])
        if method not in _METHODS:
            expected = ", ".join(f"`{m}`" for m in _METHODS)
            msg = f"Invalid request: unknown variant `{method}`, expected one of {expected}"
            self._reply({"code": 2, "msg": msg, "id": rid})
            return
        if not isinstance(params, list):
            self._reply({"code": 2, "msg": "Invalid request: invalid params", "id": rid})
            return
        self._reply(self._answer(method, params, rid))

    def _valid_id(self, rid: Any) -> bool:
        if rid is None:
            return self.market == "spot"
        if isinstance(rid, bool):
            return False
        if isinstance(rid, int):
            return 0 <= rid < 2**63 if self.market != "spot" else -(2**63) <= rid < 2**63
        return self.market == "spot" and isinstance(rid, str) and bool(_SPOT_ID.match(rid))

    def _answer(self, method: str, params: list[Any], rid: Any) -> dict[str, Any]:
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not all(isinstance(p, str) for p in params):
                return {"code": 2, "msg": "Invalid request: invalid stream name", "id": rid}
            if method == "UNSUBSCRIBE":
                for name in params:
                    self.streams.pop(name, None)
                return {"result": None, "id": rid}
            new = [p for p in dict.fromkeys(params) if p not in self.streams]
            if len(self.streams) + len(new) > self.rules.max_streams:
                return {"code": 2, "msg": "Invalid request: too many parameters", "id": rid}
            try:
                parsed = [self.server.parse(self.market, name) for name in new]
            except StreamError as exc:
                return {"code": 2, "msg": f"Invalid request: unknown stream {exc}", "id": rid}
            for stream in parsed:
                self._add(stream)
            return {"result": None, "id": rid}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(self.streams), "id": rid}
        if len(params) > (2 if method == "SET_PROPERTY" else 1):
            return {"code": 2, "msg": "Invalid request: too many parameters", "id": rid}
        if not params or not isinstance(params[0], str):
            return {"code": 2, "msg": "Invalid request: property name must be a string", "id": rid}
        if params[0] != "combined":
            return {"code": 0, "msg": "Unknown property", "id": rid}
        if method == "GET_PROPERTY":
            return {"result": self.combined, "id": rid}
        if len(params) < 2 or not isinstance(params[1], bool):
            return {"code": 1, "msg": "Invalid value type: expected Boolean", "id": rid}
        self.combined = params[1]
        return {"result": None, "id": rid}

    def _subscribe(self, name: str) -> None:
        if name not in self.streams and len(self.streams) < self.rules.max_streams:
            self._add(self.server.parse(self.market, name))

    def _add(self, stream: Stream) -> None:
        now = self.server.clock.now_ms()
        if self.market == "usdm":
            stream.silent = route_of(stream.kind) != (self.route or "public")
        stream.start(now)
        stream.due_ms = now - now % stream.period_ms + stream.period_ms
        self.streams[stream.name] = stream
        self._changed.set()


class StreamServer:
    """The ASGI app of the stream paths, and the control surface for tests (faults).

    Faults, applied to the open connections of a market (or all when ``market`` is None):
    ``drop`` (closed at once, code 1011), ``silence`` (nothing sent for a while: no data, no
    replies, no pings), ``skip_update_id`` (the next diff-depth event of each connection is
    not sent, so the next one's ``U``/``pu`` show a gap), ``server_shutdown`` (spot's notice,
    then the close). A slow consumer needs no call: a client that does not read fills its
    bounded queue and is disconnected.
    """

    def __init__(
        self,
        clock: SimClock,
        market_data: MarketData,
        specs: list[SymbolSpec],
        tickers: TickerHandlers,
    ) -> None:
        self.clock = clock
        self.md = market_data
        self.tickers = tickers
        self.rules: dict[str, StreamRules] = dict(RULES)
        self._specs: dict[str, dict[str, SymbolSpec]] = {"spot": {}, "usdm": {}, "coinm": {}}
        for spec in specs:
            self._specs[spec.market][spec.symbol] = spec
        self.connections: set[StreamConnection] = set()
        self._attempts: dict[str, deque[float]] = {}
        self.rejected = 0

    def parse(self, market: str, name: str) -> Stream:
        return parse_stream(name, market, self.md, self.tickers, self._specs[market])

    # -- faults ----------------------------------------------------------------------------

    def _matching(self, market: str | None) -> list[StreamConnection]:
        return [c for c in self.connections if market is None or c.market == market]

    def drop(self, market: str | None = None) -> int:
        """Close the matching connections at once (code 1011); returns how many."""
        found = self._matching(market)
        for conn in found:
            conn.close_soon(1011, "dropped by the simulator", flush=False)
        return len(found)

    def silence(self, seconds: float = math.inf, market: str | None = None) -> int:
        """The matching connections send nothing for ``seconds`` (trio time)."""
        found = self._matching(market)
        for conn in found:
            conn.silent_until = trio.current_time() + seconds
        return len(found)

    def skip_update_id(self, market: str | None = None) -> int:
        """Each matching connection loses its next diff-depth event (an id gap)."""
        found = self._matching(market)
        for conn in found:
            for stream in conn.streams.values():
                if stream.kind == "depth":
                    stream.skip_next = True
        return len(found)

    def server_shutdown(self, close_after: float = 5.0) -> int:
        """Spot: send ``serverShutdown`` to every spot connection, close them after
        ``close_after`` seconds. Futures have no such notice (none documented)."""
        found = self._matching("spot")
        now = self.clock.now_ms()
        for conn in found:
            data = {"e": "serverShutdown", "E": now}
            body = {"stream": "!serverShutdown", "data": data} if conn.combined else data
            try:
                conn._queue(json.dumps(body, separators=(",", ":")))
            except _Closed:
                conn.close_soon(1008, "slow consumer: send buffer full", flush=False)
                continue
            conn.end_at(trio.current_time() + close_after, "server shutdown")
        return len(found)

    # -- ASGI ------------------------------------------------------------------------------

    def _admit(self, ip: str) -> bool:
        count, window = ATTEMPTS
        now = trio.current_time()
        attempts = self._attempts.setdefault(ip, deque())
        while attempts and attempts[0] <= now - window:
            attempts.popleft()
        if len(attempts) >= count:
            return False
        attempts.append(now)
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":  # pragma: no cover - only websockets reach here
            return
        m = _PATH.match(scope["path"])
        ip = (scope.get("client") or ("127.0.0.1", 0))[0]
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        if m is None or not self._admit(ip):
            if m is not None:
                self.rejected += 1
            await send({"type": "websocket.close", "code": 1008})
            return
        prefix = m["prefix"] or ""
        market = "usdm" if prefix.startswith("/fstream") else "coinm" if prefix else "spot"
        combined = m["mode"] == "stream"
        if combined:
            query = parse_qs(scope.get("query_string", b"").decode())
            initial = [n for v in query.get("streams", []) for n in v.split("/") if n]
        else:
            initial = [n for n in (m["streams"] or "").split("/") if n]
        conn = StreamConnection(
            self,
            market,
            m["route"],
            combined,
            ip,
            self.rules[market],
            PING_EXTENSION in scope.get("extensions", {}),
        )
        await send({"type": "websocket.accept"})
        self.connections.add(conn)
        try:
            await conn.run(receive, send, initial)
        finally:
            self.connections.discard(conn)
