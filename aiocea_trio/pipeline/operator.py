"""The `Operator`: a pool of workers that executes the tasks its sources hand out.

A source is any `trio.abc.ReceiveChannel[Task]`: a memory channel fed by the caller's
producers, or one of the built-in queues, which are receive channels themselves. Workers
receive from the sources (one after another in the order added, or all at once with
`fair=True`), execute each task with the operator's client, and, when streaming, send
each finished task to a bounded (unbuffered) channel. Everything runs inside a nursery
the caller owns: `run()` and `completed()` open their own, `serve()` lives in the caller's.

Re-executing a held task is prevented: a task object handed to the consumer stays *held*
until the consumer asks for the next task (or closes the channel), and no worker executes
that object again before then. So a ring that re-runs the same task never overwrites a
result the consumer is still reading, without copying anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self, cast

import attrs
import trio

from .._groups import collapse_groups, open_nursery
from . import _checks
from .queues import TaskQueue, TaskRing, TaskSource
from .task import Task, TaskFailedError, TaskState

__all__ = ["CompletedChannel", "Operator"]


Receive = Callable[[], Awaitable[Task]]
"""A source's `receive`: the next task, or `trio.EndOfChannel` when it has ended."""


def _receiver(source: object) -> Receive:
    """The `receive` of a receive channel, or one made from an older `next_task()` source."""
    receive = getattr(source, "receive", None)
    if callable(receive):
        return cast(Receive, receive)
    next_task = getattr(source, "next_task", None)
    if not callable(next_task):
        raise TypeError(
            f"expected a trio ReceiveChannel of tasks (or a queue), got {source!r}"
        )

    async def receive_next() -> Task:
        task = await next_task()
        if task is None:
            raise trio.EndOfChannel
        return cast(Task, task)

    return receive_next


def _checked(task: object, source: object) -> Task:
    if not isinstance(task, Task):
        raise TypeError(f"the source {source!r} sent {task!r}, which is not a Task")
    return task


@attrs.define(eq=False)
class _Run:
    """The state of one run: where the sources are, which tasks are busy, how it ended."""

    sources: list[object]
    receivers: list[Receive]
    """The sources' `receive` functions; shared with the operator, so a source added
    during a run (one after another) is consumed too."""
    out: trio.MemorySendChannel[Task] | None
    track: bool
    """Whether to keep tasks busy until released (streaming, or several workers)."""
    lock: trio.Lock | None
    index: int = 0
    busy: dict[int, Task] = attrs.field(factory=dict)
    """The tasks a worker runs or the consumer holds, by identity."""
    freed: dict[int, trio.Event] = attrs.field(factory=dict)
    """An event for each busy task that another worker waits for (made only then)."""
    failed: Task | None = None
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)

    async def next_task(self) -> Task | None:
        lock = self.lock
        if lock is None:
            return await self._next_task()
        # The lock keeps the source's order among several workers. Taken without a
        # schedule point when free (``acquire`` yields even then, and a yield while
        # holding it parks every other worker that wants the next task): the worker
        # yields in the task it runs anyway.
        try:
            lock.acquire_nowait()
        except trio.WouldBlock:
            await lock.acquire()
        try:
            return await self._next_task()
        finally:
            lock.release()

    async def _next_task(self) -> Task | None:
        receivers = self.receivers
        while self.index < len(receivers):
            try:
                task = await receivers[self.index]()
            except trio.EndOfChannel:
                self.index += 1
                continue
            if not isinstance(task, Task):
                _checked(task, self.sources[self.index])  # raises: it is not a Task
            return task
        return None

    single: bool = False
    """One worker: only the consumer can hold a task, so one slot replaces the table."""
    held: Task | None = None
    held_released: trio.Event | None = None

    async def acquire(self, task: Task) -> None:
        """Wait until no worker runs `task` and no consumer holds it, then claim it."""
        if self.single:
            while self.held is task:
                if self.held_released is None:
                    self.held_released = trio.Event()
                await self.held_released.wait()
            self.held = task
            return
        key = id(task)  # identity: user subclasses may be unhashable
        while key in self.busy:
            freed = self.freed.get(key)
            if freed is None:
                freed = self.freed[key] = trio.Event()
            await freed.wait()
        self.busy[key] = task

    def release(self, task: Task) -> None:
        if self.single:
            if self.held is task:
                self.held = None
                if self.held_released is not None:
                    self.held_released.set()
                    self.held_released = None
            return
        key = id(task)
        if self.busy.pop(key, None) is not None:
            freed = self.freed.pop(key, None)
            if freed is not None:
                freed.set()

    def fail(self, task: Task) -> None:
        if self.failed is None:
            self.failed = task
        self.scope.cancel()


