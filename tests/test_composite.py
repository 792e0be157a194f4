"""GatherTask and SerialTask: timing, nesting, failures, operators, trees, client inheritance."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio

from aiocea_trio.pipeline import GatherTask, SerialTask, Task, TaskState, TaskTimeoutError

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
        raise ValueError(f"boom after {self.delay:g}")

    def __str__(self) -> str:
        return "boom"


@attrs.define(eq=False)
class WhichClient(Task):
    async def run(self, client: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return client


@attrs.define(eq=False)
class TaskName(Task):
    label: str

    async def run(self, client: Any) -> str:
        await trio.lowlevel.checkpoint()
        return trio.lowlevel.current_task().name

    def __str__(self) -> str:
        return self.label


@attrs.define  # value equality: two instances with equal fields compare equal
class Same(Task):
    async def run(self, client: Any) -> int:
        await trio.lowlevel.checkpoint()
        return 1


async def test_gather_of_n_sleeps_takes_one_sleep(autojump_clock: Any) -> None:
    gather = GatherTask(*(Sleep(2, i) for i in range(5)))
    assert await gather.execute(CLIENT, raise_errors=False) == [0, 1, 2, 3, 4]
    assert trio.current_time() == 2
    assert gather.state is TaskState.DONE
    assert gather.result == [0, 1, 2, 3, 4]


async def test_gather_keeps_argument_order_not_completion_order(autojump_clock: Any) -> None:
    gather = GatherTask(Sleep(3, "slow"), Sleep(1, "fast"))
    await gather.execute(CLIENT, raise_errors=False)
    assert gather.result == ["slow", "fast"]


async def test_serial_of_n_sleeps_takes_n_sleeps(autojump_clock: Any) -> None:
    serial = SerialTask(*(Sleep(2, i) for i in range(5)))
    assert await serial.execute(CLIENT, raise_errors=False) == [0, 1, 2, 3, 4]
    assert trio.current_time() == 10
    assert [t.finished_at for t in serial] == [2, 4, 6, 8, 10]


async def test_nested_results_and_timing(autojump_clock: Any) -> None:
    gather = GatherTask(
        SerialTask(Sleep(1, "btc1"), Sleep(1, "btc2")),
        SerialTask(Sleep(1, "eth1"), Sleep(2, "eth2")),
    )
    await gather.execute(CLIENT, raise_errors=False)
    assert trio.current_time() == 3
    assert gather.result[0][1] == "btc2"
    assert gather.result[1][0] == "eth1"
    assert gather.result == [["btc1", "btc2"], ["eth1", "eth2"]]


async def test_gather_failure_cancels_siblings(autojump_clock: Any) -> None:
    boom, slow1, slow2, quick = Boom(1), Sleep(5), Sleep(5), Sleep(0.5, "q")
    gather = GatherTask(slow1, boom, slow2, quick)
    assert await gather.execute(CLIENT, raise_errors=False) is None
    assert trio.current_time() == 1
    assert gather.state is TaskState.FAILED
    assert gather.error is boom.error  # the child's exception itself, not a group
    assert boom.state is TaskState.FAILED
    assert slow1.state is slow2.state is TaskState.CANCELLED
    assert quick.state is TaskState.DONE


async def test_gather_raise_errors_gives_the_leaf_exception() -> None:
    with pytest.raises(ValueError, match="boom after 0"):
        await GatherTask(Boom(), Sleep(5)).execute(CLIENT, raise_errors=True)


async def test_gather_return_exceptions_runs_all_to_the_end(autojump_clock: Any) -> None:
    boom, slow = Boom(1), Sleep(5, "s")
    gather = GatherTask(boom, slow, Boom(2), return_exceptions=True)
    await gather.execute(CLIENT, raise_errors=False)
    assert trio.current_time() == 5
    assert gather.state is TaskState.DONE
    assert gather.error is None
    assert gather.result[0] is boom.error
    assert gather.result[1] == "s"
    assert isinstance(gather.result[2], ValueError)
    assert slow.state is TaskState.DONE


async def test_failure_inside_nesting_fails_the_whole_tree(autojump_clock: Any) -> None:
    boom, other = Boom(1), Sleep(3)
    left, right = SerialTask(Sleep(1), boom), SerialTask(other)
    gather = GatherTask(left, right)
    await gather.execute(CLIENT, raise_errors=False)
    assert trio.current_time() == 2
    assert left.error is boom.error
    assert gather.error is boom.error
    assert right.state is other.state is TaskState.CANCELLED


async def test_serial_stops_at_first_failure(autojump_clock: Any) -> None:
    first, boom, last = Sleep(1, "a"), Boom(1), Sleep(1, "c")
    serial = SerialTask(first, boom, last)
    await serial.execute(CLIENT, raise_errors=False)
    assert serial.state is TaskState.FAILED
    assert serial.error is boom.error
    assert last.state is TaskState.PENDING
    assert trio.current_time() == 2


async def test_serial_continue_on_error(autojump_clock: Any) -> None:
    boom = Boom(1)
    serial = SerialTask(Sleep(1, "a"), boom, Sleep(1, "c"), continue_on_error=True)
    await serial.execute(CLIENT, raise_errors=False)
    assert serial.state is TaskState.DONE
    assert serial.result == ["a", boom.error, "c"]
    assert trio.current_time() == 3


async def test_outer_cancel_marks_the_tree_cancelled(autojump_clock: Any) -> None:
    done, running, waiting = Sleep(1), Sleep(5), Sleep(1)
    gather = GatherTask(done, SerialTask(running, waiting))
    with trio.move_on_after(2):
        await gather.execute(CLIENT, raise_errors=False)
    assert gather.state is TaskState.CANCELLED
    assert done.state is TaskState.DONE
    assert running.state is TaskState.CANCELLED
    assert waiting.state is TaskState.PENDING


async def test_composite_timeout(autojump_clock: Any) -> None:
    slow, fast = Sleep(5), Sleep(1)
    gather = GatherTask(slow, fast, timeout=2)
    await gather.execute(CLIENT, raise_errors=False)
    assert trio.current_time() == 2
    assert isinstance(gather.error, TaskTimeoutError)
    assert str(gather.error) == "task Gather (2) timed out after 2 s"
    assert fast.state is TaskState.DONE
    assert slow.state is TaskState.CANCELLED


async def test_children_are_named_in_the_nursery() -> None:
    gather = GatherTask(TaskName("first"), TaskName("second"))
    assert await gather.execute(CLIENT, raise_errors=False) == ["first", "second"]


async def test_client_override_reaches_children_without_their_own() -> None:
    own = WhichClient(client="own")
    tree = GatherTask(WhichClient(), own, SerialTask(WhichClient()), client="composite")
    assert await tree.execute("operator") == ["composite", "own", ["composite"]]
    plain = GatherTask(WhichClient(), own, SerialTask(WhichClient()))
    assert await plain.execute("operator") == ["operator", "own", ["operator"]]


def test_add_and_sub_return_new_composites_with_the_same_options() -> None:
    a, b, c = Sleep(1), Sleep(2), Sleep(3)
    gather = GatherTask(a, b, return_exceptions=True, client="k", timeout=9)
    bigger = gather + c
    assert list(bigger) == [a, b, c]
    assert list(gather) == [a, b]
    assert (bigger.return_exceptions, bigger.client, bigger.timeout) == (True, "k", 9)
    smaller = bigger - a
    assert isinstance(smaller, GatherTask)
    assert list(smaller) == [b, c]
    serial = SerialTask(a, continue_on_error=True) + b
    assert isinstance(serial, SerialTask)
    assert serial.continue_on_error


def test_in_place_operators_and_add_tasks() -> None:
    a, b, c, d = Sleep(1), Sleep(2), Sleep(3), Sleep(4)
    serial = SerialTask(a)
    original = serial
    serial += b
    assert serial is original
    assert serial.add_tasks(c, d) is serial
    assert len(serial) == 4
    serial -= c
    assert list(serial) == [a, b, d]
    assert serial[1] is b


def test_removal_is_by_identity_not_equality() -> None:
    first, second = Same(), Same()
    assert first == second  # value equality from @attrs.define
    gather = GatherTask(first, second)
    gather -= second
    assert gather.tasks[0] is first
    assert len(gather) == 1
    with pytest.raises(ValueError, match="not in"):
        gather -= Same()


def test_children_must_be_tasks() -> None:
    with pytest.raises(TypeError, match="expected a Task"):
        GatherTask([Sleep(1)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a Task"):
        SerialTask() + "nope"  # type: ignore[operator]


TREE = """\
Gather (2):
    Serial (2):
        sleep 1 s
        sleep 2 s
    Serial (3):
        sleep 3 s
        Gather (0):
        boom"""


def test_tree_text(capsys: pytest.CaptureFixture[str]) -> None:
    tree = GatherTask(
        SerialTask(Sleep(1), Sleep(2)),
        SerialTask(Sleep(3), GatherTask(), Boom()),
    )
    assert tree.format_tree() == TREE
    assert str(tree) == "Gather (2)"
    tree.show_tasks()
    assert capsys.readouterr().out == TREE + "\n"
