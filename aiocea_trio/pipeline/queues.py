"""Task queues: FIFO `TaskQueue`, LIFO `TaskStack` and cyclic `TaskRing`.

Each queue *is* a trio receive channel of tasks (`trio.abc.ReceiveChannel[Task]`): its
`receive()` hands out the next task in the queue's order at the moment it is called, so a
stack is really LIFO even while tasks are pushed during a run, and a ring's pause falls
between cycles. The operator consumes queues exactly as it consumes any other receive
channel (a memory channel fed by your producers), and `async for task in queue` works
too. `produce()` pushes the same sequence into a memory channel for code that wants one.

`TaskQueue` and `TaskStack` hand each task out once (it leaves the queue, so `len` counts the
tasks still waiting); `TaskRing` keeps its tasks and hands the same objects out every cycle.
A `live=True` queue does not end when it runs dry: it waits for more tasks until `close()`.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterator
from typing import ClassVar, Protocol, Self

import attrs
import trio

from . import _checks
from .composite import remove_by_identity
from .task import Task

__all__ = ["TaskQueue", "TaskRing", "TaskSource", "TaskStack"]


class TaskSource(Protocol):
    """The older pull protocol `Operator.add_queue` still accepts besides receive channels.

    Prefer a `trio.abc.ReceiveChannel[Task]` (a memory channel's receive end, or any
    class with `receive()` raising `trio.EndOfChannel` at the end).
    """

    async def next_task(self) -> Task | None:
        """The next task to execute, waiting if needed; None when the source is exhausted."""
        ...


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class _BaseQueue(trio.abc.ReceiveChannel[Task]):
    """Storage, operators, listing and live feeding shared by the three queues.

    As a receive channel: `receive()` waits for the next task (a live queue) or raises
    `trio.EndOfChannel` when the queue is exhausted; `aclose()` is `close()` (the queue
    accepts no more tasks and ends once the waiting ones are handed out).
    """

    live: bool = attrs.field(default=False, kw_only=True, validator=_checks.flag())
    """Wait for more tasks when empty instead of ending, until `close()`."""
    _tasks: collections.deque[Task] = attrs.field(factory=collections.deque, init=False)
    _closed: bool = attrs.field(default=False, init=False)
    _changed: trio.Event | None = attrs.field(default=None, init=False, repr=False)

    kind: ClassVar[str] = "Task queue"

    def add_tasks(self, *tasks: Task) -> Self:
        """Append tasks (also while an operator runs); returns self for chaining.

        Raises:
            trio.ClosedResourceError: the queue was closed.
            TypeError: an argument is not a Task.
        """
        if self._closed:
            raise trio.ClosedResourceError(f"{self.kind} is closed")
        for t in tasks:
            if not isinstance(t, Task):
                raise TypeError(f"expected a Task, got {t!r}")
        self._tasks.extend(tasks)
        self._notify()
        return self

    def remove_task(self, task: Task) -> Self:
        """Remove a waiting task (the object itself, not an equal one); ValueError if absent."""
        tasks = list(self._tasks)
        remove_by_identity(tasks, task)
        self._tasks = collections.deque(tasks)
        return self

    def __iadd__(self, task: Task) -> Self:
        return self.add_tasks(task)

    def __isub__(self, task: Task) -> Self:
        return self.remove_task(task)

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        """The tasks in the order they were added (not necessarily the order they run)."""
        return iter(list(self._tasks))

    def close(self) -> None:
        """Accept no more tasks; a live queue ends once the waiting ones are handed out."""
        self._closed = True
        self._notify()

    async def aclose(self) -> None:
        """`close()`, as a trio resource: `async with queue:` closes it on the way out."""
        self.close()
        await trio.lowlevel.checkpoint()

    @property
    def closed(self) -> bool:
        return self._closed

    def format_tasks(self) -> str:
        """The listing `show_tasks()` prints: each task numbered in the order added."""
        header = f"-------{self.kind} ({len(self._tasks)})-------"
        lines = [header]
        for i, task in enumerate(self._tasks):
            lines.append(f"Task {i}")
            lines.append(task.format_tree())
        lines.append("-" * len(header))
        return "\n".join(lines)

    def show_tasks(self) -> None:
        """Print `format_tasks()`."""
        print(self.format_tasks())

    async def receive(self) -> Task:
        """The next task in this queue's order, waiting for one if the queue is live.

        Raises:
            trio.EndOfChannel: the queue is exhausted (or closed and drained).
        """
        raise NotImplementedError

    async def next_task(self) -> Task | None:
        """The next task in this queue's order; None when it is exhausted."""
        try:
            return await self.receive()
        except trio.EndOfChannel:
            return None

    async def produce(self, send_channel: trio.MemorySendChannel[Task]) -> None:
        """Send this queue's tasks, in its order, into `send_channel`, then close it.

        The channel is closed on return (pass a `clone()` if you keep using it), so a
        consumer's `async for` ends. A bounded channel makes a slow consumer slow this down.
        """
        with send_channel:
            while (task := await self.next_task()) is not None:
                await send_channel.send(task)

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def _wait_changed(self) -> None:
        if self._changed is None:
            self._changed = trio.Event()
        await self._changed.wait()


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class TaskQueue(_BaseQueue):
    """First in, first out; each task is handed out once."""

    kind: ClassVar[str] = "Task queue"

    async def receive(self) -> Task:
        while not self._tasks:
            if not self.live or self._closed:
                raise trio.EndOfChannel
            await self._wait_changed()
        return self._tasks.popleft()


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class TaskStack(_BaseQueue):
    """Last in, first out; each task is handed out once.

    The operator pulls from the stack only when a worker is free, so a task pushed during
    a run goes before the ones already waiting.
    """

    kind: ClassVar[str] = "Task stack"

    async def receive(self) -> Task:
        while not self._tasks:
            if not self.live or self._closed:
                raise trio.EndOfChannel
            await self._wait_changed()
        return self._tasks.pop()


