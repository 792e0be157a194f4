"""Task lifecycle: execute() records state/result/error, timeouts, cancellation, FunctionTask."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio
import trio.testing

from aiocea_trio.pipeline import (
    FunctionTask,
    Task,
    TaskState,
    TaskTimeoutError,
    task_function,
)

CLIENT = object()


@attrs.define(eq=False)
class Sleep(Task):
    seconds: float
    value: Any = None

    async def run(self, client: Any) -> Any:
        await trio.sleep(self.seconds)
        return self.value

    def __str__(self) -> str:
        return f"sleep {self.seconds:g} s"


@attrs.define(eq=False)
class Boom(Task):
    delay: float = 0.0

    async def run(self, client: Any) -> Any:
        await trio.sleep(self.delay)
        raise ValueError("boom")


@attrs.define(eq=False)
class WhichClient(Task):
    async def run(self, client: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return client


@attrs.define  # value equality, like a user's plain @attrs.define subclass
class Plain(Task):
    symbol: str
    limit: int = 5
    secret: str = attrs.field(default="s3cr3t", repr=False)


async def test_execute_records_result_state_and_times(autojump_clock: Any) -> None:
    task = Sleep(2, "v")
    initial = (task.state, task.result)
    assert initial == (TaskState.PENDING, None)
    assert await task.execute(CLIENT, raise_errors=False) == "v"
    assert task.state is TaskState.DONE
    assert task.result == "v"
    assert task.error is None
    assert (task.started_at, task.finished_at) == (0, 2)


async def test_failure_is_recorded_not_raised(autojump_clock: Any) -> None:
    task = Boom(1)
    assert await task.execute(CLIENT, raise_errors=False) is None
    assert task.state is TaskState.FAILED
    assert isinstance(task.error, ValueError)
    assert task.result is None
    assert task.finished_at == 1


async def test_raise_errors_reraises_the_recorded_error_itself() -> None:
    task = Boom()
    with pytest.raises(ValueError, match="boom") as info:
        await task.execute(CLIENT, raise_errors=True)
    assert info.value is task.error
    assert task.state is TaskState.FAILED


async def test_cancellation_is_marked_and_propagates(autojump_clock: Any) -> None:
    task = Sleep(10)
    reached_after = False
    with trio.move_on_after(3) as scope:
        await task.execute(CLIENT, raise_errors=False)
        reached_after = True
    assert scope.cancelled_caught
    assert not reached_after
    assert task.state is TaskState.CANCELLED
    assert task.error is None
    assert task.finished_at == 3


async def test_cancelled_group_from_a_users_nursery_marks_cancelled(autojump_clock: Any) -> None:
    @attrs.define(eq=False)
    class Nested(Task):
        async def run(self, client: Any) -> Any:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep, 10)
                nursery.start_soon(trio.sleep, 10)

    task = Nested()
    with trio.move_on_after(1):
        await task.execute(CLIENT, raise_errors=False)
    assert task.state is TaskState.CANCELLED


async def test_timeout_fails_with_task_timeout_error(autojump_clock: Any) -> None:
    task = Sleep(10, timeout=2.5)
    assert await task.execute(CLIENT, raise_errors=False) is None
    assert trio.current_time() == 2.5
    assert task.state is TaskState.FAILED
    assert isinstance(task.error, TaskTimeoutError)
    assert isinstance(task.error, TimeoutError)
    assert task.error.task is task
    assert task.error.timeout == 2.5
    assert str(task.error) == "task sleep 10 s timed out after 2.5 s"


async def test_timeout_not_reached_is_harmless(autojump_clock: Any) -> None:
    task = Sleep(1, "ok", timeout=2)
    assert await task.execute(CLIENT, raise_errors=False) == "ok"
    assert task.state is TaskState.DONE
    assert trio.current_time() == 1


async def test_outer_cancel_beats_own_timeout(autojump_clock: Any) -> None:
    task = Sleep(10, timeout=5)
    with trio.move_on_after(1):
        await task.execute(CLIENT, raise_errors=False)
    assert task.state is TaskState.CANCELLED
    assert task.error is None


@pytest.mark.parametrize("bad", [0, -1])
def test_timeout_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        Sleep(1, timeout=bad)


async def test_reexecution_resets_the_previous_outcome() -> None:
    flaky = FunctionTask(_flaky, [ValueError("first"), "second"])
    await flaky.execute(CLIENT, raise_errors=False)
    assert isinstance(flaky.error, ValueError)
    assert await flaky.execute(CLIENT, raise_errors=False) == "second"
    assert flaky.state is TaskState.DONE
    assert flaky.error is None


async def _flaky(outcomes: list[Any]) -> Any:
    await trio.lowlevel.checkpoint()
    outcome = outcomes.pop(0)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def test_own_client_wins_over_the_given_one() -> None:
    assert await WhichClient().execute("operator's") == "operator's"
    assert await WhichClient(client="own").execute("operator's") == "own"


async def test_base_run_is_not_implemented() -> None:
    task = Task()
    await task.execute(CLIENT, raise_errors=False)
    assert isinstance(task.error, NotImplementedError)


def test_default_str_names_class_and_parameters_but_not_hidden_ones() -> None:
    assert str(Plain("BTCUSDT", client="k", timeout=3)) == "Plain(symbol='BTCUSDT', limit=5)"
    assert Plain("X").format_tree() == "Plain(symbol='X', limit=5)"


def test_tasks_are_identity_objects() -> None:
    a, b = Sleep(1), Sleep(1)
    assert a != b
    assert len({a, b}) == 2


async def test_function_task_forwards_arguments() -> None:
    async def add(a: int, b: int, *, scale: int = 1) -> int:
        await trio.lowlevel.checkpoint()
        return (a + b) * scale

    task = FunctionTask(add, 1, 2, scale=10)
    assert await task.execute(CLIENT, raise_errors=False) == 30
    assert str(task).endswith("add(1, 2, scale=10)")


async def test_function_task_passes_client_only_to_functions_that_take_it() -> None:
    async def with_client(symbol: str, client: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return (symbol, client)

    async def without(*args: Any, **kwargs: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return (args, kwargs)

    assert await FunctionTask(with_client, "BTC").execute("c") == ("BTC", "c")
    assert await FunctionTask(with_client, "BTC", client="own").execute("c") == ("BTC", "own")
    assert await FunctionTask(without, 1, k=2).execute("c") == ((1,), {"k": 2})


async def test_function_task_timeout_is_the_tasks_not_the_functions(autojump_clock: Any) -> None:
    task = FunctionTask(trio.sleep, 10, timeout=1)
    await task.execute(CLIENT, raise_errors=False)
    assert isinstance(task.error, TaskTimeoutError)
    assert trio.current_time() == 1


def test_function_task_needs_a_callable() -> None:
    with pytest.raises(TypeError, match="async callable"):
        FunctionTask(42)  # type: ignore[arg-type]


async def test_task_function_decorator_builds_tasks() -> None:
    calls: list[str] = []

    @task_function
    async def fetch(symbol: str, client: Any) -> str:
        await trio.lowlevel.checkpoint()
        calls.append(symbol)
        return f"{symbol}@{client}"

    task = fetch("BTC")
    assert isinstance(task, FunctionTask)
    assert calls == []  # building a task runs nothing
    assert await task.execute("main") == "BTC@main"
    assert await fetch("ETH", client="alt").execute("main") == "ETH@alt"
    assert fetch.__name__ == "fetch"


async def test_task_function_decorator_with_a_name() -> None:
    @task_function(name="ticker {0} x{limit}")
    async def ticker(symbol: str, limit: int = 1) -> int:
        await trio.lowlevel.checkpoint()
        return limit

    task = ticker("BTC", limit=3)
    assert str(task) == "ticker BTC x3"
    assert await task.execute(None) == 3
