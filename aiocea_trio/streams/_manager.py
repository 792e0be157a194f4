"""Connection manager: Binance market streams that never end, stall or lose data silently.

Design, one connection at a time:

- **Links and sockets.** The streams are spread over as few *links* as the limits allow
  (1024 streams per connection, 200 on COIN-M; USDⓈ-M needs one per route, ``/public`` or
  ``/market``). A link is the logical connection; it owns at most two *sockets*: the current
  one and, during a rollover, the one being retired.
- **Reader.** Every socket has a task that only reads: it parses the frame and puts the
  payload in the shared buffer without ever waiting for the consumer, so pings are answered
  (inside the WebSocket library) however slow the consumer is. The consumer's pace never
  reaches the socket.
- **Buffer policy.** The buffer is bounded per stream: ``Policy.LOSSLESS`` keeps every event
  up to ``buffer`` waiting ones, then fails the stream with ``StreamOverflowError`` (after
  the events already in); ``Policy.LATEST`` keeps one unread value per stream and replaces
  it (the default for tickers, book tickers and partial depth). Typed events are built when
  read, so a replaced value costs no parsing.
- **Control messages** (SUBSCRIBE, UNSUBSCRIBE, the watchdog's probe) go through a writer
  task per socket, paced at 60 % of Binance's incoming-message limit (pongs count too).
- **Watchdog.** A socket silent for ``silence / 2`` is probed with LIST_SUBSCRIPTIONS; silent
  for ``silence``, it is closed and reconnected: a half-open TCP connection is never waited on.
- **Unplanned reconnects** (dropped, silent) back off exponentially with jitter, within the
  connection-attempt limit (300 per 5 minutes, shared by clients sharing a RateLimiter), and
  resubscribe everything. Then each stream of the link gets exactly one ``StreamGap(stream, from,
  to)``: from its last event, to the moment the new socket was subscribed.
- **Planned rollover** (the 24-hour limit, a ``serverShutdown`` notice): the replacement
  socket is opened and subscribed *before* the old one is closed. Until each stream is proven
  to overlap (the new socket delivered an event the old one already had), the old socket
  keeps delivering and the new one's events are held; then the held ones are delivered past
  the last key, the old socket closed. Duplicates are dropped by a key per stream (trade id,
  aggregate id, update id, kline open time/closed/event time, else event time). No gap.
- **Structure.** All tasks live in a nursery of ``open_stream``'s block, which the caller's
  block owns; leaving the block cancels them and closes every socket. Errors of the stream
  (overflow) reach the consumer on ``receive``; ``trio.Cancelled`` is never caught.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from .._groups import collapse
from ..markets import Market
from . import _ws
from ._buffer import Buffer, Policy, StreamClosedError, StreamError
from ._urls import LIMITS, asgi_app_of, route_of, stream_base, stream_url
from .events import StreamGap, parser_for

__all__ = [
    "DEFAULT_BUFFER",
    "Stream",
    "StreamConnectError",
    "StreamStatistics",
    "StreamSubscribeError",
    "open_stream",
]

logger = logging.getLogger("aiocea_trio.streams")

#: Events waiting per lossless stream before ``StreamOverflowError``.
DEFAULT_BUFFER = 10_000
#: Binance ends a connection after 24 h; roll over a little before.
DEFAULT_LIFETIME = 23 * 3600 + 50 * 60
DEFAULT_SILENCE = 30.0
DEFAULT_HANDOVER = 10.0
_REPLY_TIMEOUT = 10.0
_PARAMS_PER_MESSAGE = 100
_URL_STREAMS = 100
_FIRST_CONNECT_ATTEMPTS = 5
_LATEST_BY_DEFAULT = re.compile(
    r"(@ticker|@miniTicker|@bookTicker|@depth(5|10|20)(@\d+ms)?$|^!.*@arr|^!bookTicker)",
    re.IGNORECASE,
)


class StreamConnectError(StreamError, ConnectionError):
    """The first connection of a stream could not be opened (later ones are retried)."""


class StreamSubscribeError(StreamError):
    """The server refused a SUBSCRIBE or UNSUBSCRIBE (its error is the message)."""


@attrs.frozen
class StreamStatistics:
    """A snapshot of a stream's health (``Stream.statistics()``)."""

    connections: int
    streams: int
    buffered: int
    peak_buffered: int
    reconnects: int
    gaps: int
    rollovers: int
    duplicates_dropped: int