class CompletedChannel(trio.abc.ReceiveChannel[Task]):
    """The receiving end of an operator's stream of finished tasks.

    `async for task in channel` yields each task once it has finished (DONE, FAILED or a
    composite with its children's outcomes). Ends when the operator has executed
    everything; raises `TaskFailedError` instead if `stop_on_error` stopped it. Not
    clonable: one consumer per stream.

    **A received task is on loan** until your next `receive()` (the next turn of
    `async for`): then it goes back to the operator, and a ring may run the same object
    again, resetting its `result` and `error`. Nothing runs it while you hold it, so read
    it freely inside the loop body; to keep an outcome beyond it, keep
    `task.snapshot()` (or the `task.result` object itself, which a new run replaces but
    never changes).
    """

    def __init__(self, receive_channel: trio.MemoryReceiveChannel[Task], run: _Run) -> None:
        self._receive = receive_channel
        self._run = run
        self._held: Task | None = None

    async def receive(self) -> Task:
        """Release the previous task and wait for the next finished one (a checkpoint)."""
        self._release()
        try:
            task = await self._receive.receive()
        except trio.EndOfChannel:
            failed = self._run.failed
            if failed is not None:
                raise TaskFailedError(failed) from failed.error
            raise
        self._held = task
        return task

    def close(self) -> None:
        """Stop receiving; the operator's next send finds no consumer and it stops."""
        self._release()
        self._receive.close()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def statistics(self) -> trio.MemoryChannelStatistics:
        """The underlying memory channel's statistics (buffer size 0)."""
        return self._receive.statistics()

    def _release(self) -> None:
        if self._held is not None:
            self._run.release(self._held)
            self._held = None


def _exec_interval(value: float) -> float:
    return _checks.check_seconds("Operator", "exec_interval", value, zero_ok=True)


