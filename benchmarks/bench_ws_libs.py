"""Which WebSocket library should the streams use? CPU per message under trio, per library.

One local server (its own process) sends N Binance-like trade events (~200 bytes of JSON text)
as fast as it can over loopback: the frames are encoded once with wsproto and written in large
chunks, so the server is never the bottleneck. Each client library then runs in a fresh process
under trio and receives the N messages as text:

- httpx-ws (``httpx_ws.aconnect_ws`` with an ``httpx.AsyncClient``; AnyIO on trio);
- trio-websocket (``open_websocket_url``);
- websockets 17's trio client (``websockets.trio.client.connect``).

Measured in the client process: CPU µs per message (``time.process_time`` from the first to
the last message) and messages per second (wall clock). Best and median of ``--runs`` runs.

It also measures each library's behaviour with a slow consumer: the server sends a burst bigger
than the library's own queue, then pings; the client does not read for 2 s. If the ping is
answered while the application is not reading, the library's reader keeps the connection
alive by itself; if not, the application needs its own drain task (aiocea_trio has one anyway).

    python benchmarks/bench_ws_libs.py               # 100,000 messages, 3 runs
    python benchmarks/bench_ws_libs.py -n 20000 --runs 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import trio
import wsproto
import wsproto.events

LIBS = ("httpx-ws", "trio-websocket", "websockets")
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "bench_ws_libs.json"


def _event(i: int) -> str:
    data = {
        "e": "trade",
        "E": 1_700_000_000_000 + i,
        "s": "BTCUSDT",
        "t": 12345678 + i,
        "p": "43250.12000000",
        "q": "0.00150000",
        "T": 1_700_000_000_000 + i,
        "m": bool(i & 1),
        "M": True,
    }
    return json.dumps({"stream": "btcusdt@trade", "data": data}, separators=(",", ":"))


# -- server --------------------------------------------------------------------------------


async def _handshake(stream: trio.SocketStream) -> wsproto.WSConnection:
    ws = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    while True:
        data = await stream.receive_some(65536)
        if not data:
            raise ConnectionError("closed during handshake")
        ws.receive_data(data)
        for ev in ws.events():
            if isinstance(ev, wsproto.events.Request):
                await stream.send_all(ws.send(wsproto.events.AcceptConnection()))
                return ws


async def _serve_one(n: int, mode: str, stream: trio.SocketStream) -> None:
    try:
        ws = await _handshake(stream)
        if mode == "slow":
            # More than any library's own queue (httpx-ws 512 messages, websockets 16,
            # trio-websocket 1), less than the kernel's loopback buffers: the ping is then
            # readable at once, and answered only if the library reads without the app.
            n = 600
        block = b"".join(ws.send(wsproto.events.TextMessage(_event(i))) for i in range(1000))
        sent = 0
        while sent < n:
            k = min(1000, n - sent)
            chunk = block if k == 1000 else block[: len(block) * k // 1000]
            await stream.send_all(chunk)
            sent += k
        if mode == "slow":
            await stream.send_all(ws.send(wsproto.events.Ping(b"probe")))
            answered = False
            with trio.move_on_after(1.5):
                while not answered:
                    data = await stream.receive_some(65536)
                    if not data:
                        break
                    ws.receive_data(data)
                    answered = any(isinstance(e, wsproto.events.Pong) for e in ws.events())
            await stream.send_all(
                ws.send(wsproto.events.TextMessage("PONG" if answered else "NOPONG"))
            )
        await stream.send_all(ws.send(wsproto.events.TextMessage("END")))
        with trio.move_on_after(5):
            while data := await stream.receive_some(65536):
                ws.receive_data(data)
                for ev in ws.events():
                    if isinstance(ev, wsproto.events.CloseConnection):
                        await stream.send_all(ws.send(ev.response()))
                        return
    except (trio.BrokenResourceError, ConnectionError, wsproto.utilities.LocalProtocolError):
        pass
    finally:
        await stream.aclose()


async def _server(n: int, mode: str) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    print(port, flush=True)
    await trio.serve_listeners(partial(_serve_one, n, mode), listeners)


# -- clients -------------------------------------------------------------------------------


async def _client(lib: str, url: str, slow: bool) -> dict[str, object]:
    out: dict[str, object] = {}
    count = 0
    cpu0 = wall0 = 0.0

    def tick(msg: str) -> bool:
        nonlocal count, cpu0, wall0
        if count == 0:
            cpu0, wall0 = time.process_time(), time.perf_counter()
        if msg in ("END", "PONG", "NOPONG"):
            if msg != "END":
                out["pong_while_not_reading"] = msg == "PONG"
                return False
            out["cpu"] = time.process_time() - cpu0
            out["wall"] = time.perf_counter() - wall0
            return True
        count += 1
        return False

    if lib == "httpx-ws":
        import httpx
        from httpx_ws import aconnect_ws

        async with (
            httpx.AsyncClient() as http,
            aconnect_ws(url.replace("ws://", "http://"), http) as ws,
        ):
            if slow:
                await trio.sleep(3)
            while not tick(await ws.receive_text()):
                pass
    elif lib == "trio-websocket":
        from trio_websocket import open_websocket_url

        async with open_websocket_url(url) as ws:
            if slow:
                await trio.sleep(3)
            while not tick(str(await ws.get_message())):
                pass
    else:
        from websockets.trio.client import connect

        async with connect(url, compression=None) as ws:
            if slow:
                await trio.sleep(3)
            while not tick(str(await ws.recv())):
                pass
    cpu, wall = float(str(out.pop("cpu"))), float(str(out.pop("wall")))
    out.update(messages=count, cpu_us_per_msg=cpu / count * 1e6, msgs_per_s=count / wall)
    return out


def _run_client(lib: str, port: int, slow: bool) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--client", lib, "--port", str(port)]
    if slow:
        cmd.append("--slow")
    res = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300)
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def _start_server(n: int, mode: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--server", mode, "-n", str(n)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--server", choices=("fast", "slow"))
    parser.add_argument("--client", choices=LIBS)
    parser.add_argument("--port", type=int)
    parser.add_argument("--slow", action="store_true")
    args = parser.parse_args()
    if args.server:
        trio.run(_server, args.n, args.server)
        return
    if args.client:
        url = f"ws://127.0.0.1:{args.port}/ws"
        print(json.dumps(trio.run(_client, args.client, url, args.slow)))
        return

    results: dict[str, dict[str, object]] = {}
    fast, port = _start_server(args.n, "fast")
    slow, slow_port = _start_server(args.n, "slow")
    try:
        for lib in LIBS:
            runs = [_run_client(lib, port, False) for _ in range(args.runs)]
            cpu = sorted(float(str(r["cpu_us_per_msg"])) for r in runs)
            rate = sorted(float(str(r["msgs_per_s"])) for r in runs)
            probe = _run_client(lib, slow_port, True)
            results[lib] = {
                "cpu_us_per_msg_best": round(cpu[0], 2),
                "cpu_us_per_msg_median": round(statistics.median(cpu), 2),
                "msgs_per_s_best": round(rate[-1]),
                "msgs_per_s_median": round(statistics.median(rate)),
                "pong_while_app_not_reading": probe.get("pong_while_not_reading"),
            }
    finally:
        for proc in (fast, slow):
            proc.terminate()
            proc.wait()
    versions = {}
    for mod, name in (
        ("httpx_ws", "httpx-ws"),
        ("trio_websocket", "trio-websocket"),
        ("websockets", "websockets"),
    ):
        from importlib.metadata import version

        versions[name] = version(name)
        del mod
    print(
        f"{args.n:,} text messages of ~{len(_event(0))} bytes over loopback, {args.runs} runs, under trio {trio.__version__}"
    )
    print(
        f"{'library':<16}{'CPU µs/msg best':>17}{'median':>9}{'msgs/s best':>13}{'median':>9}  pong while not reading"
    )
    for lib, r in results.items():
        print(
            f"{lib + ' ' + versions[lib]:<16}{r['cpu_us_per_msg_best']:>17}{r['cpu_us_per_msg_median']:>9}"
            f"{r['msgs_per_s_best']:>13,}{r['msgs_per_s_median']:>9,}  {r['pong_while_app_not_reading']}"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "messages": args.n,
                "message_bytes": len(_event(0)),
                "runs": args.runs,
                "python": sys.version.split()[0],
                "trio": trio.__version__,
                "cpus": os.cpu_count(),
                "versions": versions,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