def default_policy(stream: str) -> Policy:
    """LATEST for tickers, book tickers and partial depth (only the last value matters),
    LOSSLESS for the rest (trades, klines, diff depth: each event matters)."""
    return Policy.LATEST if _LATEST_BY_DEFAULT.search(stream) else Policy.LOSSLESS


def _key(data: Any) -> Any:
    """What orders a stream's events, for dropping duplicates across a rollover."""
    if type(data) is not dict:
        return None
    e = data.get("e")
    if e == "trade":
        return data.get("t")
    if e == "aggTrade":
        return data.get("a")
    if e == "kline" or e == "continuous_kline":
        k = data.get("k") or {}
        return (k.get("t"), bool(k.get("x")), data.get("E"))
    if "u" in data:
        return data["u"]
    if "lastUpdateId" in data:
        return data["lastUpdateId"]
    return data.get("E")


def _not_after(a: Any, b: Any) -> bool:
    try:
        return bool(a <= b)
    except TypeError:
        return False


class _Attempts:
    """Binance allows 300 connection attempts per 5 minutes per IP: wait past that."""

    def __init__(self, limit: int = 300, window: float = 300.0) -> None:
        self.limit, self.window = limit, window
        self._times: deque[float] = deque()

    async def acquire(self) -> None:
        while len(self._times) >= self.limit:
            await trio.sleep_until(self._times[0] + self.window)
            now = trio.current_time()
            while self._times and self._times[0] + self.window <= now:
                self._times.popleft()
        self._times.append(trio.current_time())


_ATTEMPTS: weakref.WeakKeyDictionary[Any, _Attempts] = weakref.WeakKeyDictionary()


def _attempts_for(client: Any) -> _Attempts:
    # Clients that share a RateLimiter share an IP (that is what sharing one means).
    key = getattr(client, "limiter", None) or client
    try:
        return _ATTEMPTS.setdefault(key, _Attempts())
    except TypeError:
        return _Attempts()


@attrs.define(eq=False)
class _State:
    name: str
    policy: Policy
    link: _Link
    last_key: Any = None
    last_ms: int | None = None


@attrs.define(eq=False)
class _Socket:
    link: _Link
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    ws: _ws.WebSocket | None = None
    last_rx: float = 0.0
    opened_ms: int = 0
    rollover: trio.Event = attrs.field(factory=trio.Event)
    done: trio.Event = attrs.field(factory=trio.Event)
    reason: str = ""
    planned_close: bool = False
    pending: dict[int, list[Any]] = attrs.field(factory=dict)
    outbox: deque[str] = attrs.field(factory=deque)
    wake: trio.lowlevel.ParkingLot = attrs.field(factory=trio.lowlevel.ParkingLot)

    def send(self, text: str) -> None:
        self.outbox.append(text)
        self.wake.unpark()


@attrs.define(eq=False)
class _Link:
    route: str
    streams: set[str] = attrs.field(factory=set)
    sock: _Socket | None = None
    old: _Socket | None = None
    held: dict[str, list[Any]] = attrs.field(factory=dict)
    proven: set[str] = attrs.field(factory=set)
    handover_done: trio.Event = attrs.field(factory=trio.Event)


class Stream(trio.abc.ReceiveChannel[Any]):
    """The consumer's side: a receive channel of events, plus live (un)subscription.

    ``async for event in stream`` yields typed events (or ``{"stream", "data"}`` dicts with
    ``raw=True``) and :class:`~aiocea_trio.streams.StreamGap` events, in arrival order.
    """

    def __init__(self, manager: _Manager) -> None:
        self._m = manager

    async def receive(self) -> Any:
        """The next event (a checkpoint). Raises ``StreamOverflowError`` after an overflow,
        ``trio.EndOfChannel`` once the stream is closed and read."""
        return await self._m.buffer.get()

    async def aclose(self) -> None:
        """Stop receiving; the sockets close when the ``open_stream`` block is left."""
        self._m.buffer.close()
        await trio.lowlevel.checkpoint()

    async def subscribe(self, *streams: str) -> None:
        """Add streams to the open stream; returns once the server acknowledged them (or,
        if a connection dropped meanwhile, once they are part of its resubscription)."""
        await self._m.subscribe(streams)

    async def unsubscribe(self, *streams: str) -> None:
        """Remove streams; their events still waiting in the buffer are still delivered."""
        await self._m.unsubscribe(streams)

    @property
    def streams(self) -> frozenset[str]:
        """The streams currently subscribed."""
        return frozenset(self._m.states)

    def statistics(self) -> StreamStatistics:
        m = self._m
        return StreamStatistics(
            connections=sum(1 for link in m.links if link.sock is not None),
            streams=len(m.states),
            buffered=len(m.buffer),
            peak_buffered=m.buffer.peak,
            reconnects=m.reconnects,
            gaps=m.gaps,
            rollovers=m.rollovers,
            duplicates_dropped=m.duplicates,
        )


