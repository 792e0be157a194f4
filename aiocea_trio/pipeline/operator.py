"""The `Operator`: a pool of workers that executes the tasks its queues hand out.

Workers pull tasks from the queues (one queue after another, in the order added), execute
them with the operator's client, and, when streaming, send each finished task to a
bounded (unbuffered) channel. Everything runs inside a nursery the caller owns: `run()`
and `completed()` open their own, `serve()` lives in the caller's.

Re-executing a held task is prevented: a task object handed to the consumer stays *held*
until the consumer asks for the next task (or closes the channel), and no worker executes
that object again before then. So a ring that re-runs the same task never overwrites a
result the consumer is still reading, without copying anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
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


@attrs.define(eq=False)
class _Run:
    """The state of one run: where the queues are, which tasks are busy, how it ended."""

    sources: list[TaskSource]
    out: trio.MemorySendChannel[Task] | None
    track: bool
    """Whether to keep tasks busy until released (streaming, or several workers)."""
    lock: trio.Lock | None
    index: int = 0
    busy: dict[int, tuple[Task, trio.Event]] = attrs.field(factory=dict)
    failed: Task | None = None
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)

    async def next_task(self) -> Task | None:
        if self.lock is None:
            return await self._next_task()
        async with self.lock:  # keep the queue's order among several workers
            return await self._next_task()

    async def _next_task(self) -> Task | None:
        while self.index < len(self.sources):
            task = await self.sources[self.index].next_task()
            if task is not None:
                return task
            self.index += 1
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
        while (entry := self.busy.get(key)) is not None:
            await entry[1].wait()
        self.busy[key] = (task, trio.Event())

    def release(self, task: Task) -> None:
        if self.single:
            if self.held is task:
                self.held = None
                if self.held_released is not None:
                    self.held_released.set()
                    self.held_released = None
            return
        entry = self.busy.pop(id(task), None)
        if entry is not None:
            entry[1].set()

    def fail(self, task: Task) -> None:
        if self.failed is None:
            self.failed = task
        self.scope.cancel()


class CompletedChannel(trio.abc.ReceiveChannel[Task]):
    """The receiving end of an operator's stream of finished tasks.

    `async for task in channel` yields each task once it has finished (DONE, FAILED or a
    composite with its children's outcomes). Asking for the next task releases the
    previous one, which a ring may then run again. Ends when the operator has executed
    everything; raises `TaskFailedError` instead if `stop_on_error` stopped it. Not
    clonable: one consumer per stream.
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

    Queues run one after another in the order they were added; a live queue holds up
    the ones after it until it is closed.
    """

    client: Any = attrs.field(default=None)
    max_concurrency: int = attrs.field(default=1, kw_only=True, validator=_checks.count())
    exec_interval: float = attrs.field(default=0.0, kw_only=True, converter=_exec_interval)
    stop_on_error: bool = attrs.field(default=False, kw_only=True, validator=_checks.flag())
    _queues: list[TaskSource] = attrs.field(factory=list, init=False)
    _running: bool = attrs.field(default=False, init=False, repr=False)

    @property
    def queues(self) -> tuple[TaskSource, ...]:
        return tuple(self._queues)

    def add_queue(self, queue: TaskSource) -> Self:
        """Add a queue (anything with `async next_task()`); returns self for chaining."""
        if not callable(getattr(queue, "next_task", None)):
            raise TypeError(f"expected a task queue, got {queue!r}")
        self._queues.append(queue)
        return self

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
            out=out,
            track=several or out is not None,
            lock=trio.Lock() if several else None,
            single=not several,
        )

    async def _operate(self, run: _Run) -> None:
        if self._running:
            raise RuntimeError("this Operator is already running")
        self._running = True
        try:
            with run.scope:
                if self.max_concurrency == 1:
                    await self._worker(run)  # no nursery needed for one worker
                else:
                    with collapse_groups():
                        async with trio.open_nursery() as nursery:
                            for i in range(self.max_concurrency):
                                nursery.start_soon(self._worker, run, name=f"operator worker {i}")
        finally:
            self._running = False

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
            await task.execute(client)
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
