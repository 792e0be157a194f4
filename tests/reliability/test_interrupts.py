"""Ctrl-C at random moments in the CLI's long commands (issue 12, "Interrupts"; class 10).

Each command runs as a real process (``python -m aiocea_trio ...``) against the embedded
simulator and gets a SIGINT at a moment drawn from a seeded random generator, after it has
shown it is under way (its first output, or the first bytes of its output file). Each
must then exit 130 with one short line on stderr and no traceback; the simulator's server
must have let go of its port; a kline file must hold whole, well-formed rows only, and
running the same command again must resume it into the very bytes of a clean download.

The moments of one command run side by side (two at a time) to keep this module at a
few seconds; every wait is bounded.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from aiocea_trio.cli._app import cli

SEED = 20240612
START_TIMEOUT = 30.0  # for the process to show it is under way (a slow CI machine)
EXIT_TIMEOUT = 20.0  # for it to end once interrupted
MINUTE_MS = 60_000


def _default_sigint() -> None:
    # A shell's background job (and so a test run started from one) may inherit SIGINT
    # ignored; Python then installs no KeyboardInterrupt handler. Ctrl-C in a terminal
    # comes to a process with the default disposition, which is what is tested here.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@attrs.define
class Outcome:
    """One interrupted run: what it printed and how it ended."""

    args: tuple[str, ...]
    delay: float
    sent: bool  # False: the process had finished before the moment came
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.stderr.decode(errors="replace").splitlines() if line]

    def describe(self) -> str:
        return (
            f"{' '.join(self.args)} interrupted {self.delay:.3f} s in: exit {self.returncode}, "
            f"stderr {self.stderr.decode(errors='replace')!r}"
        )


def _interrupt(
    args: Sequence[str],
    delay: float,
    *,
    cwd: Path,
    under_way: Callable[[bytes], bool] = bool,
) -> Outcome:
    """Start the command, wait until ``under_way(stdout so far)``, then ``delay`` s, SIGINT."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiocea_trio", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        preexec_fn=_default_sigint,
        env={**os.environ, "COLUMNS": "100", "TERM": "dumb"},
    )
    out, err = bytearray(), bytearray()
    started = threading.Event()

    def drain(stream: object, into: bytearray, watch: bool) -> None:
        read = stream.read1  # type: ignore[attr-defined]
        while chunk := read(65536):
            into.extend(chunk)
            if watch and under_way(bytes(into)):
                started.set()
        started.set() if watch else None

    readers = [
        threading.Thread(target=drain, args=(proc.stdout, out, True), daemon=True),
        threading.Thread(target=drain, args=(proc.stderr, err, False), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        if not started.wait(START_TIMEOUT):
            raise AssertionError(f"{args}: no output in {START_TIMEOUT} s")
        time.sleep(delay)
        sent = proc.poll() is None
        if sent:
            proc.send_signal(signal.SIGINT)
        returncode = proc.wait(timeout=EXIT_TIMEOUT)
        for reader in readers:
            reader.join(EXIT_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    return Outcome(tuple(args), delay, sent, returncode, bytes(out), bytes(err))


def _moments(name: str, count: int, longest: float) -> list[float]:
    """``count`` delays in [0, longest), the same ones on every run (seeded per command).

    ``AIOCEA_INTERRUPT_MOMENTS=N`` tries N moments per command instead (a longer hunt);
    ``AIOCEA_INTERRUPT_SEED`` draws other ones.
    """
    count = int(os.environ.get("AIOCEA_INTERRUPT_MOMENTS", count))
    seed = os.environ.get("AIOCEA_INTERRUPT_SEED", SEED)
    rng = random.Random(f"{seed}-{name}")
    return [round(rng.uniform(0, longest), 3) for _ in range(count)]


def _run_all(jobs: list[Callable[[], Outcome]]) -> list[Outcome]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda job: job(), jobs))


def _assert_clean_stop(outcome: Outcome, *, done_marker: bytes | None = None) -> bool:
    """Exit 130, no traceback, and stderr is the one line ``interrupted``.

    A command that ends by itself (a download, the demo) may have finished its work when
    its moment comes: then it exits 0 (the signal came too late), or, when the signal
    lands in the interpreter's own shutdown, after the final line was printed, it dies
    of SIGINT (-2 here, which a shell reports as 130 too). Returns whether the command
    was interrupted while at work.
    """
    if done_marker is not None and done_marker in outcome.stdout:
        assert outcome.returncode in (0, -signal.SIGINT), outcome.describe()
        assert b"Traceback" not in outcome.stderr, outcome.describe()
        return False
    assert outcome.sent, f"finished before its moment: {outcome.describe()}"
    assert outcome.returncode == 130, outcome.describe()
    assert b"Traceback" not in outcome.stderr, outcome.describe()
    assert b"Error" not in outcome.stderr, outcome.describe()
    # Nothing else: in particular no "no klines from ... (end of range)" warning, which
    # an interrupted page fetch used to cause (the page stream looked ended).
    assert outcome.err_lines == ["interrupted"], outcome.describe()
    return True


# -- commands that print as they go -------------------------------------------------------


def test_watch_stops_cleanly_at_any_moment(tmp_path: Path) -> None:
    args = ("--sim", "watch", "BTCUSDT", "ETHUSDT", "--every", "50ms")
    outcomes = _run_all(
        [lambda d=d: _interrupt(args, d, cwd=tmp_path) for d in _moments("watch", 3, 1.0)]
    )
    for outcome in outcomes:
        _assert_clean_stop(outcome)
        assert b"BTCUSDT" in outcome.stdout


def test_demo_stops_cleanly_at_any_moment(tmp_path: Path) -> None:
    # The demo runs about 4 s (two rings of 3 rounds a second apart, then the klines).
    args = ("--sim", "demo")
    outcomes = _run_all(
        [lambda d=d: _interrupt(args, d, cwd=tmp_path) for d in _moments("demo", 3, 3.0)]
    )
    interrupted = 0
    for outcome in outcomes:
        interrupted += _assert_clean_stop(outcome, done_marker=b"5. Fetch two symbols")
        assert b"1. Fetch the server time" in outcome.stdout
    assert interrupted >= len(outcomes) // 2, "the moments came too late to test anything"


def _port_of(stdout: bytes) -> int:
    first = stdout.decode().splitlines()[0]
    return int(first.rsplit(":", 1)[1])


def test_sim_server_shuts_down_cleanly(tmp_path: Path) -> None:
    import httpx

    def serve_then_interrupt(delay: float) -> Outcome:
        return _interrupt(
            ("sim", "--port", "0"),
            delay,
            cwd=tmp_path,
            under_way=lambda out: out.count(b"\n") >= 4,  # the URL and the demo keys
        )

    outcomes = _run_all([lambda d=d: serve_then_interrupt(d) for d in _moments("sim", 2, 0.8)])
    for outcome in outcomes:
        _assert_clean_stop(outcome)
        port = _port_of(outcome.stdout)
        with socket.socket() as probe:  # nobody listens there any more
            assert probe.connect_ex(("127.0.0.1", port)) != 0, outcome.describe()
    # and while it serves, it answers (the served simulator is the real thing)
    proc_args = ("sim", "--port", "0")

    def ping_then_interrupt() -> Outcome:
        result: list[Outcome] = []

        def under_way(out: bytes) -> bool:
            if out.count(b"\n") < 4:
                return False
            if not result:
                url = out.decode().splitlines()[0].rsplit(" at ", 1)[1].strip()
                assert httpx.get(f"{url}/api/v3/ping", timeout=10).json() == {}
                result.append(None)  # type: ignore[arg-type]
            return True

        return _interrupt(proc_args, 0.05, cwd=tmp_path, under_way=under_way)

    _assert_clean_stop(ping_then_interrupt())


# -- a download into a file ---------------------------------------------------------------

# The REST case: 45 pages of 1000 1m candles (about a second and a half of work, written a
# page at a time). The archive case: a monthly zip and daily ones (each written whole, as
# one block), then the REST API for the last hours.
KLINE_CASES = {
    "rest": (
        "BTCUSDT", "1m", "--start", "2024-01-01", "--end", "2024-02-01", "--source", "rest",
    ),
    "auto": ("ETHUSDT", "1m", "--start", "2024-01-01", "--end", "2024-02-03T12:00"),
}


def _check_csv(path: Path, step_ms: int) -> int:
    """Whole, well-formed rows only, consecutive candles; returns how many."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), f"{path.name} ends with a torn line: {data[-80:]!r}"
    rows = list(csv.reader(data.decode().splitlines()))
    assert rows[0][:2] == ["open_time", "open"], rows[0]
    body = rows[1:]
    for row in body:
        assert len(row) == 12, row
        float(row[1]), float(row[4])
    opens = [int(row[0]) for row in body]
    if opens:
        assert opens == list(range(opens[0], opens[0] + step_ms * len(opens), step_ms))
    return len(body)


@pytest.fixture(scope="module")
def clean_downloads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Each case downloaded once without interruption (in this process: same command)."""
    folder = tmp_path_factory.mktemp("clean")
    out = {}
    for name, case in KLINE_CASES.items():
        target = folder / f"{name}.csv"
        result = CliRunner().invoke(cli, ["--sim", "klines", *case, "-o", str(target)])
        assert result.exit_code == 0, result.output
        out[name] = target.read_bytes()
    return out


@pytest.mark.parametrize("case", sorted(KLINE_CASES))
def test_klines_interrupted_leaves_a_valid_file_that_resumes(
    case: str, tmp_path: Path, clean_downloads: dict[str, bytes]
) -> None:
    args = KLINE_CASES[case]
    # REST pages are written one by one from the first: the moment counts from the first
    # rows. The archive case writes a whole month at once, after the simulator made it:
    # the moment counts from the header, so that it may fall before, in or after a month.
    moments = _moments(f"klines-{case}", 3, 0.6 if case == "rest" else 1.0)
    min_size = 200 if case == "rest" else 1
    files = [tmp_path / f"moment{i}.csv" for i in range(len(moments))]

    # klines prints nothing until it is done: the moment counts from its file.
    outcomes = _run_all(
        [
            lambda d=d, f=f: _interrupt_when_file_grows(args, d, f, tmp_path, min_size)
            for d, f in zip(moments, files, strict=True)
        ]
    )
    runner = CliRunner()
    interrupted = 0
    for outcome, target in zip(outcomes, files, strict=True):
        interrupted += _assert_clean_stop(
            outcome, done_marker=b"rows written"
        )
        kept = _check_csv(target, MINUTE_MS)
        print(f"{case}: SIGINT {outcome.delay:.3f} s in, {kept} rows kept")
        resumed = runner.invoke(cli, ["--sim", "klines", *args, "-o", str(target)])
        assert resumed.exit_code == 0, resumed.output
        assert target.read_bytes() == clean_downloads[case], (
            f"{outcome.describe()}: the resumed file differs from a clean download "
            f"({kept} rows were kept at the interrupt)"
        )
    assert interrupted >= len(outcomes) // 2, "the moments came too late to test anything"


def _interrupt_when_file_grows(
    args: Sequence[str], delay: float, target: Path, cwd: Path, min_size: int
) -> Outcome:
    """Like `_interrupt`, counting the moment from ``target`` reaching ``min_size`` bytes."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiocea_trio", "--sim", "klines", *args, "-o", str(target)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not (target.exists() and target.stat().st_size >= min_size):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{args}: no rows written (exit {proc.returncode})")
            time.sleep(0.005)
        time.sleep(delay)
        sent = proc.poll() is None
        if sent:
            proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=EXIT_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return Outcome(("klines", *args), delay, sent, proc.returncode, stdout, stderr)
