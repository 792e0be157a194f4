"""The exchange-agnostic core: tasks, composites, queues and the operator.

Nothing here knows about Binance: a task receives whatever client object the operator
(or the task itself) holds.
"""

from __future__ import annotations

from .composite import CompositeTask as CompositeTask
from .composite import GatherTask as GatherTask
from .composite import SerialTask as SerialTask
from .operator import CompletedChannel as CompletedChannel
from .operator import Operator as Operator
from .queues import TaskQueue as TaskQueue
from .queues import TaskRing as TaskRing
from .queues import TaskSource as TaskSource
from .queues import TaskStack as TaskStack
from .task import FunctionTask as FunctionTask
from .task import Task as Task
from .task import TaskFailedError as TaskFailedError
from .task import TaskSnapshot as TaskSnapshot
from .task import TaskState as TaskState
from .task import TaskTimeoutError as TaskTimeoutError
from .task import task_function as task_function

__all__ = [
    "CompletedChannel",
    "CompositeTask",
    "FunctionTask",
    "GatherTask",
    "Operator",
    "SerialTask",
    "Task",
    "TaskFailedError",
    "TaskQueue",
    "TaskRing",
    "TaskSnapshot",
    "TaskSource",
    "TaskStack",
    "TaskState",
    "TaskTimeoutError",
    "task_function",
]
