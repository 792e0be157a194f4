"""Fixtures shared by the reliability tests."""

from __future__ import annotations

import random
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import trio

import aiocea_trio.clock


@pytest.fixture
def seeded(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Same run every time, from the test module's ``SEED`` and ``START_MS``.

    Seeds the backoff jitter (the global ``random``) and trio's scheduling order (its
    private RNG, the one trio registers with hypothesis for the same reason), and pins the
    wall clock the client anchors its timestamps to (its sub-millisecond part moves the
    limiter's window edges); all restored afterwards.
    """
    seed: int = request.module.SEED
    start_ms: int = request.module.START_MS
    monkeypatch.setattr(aiocea_trio.clock, "time", SimpleNamespace(time=lambda: start_ms / 1e3))
    trio_rng: random.Random = trio._core._run._r
    saved = random.getstate(), trio_rng.getstate()
    random.seed(seed)
    trio_rng.seed(seed)
    try:
        yield
    finally:
        random.setstate(saved[0])
        trio_rng.setstate(saved[1])
