"""Operator: run/completed/serve, order, intervals, concurrency, failures, backpressure,
the held-task protection for rings, live feeding and cancellation."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio

from aiocea_trio.pipeline import (
    CompletedChannel,
    FunctionTask,
    Operator,
    Task,
    TaskFailedError,
    TaskQueue,
    TaskRing,
    TaskStack,
    TaskState,
)

CLIENT = object()


@attrs.define
class Tracker:
    """Counts tasks running right now, so tests can prove nothing is left running."""

    running: int = 0
    peak: int = 0
    log: list[str] = attrs.field(factory=list)


@attrs.define(eq=False)
class Work(Task):
    label: str
    seconds: float = 1.0
    tracker: Tracker = attrs.field(factory=Tracker)

    async def run(self, client: Any) -> str:
        tracker = self.tracker
        tracker.running += 1
        tracker.peak = max(tracker.peak, tracker.running)
        try:
            await trio.sleep(self.seconds)
        finally:
            tracker.running -= 1
        tracker.log.append(self.label)
        return f"{self.label}@{trio.current_time():g}"

    def __str__(self) -> str:
        return self.label


@attrs.define(eq=False)
class Boom(Task):
    seconds: float = 1.0

    async def run(self, client: Any) -> Any:
        await trio.sleep(self.seconds)
        raise ValueError("boom")


@attrs.define(eq=False)
class Counter(Task):
    """Returns 1, 2, 3... on successive runs: a ring re-runs the same object."""

    runs: int = 0

    async def run(self, client: Any) -> int:
        await trio.sleep(1)
        self.runs += 1
        return self.runs


@attrs.define(eq=False)
class WhichClient(Task):
    async def run(self, client: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return client


def live_trio_tasks() -> int:
    """How many trio tasks exist right now, found by walking the task tree."""
    count, todo = 0, [trio.lowlevel.current_root_task()]
    while todo:
        task = todo.pop()
        assert task is not None
        count += 1
        todo.extend(child for nursery in task.child_nurseries for child in nursery.child_tasks)
    return count


def works(*labels: str, seconds: float = 1.0, tracker: Tracker | None = None) -> list[Work]:
    tracker = tracker or Tracker()
    return [Work(label, seconds, tracker) for label in labels]


async def test_run_executes_every_task_in_order(autojump_clock: Any) -> None:
    a, b, c = works("a", "b", "c")
    await Operator(CLIENT).add_queue(TaskQueue().add_tasks(a, b, c)).run()
    assert [a.result, b.result, c.result] == ["a@1", "b@2", "c@3"]
    assert a.tracker.log == ["a", "b", "c"]
    assert trio.current_time() == 3


async def test_run_single_task_returns_the_operator() -> None:
    task = WhichClient()
    op = Operator(CLIENT)
    assert op.run_single_task(task) is op
    await op.run()
    assert task.result is CLIENT


async def test_task_client_overrides_the_operators() -> None:
    shared, own = WhichClient(), WhichClient(client="own")
    await Operator("main").add_queue(TaskQueue().add_tasks(shared, own)).run()
    assert (shared.result, own.result) == ("main", "own")


async def test_queues_run_one_after_another(autojump_clock: Any) -> None:
    tracker = Tracker()
    a, b, c = works("a", "b", "c", tracker=tracker)
    op = Operator().add_queue(TaskQueue().add_tasks(a, b)).add_queue(TaskStack().add_tasks(c))
    assert len(op.queues) == 2
    await op.run()
    assert tracker.log == ["a", "b", "c"]


async def test_stack_is_really_lifo_even_when_pushed_during_a_run(autojump_clock: Any) -> None:
    tracker = Tracker()
    a, b, c = works("a", "b", "c", tracker=tracker)
    stack = TaskStack().add_tasks(a, b)

    async def push_later() -> None:
        await trio.sleep(0.5)  # while b runs
        stack.add_tasks(c)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(push_later)
        await Operator().add_queue(stack).run()
    assert tracker.log == ["b", "c", "a"]


async def test_exec_interval_pauses_between_tasks_only(autojump_clock: Any) -> None:
    tasks = works("a", "b", "c")
    await Operator(exec_interval=2).add_queue(TaskQueue().add_tasks(*tasks)).run()
    assert [t.finished_at for t in tasks] == [1, 4, 7]
    assert trio.current_time() == 7  # no pause after the last task


async def test_ring_pause_comes_after_the_cycle_has_finished(autojump_clock: Any) -> None:
    task = Work("tick")
    op = Operator().repeat_single_task(task, iter_num=3, iter_interval=2)
    times = []
    async with op.completed() as channel:
        async for done in channel:
            assert done is task
            times.append(trio.current_time())
    assert times == [1, 4, 7]
    assert trio.current_time() == 7


async def test_repeat_single_task_runs_forever_by_default() -> None:
    op = Operator().repeat_single_task(Work("x"))
    (ring,) = op.queues
    assert isinstance(ring, TaskRing)
    assert ring.iter_num is None


async def test_completed_streams_each_task_when_it_finishes(autojump_clock: Any) -> None:
    a, b = works("a", "b")
    op = Operator().add_queue(TaskQueue().add_tasks(a, b))
    got = []
    async with op.completed() as channel:
        assert isinstance(channel, CompletedChannel)
        async for task in channel:
            got.append((task, task.state, trio.current_time()))
        with pytest.raises(trio.EndOfChannel):
            await channel.receive()
    assert got == [(a, TaskState.DONE, 1), (b, TaskState.DONE, 2)]


async def test_serve_in_the_callers_nursery(autojump_clock: Any) -> None:
    a, b = works("a", "b")
    op = Operator().add_queue(TaskQueue().add_tasks(a, b))
    got = []
    async with trio.open_nursery() as nursery:
        channel = await nursery.start(op.serve)
        assert isinstance(channel, CompletedChannel)
        async for task in channel:
            got.append(task.result)
    assert got == ["a@1", "b@2"]


async def test_feeding_a_live_queue_while_the_operator_runs(autojump_clock: Any) -> None:
    queue = TaskQueue(live=True)
    op = Operator().add_queue(queue)
    got = []

    async def feed() -> None:
        for label in ("a", "b", "c"):
            queue.add_tasks(Work(label))
            await trio.sleep(5)
        queue.close()

    async with op.completed() as channel, trio.open_nursery() as nursery:
        nursery.start_soon(feed)
        async for task in channel:
            got.append(task.result)
    assert got == ["a@1", "b@6", "c@11"]
    assert trio.current_time() == 15  # finished when the queue was closed


async def test_a_failed_task_is_streamed_and_the_pipeline_goes_on(autojump_clock: Any) -> None:
    a, boom, c = Work("a"), Boom(), Work("c")
    op = Operator().add_queue(TaskQueue().add_tasks(a, boom, c))
    got = []
    async with op.completed() as channel:
        async for task in channel:
            got.append(task)
    assert got == [a, boom, c]
    assert isinstance(boom.error, ValueError)
    assert boom.state is TaskState.FAILED
    assert c.state is TaskState.DONE


async def test_stop_on_error_run_raises_for_the_first_failure(autojump_clock: Any) -> None:
    a, boom, c = Work("a"), Boom(), Work("c")
    op = Operator(stop_on_error=True).add_queue(TaskQueue().add_tasks(a, boom, c))
    with pytest.raises(TaskFailedError) as info:
        await op.run()
    assert info.value.task is boom
    assert info.value.__cause__ is boom.error
    assert c.state is TaskState.PENDING
    assert trio.current_time() == 2


async def test_stop_on_error_stream_raises_unwrapped_and_cancels_in_flight(
    autojump_clock: Any,
) -> None:
    tracker = Tracker()
    slow, boom = Work("slow", 5, tracker), Boom(1)
    op = Operator(stop_on_error=True, max_concurrency=2)
    op.add_queue(TaskQueue().add_tasks(slow, boom))
    got = []

    async def consume() -> None:
        async with op.completed() as channel:
            async for task in channel:
                got.append(task)

    with pytest.raises(TaskFailedError) as info:
        await consume()
    assert info.value.task is boom
    assert got == []
    assert slow.state is TaskState.CANCELLED
    assert tracker.running == 0
    assert trio.current_time() == 1


async def test_concurrency_streams_in_completion_order(autojump_clock: Any) -> None:
    tracker = Tracker()
    tasks = [Work("c", 3, tracker), Work("a", 1, tracker), Work("b", 2, tracker)]
    op = Operator(max_concurrency=3).add_queue(TaskQueue().add_tasks(*tasks))
    async with op.completed() as channel:
        order = [str(task) async for task in channel]
    assert order == ["a", "b", "c"]
    assert trio.current_time() == 3
    assert tracker.peak == 3


async def test_concurrency_is_bounded(autojump_clock: Any) -> None:
    tracker = Tracker()
    tasks = works(*"abcde", tracker=tracker)
    await Operator(max_concurrency=2).add_queue(TaskQueue().add_tasks(*tasks)).run()
    assert tracker.peak == 2
    assert trio.current_time() == 3
    assert all(t.state is TaskState.DONE for t in tasks)


async def test_slow_consumer_slows_the_operator(autojump_clock: Any) -> None:
    tracker = Tracker()
    queue = TaskQueue().add_tasks(*works(*(str(i) for i in range(100)), tracker=tracker))
    op = Operator().add_queue(queue)
    async with op.completed() as channel:
        for _ in range(3):
            await channel.receive()
            await trio.sleep(100)  # a slow consumer
        assert len(tracker.log) == 4  # three delivered, one finished and waiting
        assert channel.statistics().tasks_waiting_send == 1
        assert len(queue) == 96
    assert tracker.running == 0


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_a_ring_never_overwrites_a_result_the_consumer_holds(
    autojump_clock: Any, concurrency: int
) -> None:
    counter = Counter()
    op = Operator(max_concurrency=concurrency).repeat_single_task(counter)
    seen = []
    async with op.completed() as channel:
        async for task in channel:
            before = task.result
            await trio.sleep(5)  # a consumer that reads the result late
            assert task.result == before
            assert task.state is TaskState.DONE
            seen.append(before)
            if len(seen) == 5:
                break
    assert seen == [1, 2, 3, 4, 5]
    # Each run starts only when the consumer asks for the next task: 1 s + 5 s per item.
    assert trio.current_time() == 30


async def test_a_ring_of_many_tasks_keeps_order_and_bounded_state(autojump_clock: Any) -> None:
    tasks = works("a", "b", "c")
    op = Operator(max_concurrency=2).add_queue(TaskRing(iter_num=50).add_tasks(*tasks))
    count = 0
    async with op.completed() as channel:
        async for _ in channel:
            count += 1
    assert count == 150
    assert tasks[0].tracker.peak == 2


async def test_breaking_out_stops_everything(autojump_clock: Any) -> None:
    tracker = Tracker()
    tasks = [Work("fast", 1, tracker), Work("slow1", 10, tracker), Work("slow2", 10, tracker)]
    op = Operator(max_concurrency=3).add_queue(TaskRing().add_tasks(*tasks))
    before = live_trio_tasks()
    async with op.completed() as channel:
        async for task in channel:
            assert task is tasks[0]
            assert live_trio_tasks() > before  # the workers are there...
            break
    assert trio.current_time() == 1
    assert tracker.running == 0
    assert tasks[1].state is tasks[2].state is TaskState.CANCELLED
    assert live_trio_tasks() == before


async def test_leaving_the_block_early_cancels_the_rest(autojump_clock: Any) -> None:
    a, b, c = works("a", "b", "c")
    async with Operator().add_queue(TaskQueue().add_tasks(a, b, c)).completed() as channel:
        assert await channel.receive() is a
        await trio.sleep(0.5)
    assert b.state is TaskState.CANCELLED
    assert c.state is TaskState.PENDING
    assert trio.current_time() == 1.5


async def test_an_exception_in_the_block_comes_out_unwrapped(autojump_clock: Any) -> None:
    op = Operator().repeat_single_task(Work("x"))

    async def consume() -> None:
        async with op.completed() as channel:
            await channel.receive()
            raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        await consume()


async def test_cancelling_from_outside_stops_workers_and_tasks(autojump_clock: Any) -> None:
    tracker = Tracker()
    tasks = works("a", "b", "c", seconds=2, tracker=tracker)
    op = Operator(max_concurrency=3).add_queue(TaskRing().add_tasks(*tasks))
    before = live_trio_tasks()
    with trio.move_on_after(5.5):
        await op.run()
    assert trio.current_time() == 5.5
    assert tracker.running == 0
    assert len(tracker.log) == 6  # two full rounds of three
    assert all(t.state is TaskState.CANCELLED for t in tasks)
    assert live_trio_tasks() == before


async def test_cancelling_serve_from_outside(autojump_clock: Any) -> None:
    tracker = Tracker()
    op = Operator().repeat_single_task(Work("x", 3, tracker))
    with trio.move_on_after(4):
        async with trio.open_nursery() as nursery:
            channel = await nursery.start(op.serve)
            async for _ in channel:
                pass
    assert tracker.running == 0
    assert trio.current_time() == 4


async def test_endless_ring_of_tasks_that_never_yield_can_be_cancelled() -> None:
    calls = 0

    async def busy() -> None:
        nonlocal calls
        calls += 1  # no await: this task never yields by itself

    op = Operator().repeat_single_task(FunctionTask(busy))
    async with trio.open_nursery() as nursery:

        async def cancel_soon() -> None:
            for _ in range(3):
                await trio.lowlevel.checkpoint()
            nursery.cancel_scope.cancel()

        nursery.start_soon(cancel_soon)
        nursery.start_soon(op.run)
    assert calls > 0


async def test_closing_the_channel_stops_serve(autojump_clock: Any) -> None:
    tracker = Tracker()
    op = Operator().repeat_single_task(Work("x", 1, tracker))
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            channel = await nursery.start(op.serve)
            with channel:
                await channel.receive()
            # no cancel: the operator notices the closed channel and returns by itself
    assert trio.current_time() == 2  # it ran once more, then found no consumer
    assert tracker.running == 0


async def test_an_operator_runs_once_at_a_time(autojump_clock: Any) -> None:
    op = Operator().repeat_single_task(Work("x"))
    async with trio.open_nursery() as nursery:
        await nursery.start(op.serve)
        with pytest.raises(RuntimeError, match="already running"):
            await op.run()

        async def stream_too() -> None:
            async with op.completed():
                pass  # pragma: no cover

        with pytest.raises(RuntimeError, match="already running"):
            await stream_too()
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"max_concurrency": 0}, "max_concurrency"), ({"exec_interval": -1}, "exec_interval")],
)
def test_operator_checks_its_options(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Operator(**kwargs)


def test_add_queue_needs_a_queue() -> None:
    with pytest.raises(TypeError, match="ReceiveChannel of tasks"):
        Operator().add_queue(object())  # type: ignore[arg-type]
