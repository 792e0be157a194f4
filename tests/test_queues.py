"""TaskQueue / TaskStack / TaskRing: order, intervals, listing, operators, live feeding."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio

from aiocea_trio.pipeline import GatherTask, SerialTask, Task, TaskQueue, TaskRing, TaskStack


@attrs.define(eq=False)
class Named(Task):
    label: str

    async def run(self, client: Any) -> str:
        await trio.lowlevel.checkpoint()
        return self.label

    def __str__(self) -> str:
        return self.label


@attrs.define  # value equality
class Same(Task):
    async def run(self, client: Any) -> None:
        await trio.lowlevel.checkpoint()


async def drain(queue: TaskQueue | TaskStack | TaskRing) -> list[str]:
    """Everything `produce` sends, as labels."""
    send, receive = trio.open_memory_channel[Task](0)
    got: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.produce, send)
        async for task in receive:
            got.append(str(task))
    return got


def tasks(*labels: str) -> list[Task]:
    return [Named(label) for label in labels]


async def test_queue_is_fifo_and_hands_each_task_out_once() -> None:
    queue = TaskQueue().add_tasks(*tasks("a", "b", "c"))
    assert await drain(queue) == ["a", "b", "c"]
    assert len(queue) == 0
    assert await drain(queue) == []


async def test_stack_is_lifo() -> None:
    stack = TaskStack().add_tasks(*tasks("a", "b", "c"))
    assert await drain(stack) == ["c", "b", "a"]
    assert len(stack) == 0


async def test_ring_cycles_iter_num_times_and_can_run_again() -> None:
    ring = TaskRing(iter_num=3).add_tasks(*tasks("a", "b"))
    assert await drain(ring) == ["a", "b"] * 3
    assert len(ring) == 2
    assert await drain(ring) == ["a", "b"] * 3


async def test_ring_waits_iter_interval_between_cycles_only(autojump_clock: Any) -> None:
    ring = TaskRing(iter_num=3, iter_interval=2).add_tasks(*tasks("a", "b"))
    send, receive = trio.open_memory_channel[Task](0)
    times: list[float] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ring.produce, send)
        async for _ in receive:
            times.append(trio.current_time())
    assert times == [0, 0, 2, 2, 4, 4]
    assert trio.current_time() == 4  # no pause after the last cycle


async def test_forever_ring_stops_under_move_on_after(autojump_clock: Any) -> None:
    ring = TaskRing(iter_interval=1).add_tasks(*tasks("a"))
    assert ring.iter_num is None
    send, receive = trio.open_memory_channel[Task](0)
    count = 0
    with trio.move_on_after(10.5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ring.produce, send)
            async for _ in receive:
                count += 1
    assert count == 11
    assert trio.current_time() == 10.5


async def test_changes_to_a_ring_apply_from_the_next_cycle() -> None:
    a, b, c = tasks("a", "b", "c")
    ring = TaskRing(iter_num=2).add_tasks(a, b)
    first = await ring.next_task()
    ring += c
    ring -= b
    rest = [await ring.next_task() for _ in range(3)]
    assert [first, *rest] == [a, b, a, c]
    assert await ring.next_task() is None


async def test_empty_or_zero_rings_end_at_once() -> None:
    assert await drain(TaskRing()) == []
    assert await drain(TaskRing(iter_num=0).add_tasks(*tasks("a"))) == []


async def test_closing_a_ring_ends_it_after_the_current_cycle() -> None:
    a, b = tasks("a", "b")
    ring = TaskRing().add_tasks(a, b)
    assert await ring.next_task() is a
    ring.close()
    assert await ring.next_task() is b
    assert await ring.next_task() is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"iter_num": -1}, "iter_num"), ({"iter_interval": -1}, "iter_interval")],
)
def test_ring_checks_its_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TaskRing(**kwargs)


async def test_produce_is_backpressured_by_the_consumer(autojump_clock: Any) -> None:
    ring = TaskRing().add_tasks(*tasks("a"))
    send, receive = trio.open_memory_channel[Task](0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ring.produce, send)
        for _ in range(3):
            await receive.receive()
            await trio.sleep(100)  # a slow consumer
            stats = receive.statistics()
            assert stats.tasks_waiting_send == 1  # the producer waits for us
            assert stats.current_buffer_used == 0
        nursery.cancel_scope.cancel()


async def test_live_queue_waits_for_tasks_until_closed(autojump_clock: Any) -> None:
    queue = TaskQueue(live=True)
    send, receive = trio.open_memory_channel[Task](0)
    got: list[tuple[str, float]] = []

    async def feed() -> None:
        for label in ("a", "b"):
            await trio.sleep(1)
            queue.add_tasks(*tasks(label))
        await trio.sleep(1)
        queue.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.produce, send)
        nursery.start_soon(feed)
        async for task in receive:
            got.append((str(task), trio.current_time()))
    assert got == [("a", 1), ("b", 2)]
    assert trio.current_time() == 3  # ended when closed, not before
    assert queue.closed


async def test_live_ring_waits_for_its_first_task(autojump_clock: Any) -> None:
    ring = TaskRing(iter_num=2, live=True)

    async def feed() -> None:
        await trio.sleep(5)
        ring.add_tasks(*tasks("a"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed)
        got = await drain(ring)
    assert got == ["a", "a"]
    assert trio.current_time() == 5


def test_closed_queue_refuses_tasks() -> None:
    queue = TaskQueue()
    queue.close()
    with pytest.raises(trio.ClosedResourceError):
        queue += Named("late")


def test_queue_operators() -> None:
    a, b, c = tasks("a", "b", "c")
    queue = TaskStack()
    original = queue
    queue += a
    assert queue.add_tasks(b, c) is queue
    queue -= b
    assert queue is original
    assert len(queue) == 2
    assert list(queue) == [a, c]
    with pytest.raises(TypeError, match="expected a Task"):
        queue.add_tasks("nope")  # type: ignore[arg-type]


def test_queue_removal_is_by_identity() -> None:
    first, second = Same(), Same()
    assert first == second
    queue = TaskQueue().add_tasks(first, second)
    queue -= second
    assert next(iter(queue)) is first
    assert len(queue) == 1
    with pytest.raises(ValueError, match="not in"):
        queue -= Same()


LISTING = """\
-------Task queue (2)-------
Task 0
ping
Task 1
Gather (2):
    Serial (2):
        server time
        BTCUSD_PERP ticker
    Serial (2):
        server time
        ETHUSD_PERP ticker
----------------------------"""


def test_listing(capsys: pytest.CaptureFixture[str]) -> None:
    queue = TaskQueue()
    queue += Named("ping")
    queue += GatherTask(
        SerialTask(*tasks("server time", "BTCUSD_PERP ticker")),
        SerialTask(*tasks("server time", "ETHUSD_PERP ticker")),
    )
    assert queue.format_tasks() == LISTING
    queue.show_tasks()
    assert capsys.readouterr().out == LISTING + "\n"


def test_listing_names_the_kind() -> None:
    assert TaskStack().format_tasks() == "-------Task stack (0)-------\n" + "-" * 28
    ring = TaskRing().add_tasks(*tasks("x"))
    assert ring.format_tasks().splitlines() == [
        "-------Task ring (1)-------",
        "Task 0",
        "x",
        "-" * 27,
    ]
