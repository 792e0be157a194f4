"""Issue 12, class 10 (library side): what comes out of the library's nurseries.

One error, of any kind, from the caller's block, a queue, a worker or a child task comes
out bare, as it went in; errors that really happened at the same moment come out as one
flat group; `KeyboardInterrupt`/`SystemExit` always bare; `trio.Cancelled` is never
swallowed, and an outer cancel scope still works. One helper (`aiocea_trio._groups`)
decides for every nursery-owning context manager, so the shapes are the same at any
concurrency.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio

from aiocea_trio._groups import collapse, collapse_groups, leaves, open_nursery
from aiocea_trio.pipeline import (
    FunctionTask,
    GatherTask,
    Operator,
    SerialTask,
    Task,
    TaskQueue,
    TaskState,
)

CONCURRENCY = [1, 2, 8]


class Fatal(BaseException):
    """A BaseException a task may raise: not recorded as a failure, it ends the run."""


@attrs.define(eq=False)
class Sleep(Task):
    seconds: float = 1.0

    async def run(self, client: Any) -> float:
        await trio.sleep(self.seconds)
        return trio.current_time()


@attrs.define(eq=False)
class Raise(Task):
    """Raises `exc` after a second, or as soon as `gate` opens."""

    exc: BaseException
    gate: trio.Event | None = None

    async def run(self, client: Any) -> Any:
        await wait_for(self.gate)
        raise self.exc


@attrs.define(eq=False)
class RaisingSource:
    """A queue that hands out `ok` tasks, then raises (after a second, or when `gate` opens)."""

    exc: BaseException
    ok: int = 0
    gate: trio.Event | None = None

    async def next_task(self) -> Task | None:
        await wait_for(self.gate)
        if self.ok > 0:
            self.ok -= 1
            return Sleep()
        raise self.exc


async def wait_for(gate: trio.Event | None) -> None:
    if gate is None:
        await trio.sleep(1)
    else:
        await gate.wait()


async def drain(op: Operator) -> None:
    """Consume a whole stream."""
    async with op.completed() as channel:
        async for _ in channel:
            pass


async def open_gate_after(gate: trio.Event, seconds: float) -> None:
    await trio.sleep(seconds)
    gate.set()


def ring(op: Operator) -> Operator:
    return op.repeat_single_task(Sleep())


async def real_cancelled() -> trio.Cancelled:
    """A genuine trio.Cancelled instance, caught from a cancelled scope."""
    caught: list[trio.Cancelled] = []
    with trio.CancelScope() as scope:
        scope.cancel()
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled as exc:
            caught.append(exc)
            raise
    return caught[0]


# -- the caller's block ------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", CONCURRENCY)
@pytest.mark.parametrize(
    "error",
    [KeyboardInterrupt(), SystemExit(3), Fatal("mine"), KeyError("mine"), ValueError("mine")],
    ids=lambda e: type(e).__name__,
)
async def test_one_exception_from_the_block_comes_out_bare(
    autojump_clock: Any, concurrency: int, error: BaseException
) -> None:
    async def consume() -> None:
        async with ring(Operator(max_concurrency=concurrency)).completed() as channel:
            await channel.receive()
            raise error

    with pytest.raises(type(error)) as info:
        await consume()
    assert info.value is error


@pytest.mark.parametrize("concurrency", CONCURRENCY)
async def test_keyboard_interrupt_while_waiting_in_async_for_comes_out_bare(
    autojump_clock: Any, concurrency: int
) -> None:
    """As Ctrl-C arrives in the CLI: trio raises it in the main task, which waits in the loop."""

    async def consume() -> None:
        async with ring(Operator(max_concurrency=concurrency)).completed() as channel:
            async for task in channel:
                if trio.current_time() >= 2:
                    raise KeyboardInterrupt
                assert task.state is TaskState.DONE

    with pytest.raises(KeyboardInterrupt):
        await consume()


async def test_an_exception_group_from_the_block_comes_out_as_it_went_in(
    autojump_clock: Any,
) -> None:
    mine = ExceptionGroup("mine", [ValueError("a")])

    async def consume() -> None:
        async with ring(Operator(max_concurrency=2)).completed():
            raise mine

    with pytest.raises(ExceptionGroup) as info:
        await consume()
    assert info.value is mine


async def test_the_bare_exception_keeps_its_own_context(autojump_clock: Any) -> None:
    async def consume() -> None:
        async with ring(Operator()).completed():
            try:
                raise KeyError("first")
            except KeyError:
                raise ValueError("second")  # noqa: B904 - chained implicitly on purpose

    with pytest.raises(ValueError, match="second") as info:
        await consume()
    assert isinstance(info.value.__context__, KeyError)


# -- queues, workers and tasks -------------------------------------------------------------


@pytest.mark.parametrize("concurrency", CONCURRENCY)
@pytest.mark.parametrize("error", [ValueError("src"), KeyboardInterrupt(), SystemExit(2)])
async def test_one_exception_from_a_queue_comes_out_bare(
    autojump_clock: Any, concurrency: int, error: BaseException
) -> None:
    with pytest.raises(type(error)) as info:
        await Operator(max_concurrency=concurrency).add_queue(RaisingSource(error, ok=3)).run()
    assert info.value is error
    with pytest.raises(type(error)) as info:
        await drain(Operator(max_concurrency=concurrency).add_queue(RaisingSource(error, ok=3)))
    assert info.value is error


@pytest.mark.parametrize("concurrency", CONCURRENCY)
@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(2), Fatal("task")])
async def test_a_base_exception_from_a_task_comes_out_bare(
    autojump_clock: Any, concurrency: int, error: BaseException
) -> None:
    def queue() -> TaskQueue:
        return TaskQueue().add_tasks(Sleep(5), Raise(error), Sleep(5))

    with pytest.raises(type(error)) as info:
        await Operator(max_concurrency=concurrency).add_queue(queue()).run()
    assert info.value is error
    with pytest.raises(type(error)) as info:
        await drain(Operator(max_concurrency=concurrency).add_queue(queue()))
    assert info.value is error


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(2), Fatal("child")])
async def test_a_base_exception_from_a_gather_child_comes_out_bare(
    autojump_clock: Any, error: BaseException
) -> None:
    slow = Sleep(10)
    tree = GatherTask(slow, SerialTask(Sleep(), Raise(error)))
    with pytest.raises(type(error)) as info:
        await tree.execute(None)
    assert info.value is error
    assert slow.state is TaskState.CANCELLED
    assert tree.state is TaskState.CANCELLED


@pytest.mark.parametrize("concurrency", CONCURRENCY)
async def test_errors_at_the_same_moment_come_out_as_one_flat_group(
    autojump_clock: Any, concurrency: int
) -> None:
    """The block and a queue fail at the same instant: both, side by side, nothing nested.

    Both wait for one event: once it is set, each raises before the other's failure can
    cancel it (with sleeps, the first failure would cancel the other's sleep instead).
    """
    gate = trio.Event()
    src = RaisingSource(ValueError("source"), gate=gate)

    async def consume() -> None:
        async with Operator(max_concurrency=concurrency).add_queue(src).completed():
            await gate.wait()
            raise KeyError("block")

    async with trio.open_nursery() as outside:
        outside.start_soon(open_gate_after, gate, 1)
        with pytest.raises(ExceptionGroup) as info:
            await consume()
    group = info.value
    assert sorted(type(e).__name__ for e in group.exceptions) == ["KeyError", "ValueError"]
    assert not any(isinstance(e, BaseExceptionGroup) for e in group.exceptions)


@pytest.mark.parametrize("concurrency", [2, 8])
async def test_tasks_failing_together_give_one_flat_base_group(
    autojump_clock: Any, concurrency: int
) -> None:
    gate = trio.Event()
    first, second = Fatal("one"), Fatal("two")
    tree = GatherTask(Raise(Fatal("x"), gate=gate), Raise(Fatal("y"), gate=gate))
    queue = TaskQueue().add_tasks(Raise(first, gate=gate), Raise(second, gate=gate), tree)
    async with trio.open_nursery() as outside:
        outside.start_soon(open_gate_after, gate, 1)
        with pytest.raises(BaseExceptionGroup) as info:
            await Operator(max_concurrency=concurrency).add_queue(queue).run()
    found = info.value.exceptions
    assert type(info.value) is BaseExceptionGroup
    assert not any(isinstance(e, BaseExceptionGroup) for e in found)  # flat, even the gather's
    assert {str(e) for e in found} >= {"one", "two"}


# -- cancellation --------------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", CONCURRENCY)
async def test_an_outer_move_on_after_still_cancels_completed(
    autojump_clock: Any, concurrency: int
) -> None:
    seen = 0
    with trio.move_on_after(5.5) as scope:
        async with ring(Operator(max_concurrency=concurrency)).completed() as channel:
            async for _ in channel:
                seen += 1
    assert scope.cancelled_caught
    assert trio.current_time() == 5.5
    assert seen >= 5


@pytest.mark.parametrize("concurrency", CONCURRENCY)
async def test_an_outer_cancel_reaches_run_and_a_gather(
    autojump_clock: Any, concurrency: int
) -> None:
    with trio.move_on_after(3) as scope:
        await ring(Operator(max_concurrency=concurrency)).run()
    assert scope.cancelled_caught
    tree = GatherTask(Sleep(10), Sleep(10))
    with trio.move_on_after(1) as scope:
        await tree.execute(None)
    assert scope.cancelled_caught
    assert tree.state is TaskState.CANCELLED


async def test_an_outer_fail_after_raises_too_slow(autojump_clock: Any) -> None:
    async def consume() -> None:
        with trio.fail_after(2):
            await drain(ring(Operator(max_concurrency=2)))

    with pytest.raises(trio.TooSlowError):
        await consume()


async def test_cancelled_beside_one_real_error_gives_the_real_error() -> None:
    cancelled = await real_cancelled()
    real = ValueError("real")
    assert collapse(BaseExceptionGroup("x", [cancelled, BaseExceptionGroup("y", [real])])) is real
    only = collapse(BaseExceptionGroup("x", [cancelled, BaseExceptionGroup("y", [cancelled])]))
    assert isinstance(only, trio.Cancelled)  # never swallowed: the cancelled scope catches it


async def test_collapse_groups_lets_the_cancelled_scope_catch_its_cancelled() -> None:
    with trio.CancelScope() as outer:
        with collapse_groups():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep_forever)
                nursery.start_soon(trio.sleep_forever)
                outer.cancel()
    assert outer.cancelled_caught


# -- the helper itself ---------------------------------------------------------------------


def test_collapse_table() -> None:
    a, b, c = ValueError("a"), KeyError("b"), OSError("c")
    assert collapse(a) is a  # not a group: untouched
    assert collapse(ExceptionGroup("g", [ExceptionGroup("h", [a])])) is a
    flat = collapse(ExceptionGroup("g", [a, ExceptionGroup("h", [b, ExceptionGroup("i", [c])])]))
    assert isinstance(flat, ExceptionGroup)
    assert flat.message == "g"
    assert list(flat.exceptions) == [a, b, c]
    mixed = collapse(BaseExceptionGroup("g", [a, Fatal("f")]))
    assert type(mixed) is BaseExceptionGroup
    assert leaves(mixed) == list(mixed.exceptions)


def test_keyboard_interrupt_wins_and_names_what_it_displaced() -> None:
    ki, exit_, a = KeyboardInterrupt(), SystemExit(1), ValueError("a")
    won = collapse(BaseExceptionGroup("g", [a, BaseExceptionGroup("h", [exit_, ki])]))
    assert won is ki
    assert any("ValueError('a')" in note for note in getattr(ki, "__notes__", []))
    assert collapse(BaseExceptionGroup("g", [a, exit_])) is exit_


async def test_open_nursery_waits_for_its_tasks_on_a_normal_exit(autojump_clock: Any) -> None:
    done: list[float] = []

    @asynccontextmanager
    async def background() -> AsyncIterator[None]:
        async with open_nursery() as nursery:
            nursery.start_soon(lambda: _sleep_then_note(2, done))
            yield

    async with background():
        pass
    assert done == [2]


async def _sleep_then_note(seconds: float, done: list[float]) -> None:
    await trio.sleep(seconds)
    done.append(trio.current_time())


async def test_a_task_error_is_still_recorded_not_raised(autojump_clock: Any) -> None:
    """The policy is about what escapes; a failed task is still delivered with its error."""
    failing = FunctionTask(_fail)
    async with Operator(max_concurrency=2).run_single_task(failing).completed() as channel:
        got = [task async for task in channel]
    assert got == [failing]
    assert isinstance(failing.error, ValueError)


async def _fail() -> None:
    await trio.sleep(1)
    raise ValueError("recorded")
