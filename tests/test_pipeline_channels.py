"""The channel-native pipeline: any trio ReceiveChannel of tasks feeds the operator,
queues are receive channels, several sources one after another or fairly, and rings
that keep a fixed rate."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from aiocea_trio.pipeline import Operator, Task, TaskQueue, TaskRing, TaskStack


@attrs.define(eq=False)
class Sleep(Task):
    label: str
    seconds: float = 0.0
    starts: list[float] = attrs.field(factory=list, repr=False)

    async def run(self, client: Any) -> str:
        self.starts.append(trio.current_time())
        await trio.sleep(self.seconds)
        return self.label

    def __str__(self) -> str:
        return self.label


async def test_a_users_memory_channel_with_two_producers_feeds_four_workers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, receive = trio.open_memory_channel[Task](0)
    seen: list[str] = []

    async def producer(name: str, out: trio.MemorySendChannel[Task]) -> None:
        async with out:
            for i in range(50):
                await out.send(Sleep(f"{name}{i}", seconds=0.1 * (i % 3)))
                await trio.sleep(0.01)

    async with trio.open_nursery() as nursery:
        async with send:
            nursery.start_soon(producer, "a", send.clone())
            nursery.start_soon(producer, "b", send.clone())
        operator = Operator(max_concurrency=4).add_queue(receive)
        async with operator.completed() as done:
            async for task in done:
                seen.append(task.result)
    assert sorted(seen) == sorted([f"a{i}" for i in range(50)] + [f"b{i}" for i in range(50)])
    assert len(seen) == len(set(seen)) == 100  # every task arrives once


async def test_queues_are_receive_channels_for_users_too() -> None:
    queue = TaskQueue()
    queue.add_tasks(Sleep("x"), Sleep("y"))
    assert isinstance(queue, trio.abc.ReceiveChannel)
    assert [str(task) async for task in queue] == ["x", "y"]
    with pytest.raises(trio.EndOfChannel):
        await queue.receive()
    ring = TaskRing(2).add_tasks(Sleep("r"))
    assert [str(task) async for task in ring] == ["r", "r"]


async def test_a_stack_stays_lifo_when_tasks_are_pushed_during_a_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stack = TaskStack(live=True)
    stack.add_tasks(Sleep("first", 1.0), Sleep("second", 1.0))
    order: list[str] = []

    async def push_while_second_runs() -> None:
        await trio.sleep(0.5)
        stack.add_tasks(Sleep("pushed-1"), Sleep("pushed-2"))
        stack.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(push_while_second_runs)
        async with Operator().add_queue(stack).completed() as done:
            async for task in done:
                order.append(str(task))
    # Taken at the moment the worker is free: the newest task first.
    assert order == ["second", "pushed-2", "pushed-1", "first"]


async def test_sources_run_one_after_another_by_default(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = TaskQueue(), TaskQueue()
    a.add_tasks(*(Sleep(f"a{i}", 0.1) for i in range(3)))
    b.add_tasks(*(Sleep(f"b{i}", 0.1) for i in range(3)))
    order: list[str] = []
    async with Operator().add_queue(a).add_queue(b).completed() as done:
        async for task in done:
            order.append(str(task))
    assert order == ["a0", "a1", "a2", "b0", "b1", "b2"]


async def test_fair_takes_turns_between_live_producers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    first_send, first = trio.open_memory_channel[Task](0)
    second_send, second = trio.open_memory_channel[Task](0)
    order: list[str] = []

    async def feed(name: str, out: trio.MemorySendChannel[Task]) -> None:
        async with out:
            for i in range(4):
                await out.send(Sleep(f"{name}{i}", 0.1))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed, "a", first_send)
        nursery.start_soon(feed, "b", second_send)
        operator = Operator(fair=True).add_queue(first).add_source(second)
        async with operator.open_completed() as done:
            async for task in done:
                order.append(str(task))
    assert sorted(order) == sorted(f"{n}{i}" for n in "ab" for i in range(4))
    # Neither producer waits for the other to end: they alternate.
    assert order[:4].count("a0") + order[:4].count("b0") == 2
    assert {order[0][0], order[1][0]} == {"a", "b"}


async def test_a_fair_operator_refuses_new_sources_while_running() -> None:
    send, receive = trio.open_memory_channel[Task](0)
    operator = Operator(fair=True).add_queue(receive).add_queue(TaskQueue())
    async with trio.open_nursery() as nursery:
        channel = await nursery.start(operator.serve)
        with pytest.raises(RuntimeError, match="fair"):
            operator.add_queue(TaskQueue())
        await send.aclose()
        async for _ in channel:
            pass


async def test_a_source_sending_something_else_is_a_type_error() -> None:
    send, receive = trio.open_memory_channel[Any](1)
    await send.send("not a task")
    await send.aclose()
    with pytest.raises(TypeError, match="not a Task"):
        await Operator().add_queue(receive).run()


async def test_the_operator_never_closes_the_users_channel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, receive = trio.open_memory_channel[Task](1)
    await send.send(Sleep("once"))
    with trio.move_on_after(5):  # an open channel keeps the operator waiting
        await Operator().add_queue(receive).run()
    await send.send(Sleep("again"))  # the receive end is still open
    assert str(receive.receive_nowait()) == "again"


# -- rings: the aiocea pause and a fixed rate ---------------------------------------------


async def test_the_after_cycle_pause_drifts_by_the_work_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    task = Sleep("poll", 0.3)
    await Operator().add_queue(TaskRing(10, 1.0).add_tasks(task)).run()
    gaps = [b - a for a, b in zip(task.starts, task.starts[1:], strict=False)]
    assert gaps == pytest.approx([1.3] * 9)


async def test_a_fixed_rate_ring_keeps_its_period(autojump_clock: trio.testing.MockClock) -> None:
    task = Sleep("poll", 0.3)
    ring = TaskRing(100, 1.0, fixed_rate=True).add_tasks(task)
    start = trio.current_time()
    await Operator().add_queue(ring).run()
    end = trio.current_time() - start
    assert [s - start for s in task.starts] == pytest.approx([float(i) for i in range(100)])
    assert 99.3 - 1 <= end <= 100 + 1  # 100 cycles of a 0.3 s task at 1 s: ~100 s
    assert ring.skipped_ticks == 0


async def test_a_late_cycle_starts_at_once_and_skipped_ticks_are_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slow = Sleep("slow", 2.5)
    ring = TaskRing(4, 1.0, fixed_rate=True).add_tasks(slow)
    start = trio.current_time()
    await Operator().add_queue(ring).run()
    starts = [s - start for s in slow.starts]
    # Due at 0, 1, 2, ...: each cycle takes 2.5 s, so the next starts at once when the
    # previous ends, never two back to back to catch up on the ticks it missed.
    assert starts == pytest.approx([0.0, 2.5, 5.0, 7.5])
    # Ticks 0..7 fell by 7.5 s; the cycles served ticks 0, 2, 5 and 7 (the latest one
    # passed when each started), so ticks 1, 3, 4 and 6 were skipped.
    ticks_passed = math.floor(starts[-1] / 1.0) + 1
    assert ring.skipped_ticks == ticks_passed - len(starts) == 4


def test_a_fixed_rate_needs_a_period() -> None:
    with pytest.raises(ValueError, match="fixed_rate"):
        TaskRing(3, fixed_rate=True)
    with pytest.raises(TypeError, match="fixed_rate"):
        TaskRing(3, 1.0, fixed_rate="yes")  # type: ignore[arg-type]


# -- direct execution raises; a streamed task is on loan --------------------------------


async def test_executing_a_gather_directly_raises_the_bad_symbols_error() -> None:
    from aiocea_trio import BinanceAPIError, GatherTask, SimExchange, SpotFetchTicker

    good, bad = SpotFetchTicker(symbol="BTCUSDT"), SpotFetchTicker(symbol="NOPEUSDT")
    async with SimExchange().client() as client:
        with pytest.raises(BinanceAPIError) as info:
            _btc, _nope = await GatherTask(good, bad).execute(client)
        assert info.value.code == -1121
        assert info.value is bad.error
        # The operator's way, and on request: recorded, not raised.
        quiet = GatherTask(SpotFetchTicker(symbol="NOPEUSDT"))
        assert await quiet.execute(client, raise_errors=False) is None
        assert isinstance(quiet.error, BinanceAPIError)


async def test_a_snapshot_keeps_a_rings_result_after_the_task_is_run_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from aiocea_trio import TaskSnapshot, TaskState

    counter = iter(range(100))

    @attrs.define(eq=False)
    class Count(Task):
        async def run(self, client: Any) -> dict[str, int]:
            await trio.sleep(0.5)
            return {"n": next(counter)}

    kept: list[TaskSnapshot] = []
    seen_objects: set[int] = set()
    ring = TaskRing(3).add_tasks(Count())
    async with Operator().add_queue(ring).completed() as done:
        async for task in done:
            seen_objects.add(id(task))
            kept.append(task.snapshot())
    assert len(seen_objects) == 1  # the same object every cycle
    assert [s.result for s in kept] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert all(s.state is TaskState.DONE and s.elapsed == pytest.approx(0.5) for s in kept)
