"""Streams feed the pipeline: events become tasks on the receive-channel interface the
``Operator`` consumes, so "when a candle closes, fetch and act" is a few lines.

``operator.add_source(tasks_from(stream, make_task))``: ``make_task(event)`` returns a
``Task`` to run, or None to skip the event. The stream stays the caller's (it is closed when
its ``open_stream`` block ends); the feed ends when the stream does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from ..pipeline import Task

__all__ = ["TaskFeed", "tasks_from"]


class TaskFeed(trio.abc.ReceiveChannel[Task]):
    """The tasks ``make_task`` makes from a stream's events, in the events' order."""

    def __init__(
        self, stream: trio.abc.ReceiveChannel[Any], make_task: Callable[[Any], Task | None]
    ) -> None:
        self._stream = stream
        self._make_task = make_task
        self._closed = False

    async def receive(self) -> Task:
        if self._closed:
            raise trio.ClosedResourceError("this task feed is closed")
        while True:
            event = await self._stream.receive()  # EndOfChannel when the stream ends
            task = self._make_task(event)
            if task is not None:
                if not isinstance(task, Task):
                    raise TypeError(f"make_task must return a Task or None; got {task!r}")
                return task

    async def aclose(self) -> None:
        # The stream belongs to its open_stream block: only this view of it closes.
        self._closed = True
        await trio.lowlevel.checkpoint()


def tasks_from(
    stream: trio.abc.ReceiveChannel[Any], make_task: Callable[[Any], Task | None]
) -> TaskFeed:
    """A source of tasks for ``Operator.add_source``: ``make_task(event)`` for each event of
    ``stream`` (an ``open_stream`` stream, or any receive channel), skipping None."""
    if not callable(make_task):
        raise TypeError(f"make_task must be callable; got {make_task!r}")
    return TaskFeed(stream, make_task)
