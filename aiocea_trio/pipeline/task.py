"""The unit of work: `Task`, its lifecycle, and `FunctionTask` for any async callable.

A task is an attrs object with identity. Users implement `run`; the framework calls
`execute`, which records `state`, `result`, `error` and timestamps on the task itself so
that whoever holds the task (a composite, the operator's consumer) can read them later.
"""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, overload

import attrs
import trio

from ._checks import check_seconds

__all__ = [
    "FunctionTask",
    "Task",
    "TaskFailedError",
    "TaskSnapshot",
    "TaskState",
    "TaskTimeoutError",
    "task_function",
]

AsyncFn = Callable[..., Awaitable[Any]]


class TaskState(enum.Enum):
    """Where a task is in its life; set by `Task.execute`, never by users."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@attrs.frozen
class TaskSnapshot:
    """A task's outcome, kept: what `Task.snapshot()` returns.

    A task streamed by the operator is on loan until the consumer's next receive: a
    ring may then run the same object again, which resets `result` and `error`. A
    snapshot is yours to keep. It holds the result object itself (each run rebinds the
    task's `result` to a new object, it never changes the old one).
    """

    name: str
    """`str(task)` when the snapshot was taken."""
    state: TaskState
    result: Any
    error: Exception | None
    started_at: float | None
    finished_at: float | None

    @property
    def elapsed(self) -> float | None:
        """Seconds the run took (trio's clock), or None if it has not finished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


class TaskTimeoutError(TimeoutError):
    """A task's own `timeout` expired.

    Raised (and recorded as the task's `error`) instead of a bare `trio.Cancelled`, so that
    logs say which task was too slow and how long it was allowed.
    """

    def __init__(self, task: Task, timeout: float) -> None:
        super().__init__(f"task {task} timed out after {timeout:g} s")
        self.task = task
        self.timeout = timeout


class TaskFailedError(Exception):
    """A task failed and the pipeline was told to stop at the first failure.

    Carries the failed `task`; its `__cause__` is the task's own `error`.
    """

    def __init__(self, task: Task) -> None:
        super().__init__(f"task {task} failed: {task.error!r}")
        self.task = task


@attrs.define(eq=False)
class Task:
    """Base class of every task: subclass it and implement `run`.

    Subclasses add their parameters as attrs fields; `client` and `timeout` are keyword-only
    so that subclasses may declare mandatory fields. Tasks are identity objects: the
    framework never compares or hashes them (a subclass decorated with plain
    `@attrs.define` gets value equality, which is fine).
    """

    client: Any = attrs.field(default=None, kw_only=True, repr=False)
    """Client used instead of the operator's one (several API keys in one pipeline)."""
    timeout: float | None = attrs.field(default=None, kw_only=True)
    """Seconds this task may run (finite, > 0); past it the task fails with `TaskTimeoutError`."""

    state: TaskState = attrs.field(default=TaskState.PENDING, init=False)
    result: Any = attrs.field(default=None, init=False, repr=False)
    """What `run` returned on the last successful execution, else None."""
    error: Exception | None = attrs.field(default=None, init=False)
    """The exception `run` raised on the last execution (itself, never wrapped)."""
    started_at: float | None = attrs.field(default=None, init=False, repr=False)
    finished_at: float | None = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # Checked here rather than by an attrs validator: a validator would make attrs
        # hook every setattr, slowing down each outcome `execute` records.
        if self.timeout is not None:
            check_seconds(self, "timeout", self.timeout, zero_ok=False)

    async def run(self, client: Any) -> Any:
        """Do the work and return the result; override this.

        Args:
            client: `self.client` if set, else the client handed to `execute` (usually the
                operator's). Whatever object that is; the pipeline does not care.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement run()")

    async def execute(self, client: Any = None, *, raise_errors: bool = True) -> Any:
        """Run the task once, record the outcome on it, and return the result.

        An `Exception` from `run` (or a `TaskTimeoutError`) is recorded as `error` with state
        FAILED and then raised, as a direct call should
        (`btc, eth = await GatherTask(a, b).execute(client)` raises a bad symbol's
        `BinanceAPIError`). The operator and the composites run their tasks with
        `raise_errors=False`: the failure is recorded and they look at `state`.
        Cancellation is never swallowed: the task is marked CANCELLED and
        `trio.Cancelled` propagates.

        Args:
            client: the default client; `self.client` wins when set.
            raise_errors: raise the recorded error (the default); False records it only
                and returns None.

        Returns:
            The result (or None, with `raise_errors=False`, if the task failed).

        Raises:
            RuntimeError: this task object is already running (started elsewhere and not
                finished); nothing is recorded, the run in progress is left alone.
        """
        if self.state is TaskState.RUNNING:
            # Checked before anything is touched: the run in progress owns the outcome.
            raise RuntimeError(
                f"task {self} is already running: one task object runs once at a time "
                "(a task placed in two queues or operators that run at once, or a composite "
                "holding it twice); build one task object per use"
            )
        use = self.client if self.client is not None else client
        self.state = TaskState.RUNNING
        self.result = None
        self.error = None
        self.finished_at = None
        self.started_at = trio.current_time()
        try:
            if self.timeout is None:
                result = await self.run(use)
            else:
                result = await self._run_with_timeout(use, self.timeout)
        except Exception as exc:
            self.error = exc
            self.state = TaskState.FAILED
            if raise_errors:
                raise
            return None
        else:
            self.result = result
            self.state = TaskState.DONE
            return result
        finally:
            self.finished_at = trio.current_time()
            if self.state is TaskState.RUNNING:
                # A BaseException (Cancelled, or a group of them) is on its way out.
                self.state = TaskState.CANCELLED

    def snapshot(self) -> TaskSnapshot:
        """The outcome as it is now, to keep after the task is handed back (see `TaskSnapshot`)."""
        return TaskSnapshot(
            name=str(self),
            state=self.state,
            result=self.result,
            error=self.error,
            started_at=self.started_at,
            finished_at=self.finished_at,
        )

    async def _run_with_timeout(self, client: Any, seconds: float) -> Any:
        with trio.move_on_after(seconds):
            return await self.run(client)
        # Only reached when our own deadline cancelled run().
        raise TaskTimeoutError(self, seconds)

    def __str__(self) -> str:
        """Describe the task in words for logs and trees; subclasses should override."""
        params = ", ".join(
            f"{a.name}={getattr(self, a.name)!r}"
            for a in attrs.fields(type(self))
            if a.init and a.repr and a.name not in ("client", "timeout")
        )
        return f"{type(self).__name__}({params})"

    def format_tree(self) -> str:
        """The task as text, one line per task (composites indent their children)."""
        return str(self)


@attrs.define(eq=False, init=False)
class FunctionTask(Task):
    """Run any async callable as a task: `FunctionTask(async_fn, *args, **kwargs)`.

    The call is `await async_fn(*args, **kwargs)`. If `async_fn` has a parameter named
    `client`, the task's client is passed as `client=` too. The keywords `client` and
    `timeout` are the task's own options and are not forwarded.
    """

    fn: AsyncFn
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    name: str | None = attrs.field(default=None, init=False)
    """Description for `str()`; `str.format`-ed with the arguments (`"ticker {0}"`)."""
    _wants_client: bool = attrs.field(default=False, init=False, repr=False)

    def __init__(
        self,
        async_fn: AsyncFn,
        /,
        *args: Any,
        client: Any = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        if not callable(async_fn):
            raise TypeError(f"FunctionTask needs an async callable, got {async_fn!r}")
        self.__attrs_init__(async_fn, args, kwargs, client=client, timeout=timeout)
        self._wants_client = _accepts_client(async_fn)

    async def run(self, client: Any) -> Any:
        if self._wants_client:
            return await self.fn(*self.args, client=client, **self.kwargs)
        return await self.fn(*self.args, **self.kwargs)

    def __str__(self) -> str:
        if self.name is not None:
            return self.name.format(*self.args, **self.kwargs)
        parts = [repr(a) for a in self.args]
        parts += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        fn_name = getattr(self.fn, "__qualname__", None) or repr(self.fn)
        return f"{fn_name}({', '.join(parts)})"


def _accepts_client(fn: AsyncFn) -> bool:
    try:
        param = inspect.signature(fn).parameters.get("client")
    except (TypeError, ValueError):  # builtins and other callables without a signature
        return False
    return param is not None and param.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


TaskFactory = Callable[..., FunctionTask]


@overload
def task_function(async_fn: AsyncFn, /) -> TaskFactory: ...
@overload
def task_function(*, name: str | None = None) -> Callable[[AsyncFn], TaskFactory]: ...
def task_function(
    async_fn: AsyncFn | None = None, /, *, name: str | None = None
) -> TaskFactory | Callable[[AsyncFn], TaskFactory]:
    """Decorator: calling the decorated function builds a `FunctionTask` instead of running.

    Use as `@task_function` or `@task_function(name="ticker {0}")`. `fetch("BTC")` then
    returns a task for a queue or composite; `fetch("BTC", client=other)` sets the task's
    own client.
    """

    def decorate(fn: AsyncFn) -> TaskFactory:
        @functools.wraps(fn)
        def factory(*args: Any, **kwargs: Any) -> FunctionTask:
            task = FunctionTask(fn, *args, **kwargs)
            task.name = name
            return task

        return factory

    if async_fn is not None:
        return decorate(async_fn)
    return decorate