class _Manager:
    def __init__(
        self,
        client: Any,
        market: Market,
        *,
        raw: bool,
        buffer: int,
        policy: Policy | dict[str, Policy] | None,
        silence: float,
        lifetime: float,
        handover: float,
    ) -> None:
        self.client = client
        self.market = market
        self.limits = LIMITS[market]
        self.base = stream_base(client, market)
        self.app = asgi_app_of(client)
        self.raw = raw
        self.policy = policy
        self.silence = silence
        self.lifetime = lifetime
        self.handover = handover
        self.buffer = Buffer(buffer, self._convert)
        self.states: dict[str, _State] = {}
        self.links: list[_Link] = []
        self.attempts = _attempts_for(client)
        self.nursery: trio.Nursery | None = None
        self.closed = False
        self._next_id = 0
        self.reconnects = self.gaps = self.rollovers = self.duplicates = 0

    # -- consumer side -------------------------------------------------------------------

    def _convert(self, stream: str, data: Any) -> Any:
        if self.raw:
            return {"stream": stream, "data": data}
        return parser_for(stream)(stream, data)

    def _policy_for(self, stream: str) -> Policy:
        if isinstance(self.policy, Policy):
            return self.policy
        if isinstance(self.policy, dict) and stream in self.policy:
            return self.policy[stream]
        return default_policy(stream)

    def _now_ms(self) -> int:
        fn = getattr(self.client, "server_time_ms", None)
        try:
            return int(fn()) if fn is not None else int(trio.current_time() * 1000)
        except Exception:
            return int(trio.current_time() * 1000)

    # -- subscriptions -------------------------------------------------------------------

    async def subscribe(self, streams: Iterable[str]) -> None:
        if self.closed or self.nursery is None:
            raise StreamClosedError("this stream is closed")
        new: dict[_Link, list[str]] = {}
        fresh: list[_Link] = []
        cap = self.limits.streams_per_connection
        for name in dict.fromkeys(streams):
            if name in self.states:
                continue
            route = route_of(self.market, name)
            link = next((x for x in self.links if x.route == route and len(x.streams) < cap), None)
            if link is None:
                link = _Link(route)
                self.links.append(link)
                fresh.append(link)
            link.streams.add(name)
            self.states[name] = _State(name, self._policy_for(name), link)
            if link not in fresh:
                new.setdefault(link, []).append(name)
        for link in fresh:
            await self.nursery.start(self._run_link, link)
        for link, names in new.items():
            if link.sock is not None and not link.sock.done.is_set():
                await self._control(link.sock, "SUBSCRIBE", names)

    async def unsubscribe(self, streams: Iterable[str]) -> None:
        if self.closed:
            raise StreamClosedError("this stream is closed")
        gone: dict[_Link, list[str]] = {}
        for name in streams:
            st = self.states.pop(name, None)
            if st is not None:
                st.link.streams.discard(name)
                gone.setdefault(st.link, []).append(name)
        for link, names in gone.items():
            if link.sock is not None and not link.sock.done.is_set():
                await self._control(link.sock, "UNSUBSCRIBE", names)

    async def _control(self, sock: _Socket, method: str, names: list[str]) -> None:
        for i in range(0, len(names), _PARAMS_PER_MESSAGE):
            reply = await self._request(sock, method, names[i : i + _PARAMS_PER_MESSAGE])
            if isinstance(reply, dict) and "code" in reply:
                raise StreamSubscribeError(f"{method} {names}: {reply.get('msg')!r}")

    async def _request(self, sock: _Socket, method: str, params: list[str] | None) -> Any:
        """Send one control message and wait for its reply; ``None`` if the socket ended
        first (its replacement subscribes to the link's streams anyway)."""
        self._next_id += 1
        rid = self._next_id
        msg: dict[str, Any] = {"method": method, "id": rid}
        if params is not None:
            msg["params"] = params
        holder: list[Any] = [trio.Event()]
        sock.pending[rid] = holder
        sock.send(json.dumps(msg))
        with trio.move_on_after(_REPLY_TIMEOUT) as timeout:
            await holder[0].wait()
        sock.pending.pop(rid, None)
        if timeout.cancelled_caught:
            # A server that does not answer is as good as silent: replace the socket.
            self._end(sock, f"no reply to {method} in {_REPLY_TIMEOUT} s")
            return None
        return holder[1] if len(holder) > 1 else None

    # -- links ---------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        return min(30.0, 0.5 * 2.0**attempt) * random.uniform(0.5, 1.0)

    async def _run_link(
        self, link: _Link, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """One logical connection: keeps a socket subscribed to ``link.streams`` for as long
        as the block lasts, reconnecting, rolling over and reporting gaps."""
        started = False
        attempt = 0
        gap_from: dict[str, int] | None = None
        async with trio.open_nursery() as nursery:
            while True:
                await self.attempts.acquire()
                try:
                    sock: _Socket = await nursery.start(self._run_socket, link)
                except _ws.WebSocketClosed as exc:
                    if not started and attempt + 1 >= _FIRST_CONNECT_ATTEMPTS:
                        raise StreamConnectError(str(exc)) from exc
                    delay = self._backoff(attempt)
                    logger.warning("stream connect failed (%s); retry in %.1f s", exc, delay)
                    attempt += 1
                    await trio.sleep(delay)
                    continue
                attempt = 0
                if gap_from is not None:
                    end = self._now_ms()
                    for name in sorted(link.streams):
                        self.buffer.put_event(name, StreamGap(name, gap_from.get(name, end), end))
                        self.gaps += 1
                    gap_from = None
                if not started:
                    started = True
                    task_status.started()
                sock = await self._serve(nursery, link, sock)
                # The current socket ended without being asked to: an unplanned reconnect.
                logger.warning("stream connection lost (%s); reconnecting", sock.reason)
                self.reconnects += 1
                gap_from = {}
                for name in link.streams:
                    st = self.states[name]
                    gap_from[name] = st.last_ms if st.last_ms is not None else sock.opened_ms
                    st.last_key = None  # a restarted server may restart its ids
                link.sock = None
                await trio.sleep(self._backoff(0))

    async def _serve(self, nursery: trio.Nursery, link: _Link, sock: _Socket) -> _Socket:
        """Run ``sock`` (and its successors across planned rollovers) until one of them
        ends unplanned; return that one."""
        link.sock = sock
        while True:
            await _wait_any(sock.done.wait, sock.rollover.wait)
            if sock.done.is_set():
                return sock
            logger.info("stream rollover (%s)", sock.reason)
            try:
                await self.attempts.acquire()
                new: _Socket = await nursery.start(self._run_socket, link)
            except _ws.WebSocketClosed as exc:
                logger.warning("rollover connect failed (%s); old connection kept", exc)
                await trio.sleep(self._backoff(1))
                continue
            await self._hand_over(link, sock, new)
            if new.done.is_set():
                # The replacement died during the handover: keep the old one, try again.
                link.sock = sock
                continue
            self.rollovers += 1
            sock = new

    async def _hand_over(self, link: _Link, old: _Socket, new: _Socket) -> None:
        link.old, link.sock = old, new
        link.held, link.proven = {}, set()
        link.handover_done = trio.Event()
        if not link.streams:
            link.handover_done.set()
        with trio.move_on_after(self.handover):
            await _wait_any(link.handover_done.wait, old.done.wait, new.done.wait)
        if new.done.is_set():
            link.old, link.sock, link.held = None, old, {}
            return
        old_failed = old.done.is_set()
        old.planned_close = True
        old.scope.cancel()
        link.old = None
        end = self._now_ms()
        for name, items in link.held.items():
            st = self.states.get(name)
            if st is None:
                continue
            if old_failed and name not in link.proven:
                # The old socket died before the overlap was proven: say so.
                start = st.last_ms if st.last_ms is not None else old.opened_ms
                self.buffer.put_event(name, StreamGap(name, start, end))
                self.gaps += 1
            for data in items:
                self._deliver(st, data)
        link.held = {}

    # -- sockets -------------------------------------------------------------------------

    async def _run_socket(
        self, link: _Link, *, task_status: trio.TaskStatus[_Socket] = trio.TASK_STATUS_IGNORED
    ) -> None:
        names = sorted(link.streams)
        head, rest = names[:_URL_STREAMS], names[_URL_STREAMS:]
        sock = _Socket(link)
        started = False
        try:
            with sock.scope:
                async with _ws.connect(
                    stream_url(self.base, link.route, head), asgi_app=self.app
                ) as ws:
                    sock.ws = ws
                    sock.last_rx = trio.current_time()
                    sock.opened_ms = self._now_ms()
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._guard, sock, self._reader)
                        nursery.start_soon(self._guard, sock, self._writer)
                        nursery.start_soon(self._guard, sock, self._watchdog)
                        nursery.start_soon(self._guard, sock, self._lifetime)
                        if rest:
                            await self._control(sock, "SUBSCRIBE", rest)
                        if not sock.reason:
                            task_status.started(sock)
                            started = True
        except Exception as exc:
            if not started:
                if isinstance(exc, _ws.WebSocketClosed):
                    raise
                raise _ws.WebSocketClosed(repr(exc)) from exc
            # Closing a broken connection may fail too; it is ended either way.
            if not isinstance(exc, _ws.WebSocketClosed):
                logger.error("stream connection failed unexpectedly", exc_info=exc)
            sock.reason = sock.reason or repr(exc)
        finally:
            sock.done.set()
            for holder in sock.pending.values():
                holder[0].set()
        if not started:
            raise _ws.WebSocketClosed(f"closed while subscribing: {sock.reason}")

    async def _guard(self, sock: _Socket, fn: Callable[[_Socket], Awaitable[None]]) -> None:
        # A socket's failure ends that socket, quietly: its link reconnects and reports it.
        try:
            await fn(sock)
        except _ws.WebSocketClosed as exc:
            self._end(sock, str(exc))

    def _end(self, sock: _Socket, reason: str) -> None:
        sock.reason = sock.reason or reason
        sock.scope.cancel()

    async def _reader(self, sock: _Socket) -> None:
        assert sock.ws is not None
        receive = sock.ws.receive
        while True:
            text = await receive()
            sock.last_rx = trio.current_time()
            try:
                msg = json.loads(text)
            except ValueError:
                logger.warning("stream: a frame that is not JSON was ignored: %.80r", text)
                continue
            if type(msg) is not dict:
                continue
            name = msg.get("stream")
            if name is not None:
                if name == "!serverShutdown":
                    self._rollover(sock, "serverShutdown")
                else:
                    self._on_data(sock, name, msg.get("data"))
            elif "id" in msg and ("result" in msg or "code" in msg):
                holder = sock.pending.get(msg["id"]) if type(msg["id"]) is int else None
                if holder is not None:
                    holder.append(msg)
                    holder[0].set()
            elif msg.get("e") == "serverShutdown":
                self._rollover(sock, "serverShutdown")

    def _rollover(self, sock: _Socket, reason: str) -> None:
        if not sock.rollover.is_set():
            sock.reason = reason
            sock.rollover.set()

    async def _writer(self, sock: _Socket) -> None:
        assert sock.ws is not None
        interval = 1 / (0.6 * self.limits.messages_per_second)
        next_at = -math.inf
        while True:
            while not sock.outbox:
                await sock.wake.park()
            await trio.sleep_until(next_at)
            await sock.ws.send_text(sock.outbox.popleft())
            next_at = trio.current_time() + interval

    async def _watchdog(self, sock: _Socket) -> None:
        probed_for: float | None = None
        half = self.silence / 2
        while True:
            last = sock.last_rx
            now = trio.current_time()
            if now >= last + self.silence:
                self._end(sock, f"silent for {self.silence} s")
                return
            if now >= last + half and probed_for != last:
                probed_for = last
                self._next_id += 1
                sock.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": self._next_id}))
            await trio.sleep_until(last + (self.silence if probed_for == last else half))

    async def _lifetime(self, sock: _Socket) -> None:
        await trio.sleep(self.lifetime)
        self._rollover(sock, f"lifetime of {self.lifetime} s")

    # -- events --------------------------------------------------------------------------

    def _on_data(self, sock: _Socket, name: str, data: Any) -> None:
        st = self.states.get(name)
        if st is None or st.link is not sock.link:
            return
        link = st.link
        if link.old is None:
            self._deliver(st, data)
        elif sock is link.old:
            if name not in link.proven:
                self._deliver(st, data)
                self._prove(st, link)
        elif name in link.proven:
            self._deliver(st, data)
        else:
            link.held.setdefault(name, []).append(data)
            self._prove(st, link)

    def _prove(self, st: _State, link: _Link) -> None:
        held = link.held.get(st.name)
        if not held or st.last_key is None:
            return
        first = _key(held[0])
        if first is None or not _not_after(first, st.last_key):
            return
        link.proven.add(st.name)
        for data in link.held.pop(st.name):
            self._deliver(st, data)
        if link.proven >= link.streams:
            link.handover_done.set()

    def _deliver(self, st: _State, data: Any) -> None:
        key = _key(data)
        if key is not None:
            if st.last_key is not None and _not_after(key, st.last_key):
                self.duplicates += 1
                return
            st.last_key = key
        st.last_ms = self._now_ms()
        if not self.buffer.put(st.name, data, st.policy) and self.nursery is not None:
            # Overflow: the consumer gets the error on its next receive; stop reading.
            self.nursery.cancel_scope.cancel()