@attrs.define(eq=False)
class Operator:
    """Execute the tasks of one or more queues.

    Args:
        client: handed to every task that has no `client` of its own; any object.
        max_concurrency: workers executing tasks at once. With 1 (the default) tasks run
            strictly in queue order; with more they finish, and are streamed, in completion
            order.
        exec_interval: seconds each worker waits between the end of one task and the start
            of its next (a polite pause towards an API); none after the last task.
        stop_on_error: stop at the first failed task: in-flight tasks are cancelled and
            `TaskFailedError` (carrying the task, caused by its error) is raised by `run()`
            or by the stream's next receive. By default failed tasks are streamed like the
            others, with `error` set, and the pipeline goes on.

        fair: consume all sources at once, taking tasks from them in turn (round
            robin), for services fed by several producers. By default sources are
            consumed one after another in the order added; a live queue or an open
            channel holds up the ones after it until it ends.

    A source is any `trio.abc.ReceiveChannel[Task]`: a memory channel's receive end fed
    by your own producers (the operator runs until every source ends with
    `trio.EndOfChannel`, or its scope is cancelled; it never closes your channel), or a
    `TaskQueue`, `TaskStack` or `TaskRing`, which are receive channels themselves.
    """

    client: Any = attrs.field(default=None)
    max_concurrency: int = attrs.field(default=1, kw_only=True, validator=_checks.count())
    exec_interval: float = attrs.field(default=0.0, kw_only=True, converter=_exec_interval)
    stop_on_error: bool = attrs.field(default=False, kw_only=True, validator=_checks.flag())
    fair: bool = attrs.field(default=False, kw_only=True, validator=_checks.flag())
    _queues: list[object] = attrs.field(factory=list, init=False)
    _receivers: list[Receive] = attrs.field(factory=list, init=False, repr=False)
    _running: bool = attrs.field(default=False, init=False, repr=False)

    @property
    def queues(self) -> tuple[Any, ...]:
        """The sources, in the order added."""
        return tuple(self._queues)

    def add_queue(self, queue: trio.abc.ReceiveChannel[Task] | TaskSource) -> Self:
        """Add a source of tasks; returns self for chaining.

        Args:
            queue: a `trio.abc.ReceiveChannel[Task]` (a memory channel's receive end, a
                clone of one, a built-in queue, any class with `receive()`), or an older
                source with `async next_task()` returning None at its end.

        Raises:
            TypeError: `queue` is neither.
            RuntimeError: a `fair` operator is running (its sources are fixed at start).
        """
        receive = _receiver(queue)
        if self._running and self.fair:
            raise RuntimeError("add sources to a fair Operator before it starts")
        self._queues.append(queue)
        self._receivers.append(receive)
        return self

    def add_source(self, source: trio.abc.ReceiveChannel[Task] | TaskSource) -> Self:
        """`add_queue` under the name that says what it takes: any source of tasks."""
        return self.add_queue(source)

    def run_single_task(self, task: Task) -> Self:
        """Add a queue holding just `task`; returns self (`await op.run_single_task(t).run()`)."""
        return self.add_queue(TaskQueue().add_tasks(task))

    def repeat_single_task(
        self, task: Task, iter_num: int | None = None, iter_interval: float = 0.0
    ) -> Self:
        """Add a ring holding just `task` (forever by default); returns self."""
        return self.add_queue(TaskRing(iter_num, iter_interval).add_tasks(task))

    async def run(self) -> None:
        """Execute every task of every queue; results land on the tasks.

        Raises:
            TaskFailedError: with `stop_on_error`, for the first failed task.
            RuntimeError: this operator is already running.
        """
        run = self._new_run(None)
        await self._operate(run)
        if run.failed is not None:
            raise TaskFailedError(run.failed) from run.failed.error

    async def serve(
        self, *, task_status: trio.TaskStatus[CompletedChannel] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run in the caller's nursery: `channel = await nursery.start(op.serve)`.

        The channel yields each finished task and ends when every queue is exhausted.
        Cancelling the nursery stops the workers and in-flight tasks at once. If the
        consumer closes the channel, the operator stops at its next delivery.
        """
        send, receive = trio.open_memory_channel[Task](0)
        run = self._new_run(send)
        with send:
            task_status.started(CompletedChannel(receive, run))
            await self._operate(run)

    @asynccontextmanager
    async def open_completed(self) -> AsyncIterator[CompletedChannel]:
        """`completed()` under trio's name for a context manager that owns a nursery."""
        async with self.completed() as channel:
            yield channel

    @asynccontextmanager
    async def completed(self) -> AsyncIterator[CompletedChannel]:
        """Stream finished tasks: `async with op.completed() as channel: async for t in ...`.

        Leaving the block (normally, by `break`, or with an exception) cancels whatever is
        still running. Errors come out as they happened, never wrapped in a group for
        one: an exception from the block (a `KeyboardInterrupt` included) comes out as
        itself, as does one from a queue or a worker; only errors that really happened at
        the same moment come out together, as one flat `ExceptionGroup`. See
        "Errors out of `completed()`" in docs/pipeline.md.
        """
        if self._running:  # before the nursery, so that it is not wrapped in a group
            raise RuntimeError("this Operator is already running")
        async with open_nursery() as nursery:
            channel = cast(CompletedChannel, await nursery.start(self.serve))
            try:
                yield channel
            finally:
                channel.close()
                nursery.cancel_scope.cancel()

    def _new_run(self, out: trio.MemorySendChannel[Task] | None) -> _Run:
        if self._running:
            raise RuntimeError("this Operator is already running")
        several = self.max_concurrency > 1
        return _Run(
            sources=self._queues,
            receivers=self._receivers,
            out=out,
            track=several or out is not None,
            lock=trio.Lock() if several and not self._merging else None,
            single=not several,
        )

    @property
    def _merging(self) -> bool:
        return self.fair and len(self._receivers) > 1

    async def _operate(self, run: _Run) -> None:
        if self._running:
            raise RuntimeError("this Operator is already running")
        self._running = True
        try:
            with run.scope:
                if self._merging:
                    await self._operate_fair(run)
                elif self.max_concurrency == 1:
                    await self._worker(run)  # no nursery needed for one worker
                else:
                    await self._workers(run)
        finally:
            self._running = False

    async def _workers(self, run: _Run) -> None:
        with collapse_groups():
            async with trio.open_nursery() as nursery:
                for i in range(self.max_concurrency):
                    nursery.start_soon(self._worker, run, name=f"operator worker {i}")

    async def _operate_fair(self, run: _Run) -> None:
        """Every source at once: one pump per source feeds an unbuffered channel, whose
        waiting senders trio serves in turn, so the sources take turns."""
        send, receive = trio.open_memory_channel[Task](0)
        sources, receivers = list(run.sources), list(run.receivers)

        async def pump(
            source: object, receive_one: Receive, out: trio.MemorySendChannel[Task]
        ) -> None:
            with out:
                while True:
                    try:
                        task = await receive_one()
                    except trio.EndOfChannel:
                        return
                    await out.send(_checked(task, source))

        async def merged() -> Task:
            return await receive.receive()

        run.sources, run.receivers, run.index = [receive], [merged], 0
        with receive, collapse_groups():
            async with trio.open_nursery() as nursery:
                with send:
                    for source, receive_one in zip(sources, receivers, strict=True):
                        nursery.start_soon(pump, source, receive_one, send.clone())
                try:
                    if self.max_concurrency == 1:
                        await self._worker(run)
                    else:
                        await self._workers(run)
                finally:
                    # All sources ended, or the workers stopped early (stop_on_error):
                    # the pumps still waiting on a source or holding a task stop too.
                    nursery.cancel_scope.cancel()

    async def _worker(self, run: _Run) -> None:
        client = self.client
        interval = self.exec_interval
        out = run.out
        last_done: float | None = None
        while (task := await run.next_task()) is not None:
            if run.track:
                await run.acquire(task)
            if last_done is not None and interval > 0:
                await trio.sleep_until(last_done + interval)
            await task.execute(client, raise_errors=False)
            if interval > 0:
                last_done = trio.current_time()
            if self.stop_on_error and task.state is TaskState.FAILED:
                run.fail(task)
                return
            if out is None:
                if run.track:
                    run.release(task)
                continue
            try:
                await out.send(task)  # the consumer now holds it until its next receive
            except trio.BrokenResourceError:  # the consumer closed the channel
                run.scope.cancel()
                return
