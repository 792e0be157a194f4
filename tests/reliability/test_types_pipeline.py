"""Issue 12, class 11: loose types are refused at construction, naming the parameter.

A bool is not a count, a float is not an int, a str is not a number of seconds or a flag,
NaN and infinity are not a duration; and one task object never runs twice at once
(twice in one tree, or in two operators or live queues running together).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import pytest
import trio

from aiocea_trio import tasks as catalog
from aiocea_trio.pipeline import (
    FunctionTask,
    GatherTask,
    Operator,
    SerialTask,
    Task,
    TaskQueue,
    TaskRing,
    TaskStack,
    TaskState,
)


@attrs.define(eq=False)
class Sleep(Task):
    seconds: float = 1.0
    runs: int = 0

    async def run(self, client: Any) -> int:
        await trio.sleep(self.seconds)
        self.runs += 1
        return self.runs


async def nothing() -> None:
    await trio.lowlevel.checkpoint()


Build = Callable[[], object]


def loose(value: object) -> Any:
    """A value of the wrong type, passed as a careless caller would (mypy would refuse it)."""
    return value


WRONG_TYPE: list[tuple[str, Build]] = [
    ("max_concurrency", lambda: Operator(max_concurrency=True)),
    ("max_concurrency", lambda: Operator(max_concurrency=loose(2.0))),
    ("max_concurrency", lambda: Operator(max_concurrency=loose(math.nan))),
    ("max_concurrency", lambda: Operator(max_concurrency=loose("2"))),
    ("exec_interval", lambda: Operator(exec_interval=loose("5"))),
    ("exec_interval", lambda: Operator(exec_interval=True)),
    ("stop_on_error", lambda: Operator(stop_on_error=loose("no"))),
    ("iter_num", lambda: TaskRing(iter_num=True)),
    ("iter_num", lambda: TaskRing(iter_num=loose(3.0))),
    ("iter_num", lambda: Operator().repeat_single_task(Sleep(), iter_num=True)),
    ("iter_interval", lambda: TaskRing(iter_interval=loose("1"))),
    ("iter_interval", lambda: Operator().repeat_single_task(Sleep(), 2, loose("1"))),
    ("live", lambda: TaskQueue(live=loose(1))),
    ("live", lambda: TaskStack(live=loose("yes"))),
    ("timeout", lambda: Sleep(timeout=loose("5"))),
    ("timeout", lambda: Sleep(timeout=True)),
    ("timeout", lambda: FunctionTask(nothing, timeout=loose("5"))),
    ("timeout", lambda: GatherTask(Sleep(), timeout=loose("5"))),
    ("timeout", lambda: catalog.SpotPing(timeout=loose("5"))),
    ("return_exceptions", lambda: GatherTask(Sleep(), return_exceptions=loose("no"))),
    ("continue_on_error", lambda: SerialTask(Sleep(), continue_on_error=loose(1))),
    (
        "reduceOnly",
        lambda: catalog.UsdMNewOrder(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity=1, reduceOnly=loose(1)
        ),
    ),
    (
        "closePosition",
        lambda: catalog.CoinMNewOrder(
            symbol="BTCUSD_PERP",
            side="SELL",
            type="STOP_MARKET",
            stopPrice=1,
            closePosition=loose("yes"),
        ),
    ),
    (
        "priceProtect",
        lambda: catalog.UsdMNewOrder(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity=1, priceProtect=loose(0)
        ),
    ),
    ("limit", lambda: catalog.SpotFetchKline(symbol="BTCUSDT", interval="1m", limit=True)),
    ("limit", lambda: catalog.UsdMFetchTrades(symbol="BTCUSDT", limit=loose(5.0))),
    (
        "startTime",
        lambda: catalog.CoinMFetchKline(symbol="BTCUSD_PERP", interval="1m", startTime=True),
    ),
    ("endTime", lambda: catalog.SpotFetchAggTrades(symbol="BTCUSDT", endTime=loose(1.7e12))),
]

BAD_VALUE: list[tuple[str, Build]] = [
    ("max_concurrency", lambda: Operator(max_concurrency=0)),
    ("exec_interval", lambda: Operator(exec_interval=math.nan)),
    ("exec_interval", lambda: Operator(exec_interval=math.inf)),
    ("exec_interval", lambda: Operator(exec_interval=-1)),
    ("iter_num", lambda: TaskRing(iter_num=-1)),
    ("iter_interval", lambda: TaskRing(iter_interval=math.nan)),
    ("iter_interval", lambda: TaskRing(iter_interval=-0.5)),
    ("timeout", lambda: Sleep(timeout=math.nan)),
    ("timeout", lambda: Sleep(timeout=math.inf)),
    ("timeout", lambda: Sleep(timeout=0)),
    ("timeout", lambda: FunctionTask(nothing, timeout=-1)),
    (
        "quantity",
        lambda: catalog.SpotNewOrder(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity=math.nan
        ),
    ),
]


@pytest.mark.parametrize(("name", "build"), WRONG_TYPE)
def test_a_wrong_type_is_a_type_error_naming_the_parameter(name: str, build: Build) -> None:
    with pytest.raises(TypeError, match=name):
        build()


@pytest.mark.parametrize(("name", "build"), BAD_VALUE)
def test_a_bad_value_is_a_value_error_naming_the_parameter(name: str, build: Build) -> None:
    with pytest.raises(ValueError, match=name):
        build()


def test_good_values_still_pass_and_seconds_are_stored_as_floats() -> None:
    op = Operator(max_concurrency=4, exec_interval=1, stop_on_error=True)
    assert op.exec_interval == 1.0
    assert isinstance(op.exec_interval, float)
    ring = TaskRing(iter_num=0, iter_interval=2)
    assert (ring.iter_num, ring.iter_interval) == (0, 2.0)
    assert Sleep(timeout=0.5).timeout == 0.5
    assert TaskRing().iter_num is None
    assert Operator(exec_interval=0).exec_interval == 0.0


def test_setting_an_operator_option_later_is_checked_too() -> None:
    op = Operator()
    with pytest.raises(TypeError, match="max_concurrency"):
        op.max_concurrency = True
    with pytest.raises(TypeError, match="exec_interval"):
        op.exec_interval = loose("1")


def test_binance_words_for_a_flag_are_read_as_the_flag() -> None:
    """ "false" used to count as a true closePosition, so the order needed no quantity."""
    with pytest.raises(ValueError, match="quantity"):
        catalog.UsdMNewOrder(
            symbol="BTCUSDT",
            side="SELL",
            type="STOP_MARKET",
            stopPrice=1,
            closePosition=loose("false"),
        )
    order = catalog.UsdMNewOrder(
        symbol="BTCUSDT", side="SELL", type="STOP_MARKET", stopPrice=1, closePosition=loose("TRUE")
    )
    assert order.closePosition is True


# -- one task object, one run at a time -----------------------------------------------------


def test_a_composite_refuses_one_task_object_twice() -> None:
    a, b = Sleep(), Sleep()
    for build in (
        lambda: GatherTask(a, a),
        lambda: SerialTask(a, b, a),
        lambda: GatherTask(a, SerialTask(b, a)),
        lambda: GatherTask(a) + a,
        lambda: GatherTask(a).add_tasks(b, b),
    ):
        with pytest.raises(ValueError, match="twice"):
            build()
    tree = GatherTask(a, SerialTask(b))
    with pytest.raises(ValueError, match="twice"):
        tree += b
    assert len(tree) == 2  # refused before anything changed
    with pytest.raises(ValueError, match="contains itself"):
        tree.add_tasks(tree)
    GatherTask(Sleep(), Sleep())  # distinct (even equal) objects are fine


async def test_a_task_started_while_running_raises_and_leaves_the_run_alone(
    autojump_clock: Any,
) -> None:
    task = Sleep(2)
    errors: list[BaseException] = []

    async def second_start() -> None:
        await trio.sleep(1)
        try:
            await task.execute(None)
        except RuntimeError as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(task.execute, None)
        nursery.start_soon(second_start)
    assert "already running" in str(errors[0])
    assert task.state is TaskState.DONE
    assert task.result == 1
    assert task.runs == 1


async def test_two_operators_cannot_run_one_task_at_once(autojump_clock: Any) -> None:
    shared = Sleep(3)
    first = Operator().run_single_task(shared)
    second = Operator().add_queue(TaskQueue().add_tasks(Sleep(1), shared))

    async def run_second() -> None:
        with pytest.raises(RuntimeError, match="already running"):
            await second.run()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first.run)
        nursery.start_soon(run_second)
    assert shared.state is TaskState.DONE
    assert shared.runs == 1


async def test_two_live_queues_run_together_cannot_share_a_running_task(
    autojump_clock: Any,
) -> None:
    shared = Sleep(3)
    left, right = TaskQueue(live=True), TaskQueue(live=True)
    failures: list[BaseException] = []

    async def run(op: Operator) -> None:
        try:
            await op.run()
        except RuntimeError as exc:
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, Operator().add_queue(left))
        nursery.start_soon(run, Operator().add_queue(right))
        left.add_tasks(shared)
        await trio.sleep(1)
        right.add_tasks(shared)
        await trio.sleep(0.5)
        left.close()
        right.close()
    assert len(failures) == 1
    assert shared.runs == 1
    assert shared.state is TaskState.DONE


async def test_a_duplicate_slipped_into_a_tree_later_fails_the_gather_not_the_task(
    autojump_clock: Any,
) -> None:
    a = Sleep(2)
    inner = SerialTask(Sleep(1))
    tree = GatherTask(a, inner)
    inner.add_tasks(a)  # the inner serial cannot know its parent already holds `a`
    await tree.execute(None, raise_errors=False)
    assert tree.state is TaskState.FAILED
    assert isinstance(tree.error, RuntimeError)
    assert "already running" in str(tree.error)
    assert a.state is TaskState.CANCELLED  # cancelled by its failing sibling, never overwritten


async def test_the_same_task_in_sequence_still_runs_again(autojump_clock: Any) -> None:
    """Only concurrent starts are refused: a ring or a queue may run one object many times."""
    task = Sleep(1)
    await Operator(max_concurrency=4).repeat_single_task(task, iter_num=3).run()
    assert task.runs == 3
    await task.execute(None)
    assert task.runs == 4
