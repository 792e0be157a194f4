"""Composite tasks: `GatherTask` (one nursery) and `SerialTask` (one await after another).

Composites are tasks, so they nest to any depth and go into queues like any task. Their
`result` is the list of their children's results in argument order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Self

import attrs
import trio

from .._groups import collapse_groups
from ._checks import check_flag
from .task import Task, TaskState

__all__ = ["CompositeTask", "GatherTask", "SerialTask"]

INDENT = "    "


def _checked(tasks: Iterable[object]) -> list[Task]:
    checked: list[Task] = []
    for t in tasks:
        if not isinstance(t, Task):
            raise TypeError(f"expected a Task, got {t!r} (pass tasks as separate arguments)")
        checked.append(t)
    return checked


def _check_unique(owner: Task, children: Iterable[Task]) -> None:
    """Refuse a tree in which one task object appears twice (or contains `owner`).

    A task holds one result at a time: twice in a gather it would run concurrently with
    itself, twice in a serial task its second run would overwrite the first's outcome.
    """
    seen = {id(owner)}
    todo = list(children)
    while todo:
        task = todo.pop()
        if id(task) in seen:
            where = "contains itself" if task is owner else f"holds {task} twice"
            raise ValueError(
                f"{type(owner).__name__}: tasks: this tree {where}; a task object holds one "
                "result at a time, so build one task object per place in the tree"
            )
        seen.add(id(task))
        if isinstance(task, CompositeTask):
            todo.extend(task.tasks)


def remove_by_identity(tasks: list[Task], task: Task) -> None:
    """Remove `task` itself (not an equal one) from `tasks`; ValueError if absent."""
    for i, t in enumerate(tasks):
        if t is task:
            del tasks[i]
            return
    raise ValueError(f"{task} is not in this collection")


def indent_tree(text: str) -> str:
    """Indent every line of a task tree by one level."""
    return "\n".join(INDENT + line for line in text.splitlines())


@attrs.define(eq=False, init=False)
class CompositeTask(Task):
    """Common base of `GatherTask` and `SerialTask`: a list of children plus operators.

    `+`/`-` return a new composite (same options) with a child added/removed; `+=`/`-=`
    and `add_tasks` change this one. Removal is by identity, never by equality. The
    composite's `client`, when set, reaches every child that has none of its own.
    A task object must not appear twice in one tree: it holds one result at a time.
    """

    tasks: list[Task]
    label: ClassVar[str] = "Composite"

    def _options(self) -> dict[str, Any]:
        return {"client": self.client, "timeout": self.timeout}

    def _with_tasks(self, tasks: list[Task]) -> Self:
        return type(self)(*tasks, **self._options())

    def add_tasks(self, *tasks: Task) -> Self:
        """Append children in place; returns self for chaining.

        Raises:
            TypeError: an argument is not a Task.
            ValueError: a task object would appear twice in this tree.
        """
        added = _checked(tasks)
        _check_unique(self, [*self.tasks, *added])
        self.tasks.extend(added)
        return self

    def __add__(self, task: Task) -> Self:
        return self._with_tasks([*self.tasks, *_checked([task])])

    def __sub__(self, task: Task) -> Self:
        tasks = list(self.tasks)
        remove_by_identity(tasks, task)
        return self._with_tasks(tasks)

    def __iadd__(self, task: Task) -> Self:
        return self.add_tasks(task)

    def __isub__(self, task: Task) -> Self:
        remove_by_identity(self.tasks, task)
        return self

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __getitem__(self, index: int) -> Task:
        return self.tasks[index]

    def __str__(self) -> str:
        return f"{self.label} ({len(self.tasks)})"

    def format_tree(self) -> str:
        """This composite and its children, four spaces per nesting level."""
        lines = [f"{self}:"]
        lines.extend(indent_tree(t.format_tree()) for t in self.tasks)
        return "\n".join(lines)

    def show_tasks(self) -> None:
        """Print `format_tree()`."""
        print(self.format_tree())


@attrs.define(eq=False, init=False)
class GatherTask(CompositeTask):
    """Run the children concurrently in one nursery; `result` keeps argument order.

    By default the first child that fails cancels its siblings (they end CANCELLED) and the
    gather fails with that child's exception itself as its `error`. With
    `return_exceptions=True` (as in `asyncio.gather`) every child runs to its end, each
    failure is recorded on its child and put in `result` in place of a value, and the
    gather itself is DONE.
    """

    return_exceptions: bool = attrs.field(default=False, kw_only=True)
    label: ClassVar[str] = "Gather"

    def __init__(
        self,
        *tasks: Task,
        return_exceptions: bool = False,
        client: Any = None,
        timeout: float | None = None,
    ) -> None:
        check_flag(self, "return_exceptions", return_exceptions)
        checked = _checked(tasks)
        _check_unique(self, checked)
        self.__attrs_init__(
            checked, return_exceptions=return_exceptions, client=client, timeout=timeout
        )

    def _options(self) -> dict[str, Any]:
        return {**super()._options(), "return_exceptions": self.return_exceptions}

    async def run(self, client: Any) -> list[Any]:
        results: list[Any] = [None] * len(self.tasks)
        failed: list[Task] = []

        async def child(i: int, task: Task, scope: trio.CancelScope) -> None:
            await task.execute(client, raise_errors=False)
            if task.state is TaskState.DONE:
                results[i] = task.result
            elif self.return_exceptions:
                results[i] = task.error
            elif not failed:
                failed.append(task)
                scope.cancel()

        with collapse_groups():  # a child's KeyboardInterrupt comes out bare, not grouped
            async with trio.open_nursery() as nursery:
                for i, task in enumerate(self.tasks):
                    nursery.start_soon(child, i, task, nursery.cancel_scope, name=str(task))
        if failed:
            assert failed[0].error is not None
            raise failed[0].error
        return results


@attrs.define(eq=False, init=False)
class SerialTask(CompositeTask):
    """Run the children one after another; `result` lists their results.

    By default the first failure stops the sequence (later children stay PENDING) and the
    serial task fails with that child's exception itself. With `continue_on_error=True`
    the remaining children still run, a failed child's exception takes its place in
    `result`, and the serial task is DONE.
    """

    continue_on_error: bool = attrs.field(default=False, kw_only=True)
    label: ClassVar[str] = "Serial"

    def __init__(
        self,
        *tasks: Task,
        continue_on_error: bool = False,
        client: Any = None,
        timeout: float | None = None,
    ) -> None:
        check_flag(self, "continue_on_error", continue_on_error)
        checked = _checked(tasks)
        _check_unique(self, checked)
        self.__attrs_init__(
            checked, continue_on_error=continue_on_error, client=client, timeout=timeout
        )

    def _options(self) -> dict[str, Any]:
        return {**super()._options(), "continue_on_error": self.continue_on_error}

    async def run(self, client: Any) -> list[Any]:
        results: list[Any] = []
        for task in self.tasks:
            await task.execute(client, raise_errors=False)
            if task.state is TaskState.DONE:
                results.append(task.result)
            elif self.continue_on_error:
                results.append(task.error)
            else:
                assert task.error is not None
                raise task.error
        return results