#: With no iter_interval, a ring checkpoints once every this many cycles.
_CHECKPOINT_EVERY = 64


def _iter_interval(value: float) -> float:
    return _checks.check_seconds("TaskRing", "iter_interval", value, zero_ok=True)


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class TaskRing(_BaseQueue):
    """Hand out all tasks in FIFO order, again and again.

    Args:
        iter_num: number of cycles; None runs forever (until cancelled or `close()`).
        iter_interval: seconds to wait before starting the next cycle, counted from when
            the operator asks for the first task of that cycle (with one worker: when the
            previous cycle's last task has finished). No wait after the last cycle.
        fixed_rate: start cycles every `iter_interval` seconds on trio's clock instead
            (a "poll every second" that does not drift by the time a cycle takes). A
            cycle that is due while the previous one still runs starts as soon as it
            can; the ticks it missed are counted in `skipped_ticks` and never run
            back to back to catch up.

    Tasks added or removed during a cycle take effect at the next cycle. `close()` lets
    the current cycle finish and then ends the ring (a ring closed before
    it starts hands out one cycle). The same task objects run every
    cycle; the operator never re-executes one while a consumer still holds it.
    """

    iter_num: int | None = attrs.field(
        default=None, validator=_checks.count(minimum=0, optional=True)
    )
    iter_interval: float = attrs.field(default=0.0, converter=_iter_interval)
    fixed_rate: bool = attrs.field(default=False, kw_only=True, validator=_checks.flag())
    _cycle: tuple[Task, ...] | None = attrs.field(default=None, init=False, repr=False)
    _pos: int = attrs.field(default=0, init=False, repr=False)
    _cycles_done: int = attrs.field(default=0, init=False, repr=False)
    _anchor: float | None = attrs.field(default=None, init=False, repr=False)
    _tick: int = attrs.field(default=0, init=False, repr=False)
    _skipped: int = attrs.field(default=0, init=False, repr=False)

    kind: ClassVar[str] = "Task ring"

    def __attrs_post_init__(self) -> None:
        if self.fixed_rate and self.iter_interval <= 0:
            raise ValueError("TaskRing: fixed_rate needs an iter_interval > 0 (the period)")

    @property
    def skipped_ticks(self) -> int:
        """Fixed-rate ticks that passed while a cycle was still running (never run late)."""
        return self._skipped

    async def receive(self) -> Task:
        while True:
            cycle = self._cycle
            if cycle is not None:
                if self._pos < len(cycle):
                    self._pos += 1
                    return cycle[self._pos - 1]
                self._cycle = None
                self._cycles_done += 1
                if self._closed or (
                    self.iter_num is not None and self._cycles_done >= self.iter_num
                ):
                    self._reset()
                    raise trio.EndOfChannel
                if self.iter_interval > 0 and not self.fixed_rate:
                    await trio.sleep(self.iter_interval)
                elif self._cycles_done % _CHECKPOINT_EVERY == 0:
                    # An endless ring of tasks that never yield stays cancellable, without
                    # paying a scheduler round trip on every cycle of a one-task ring.
                    await trio.lowlevel.checkpoint()
            elif self.iter_num is not None and self._cycles_done >= self.iter_num:
                self._reset()
                raise trio.EndOfChannel
            elif self._tasks:
                if self.fixed_rate and not await self._wait_for_tick():
                    continue  # the ring changed while it waited: look again
                self._cycle = tuple(self._tasks)
                self._pos = 0
                self._tick += 1
            elif self.live and not self._closed:
                await self._wait_changed()
            else:
                self._reset()
                raise trio.EndOfChannel

    async def _wait_for_tick(self) -> bool:
        """Wait for the next cycle's tick; False if the ring was emptied meanwhile."""
        now = trio.current_time()
        if self._anchor is None:
            self._anchor = now
            return True
        due = self._anchor + self._tick * self.iter_interval
        if now < due:
            await trio.sleep_until(due)
            return bool(self._tasks)
        missed = math.floor((now - due) / self.iter_interval)
        self._skipped += missed
        self._tick += missed
        return True

    def _reset(self) -> None:
        # Exhausted: ready for another run by another operator.
        self._cycles_done = 0
        self._cycle = None
        self._anchor = None
        self._tick = 0