async def _wait_any(*waits: Callable[[], Awaitable[object]]) -> None:
    async with trio.open_nursery() as nursery:

        async def one(fn: Callable[[], Awaitable[object]]) -> None:
            await fn()
            nursery.cancel_scope.cancel()

        for fn in waits:
            nursery.start_soon(one, fn)


@asynccontextmanager
async def open_stream(
    client: Any,
    *streams: str,
    market: Market | str = Market.SPOT,
    raw: bool = False,
    buffer: int = DEFAULT_BUFFER,
    policy: Policy | dict[str, Policy] | None = None,
    silence: float = DEFAULT_SILENCE,
    lifetime: float = DEFAULT_LIFETIME,
    handover: float = DEFAULT_HANDOVER,
) -> AsyncIterator[Stream]:
    """Open Binance market streams; the block's receive channel yields their events.

    ``async with open_stream(client, "btcusdt@kline_1m", "ethusdt@aggTrade") as stream:
    async for event in stream: ...``. The block is entered once every connection is open
    and subscribed; leaving it closes them all.

    Args:
        client: a ``BinanceClient``: its ``base_url`` (the simulator) or ``testnet`` choose
            the host; an in-process simulator client is reached in-process.
        streams: stream names as Binance spells them (``btcusdt@trade``); more can be added
            with ``await stream.subscribe(...)``.
        market: ``"spot"``, ``"usdm"`` or ``"coinm"``.
        raw: yield ``{"stream": name, "data": payload}`` dicts instead of typed events.
        buffer: events that may wait per lossless stream before ``StreamOverflowError``.
        policy: a ``Policy`` for every stream, or a dict of stream → ``Policy``; streams not
            in it get ``default_policy``.
        silence: seconds without any message after which a connection is replaced (it is
            probed at half of it, so quiet streams on a live connection are not replaced).
        lifetime: seconds after which a connection is rolled over (Binance's limit is 24 h).
        handover: longest overlap of the old and new connection during a rollover.

    Raises:
        StreamConnectError: the first connection failed five times in a row.
    """
    if buffer < 1:
        raise ValueError(f"buffer must be at least 1, got {buffer}")
    if asgi_app_of(client) is None:
        _ws.require_extra("websockets")  # a missing extra is said at once, not retried
    if silence <= 0 or lifetime <= 0 or handover <= 0:
        raise ValueError("silence, lifetime and handover must be positive")
    manager = _Manager(
        client,
        Market(market),
        raw=raw,
        buffer=buffer,
        policy=policy,
        silence=silence,
        lifetime=lifetime,
        handover=handover,
    )
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as outer:
            # The links run in their own nursery, in a task of `outer`: cancelling them (an
            # overflow) must not cancel the consumer's block, which runs in `outer`'s scope.
            manager.nursery = await outer.start(_links_nursery)
            try:
                await manager.subscribe(streams)
                yield Stream(manager)
            except BaseException as exc:
                body_error = exc
                raise
            finally:
                manager.closed = True
                manager.buffer.close()
                outer.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The block's own error (a KeyError, StreamOverflowError...) leaves as itself, not
        # wrapped by our internal nursery; anything else stays a group.
        if body_error is not None and list(group.exceptions) == [body_error]:
            raise body_error from None
        raise collapse(group) from None  # one failure of ours (StreamConnectError) comes bare


async def _links_nursery(
    *, task_status: trio.TaskStatus[trio.Nursery] = trio.TASK_STATUS_IGNORED
) -> None:
    async with trio.open_nursery() as nursery:
        task_status.started(nursery)
        await trio.sleep_forever()
