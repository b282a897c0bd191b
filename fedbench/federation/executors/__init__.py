"""Executors run a round's client tasks: in process one after another (``sequential``), or
elsewhere (plugins, Ray). Every executor returns the results in task order, and a task's result
does not depend on where or when it ran, so executors never change a run's numbers.

Plugins register more through the ``fedbench.executors`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedbench.federation.client import ClientResult, ClientRunner, ClientTask
from fedbench.registry import Registry

OnResult = Callable[[ClientResult], None]


class Executor:
    """Runs client tasks. ``run`` returns one result per task, in task order, calling
    ``on_result`` as each finishes (for progress display)."""

    def run(self, tasks: list[ClientTask], on_result: OnResult | None = None) -> list[ClientResult]:
        raise NotImplementedError

    def close(self) -> None:
        """Release workers; called once when the run ends (also on errors)."""


@dataclass(frozen=True)
class ExecutorSpec:
    name: str
    build: Callable[[Any, Any, ClientRunner], Executor]  # (options, experiment config, in-process runner)
    options: type | None = None
    description: str = ""


EXECUTORS: Registry[ExecutorSpec] = Registry(
    "executor", "fedbench.executors", "fedbench.federation.executors.builtin", "executor.name"
)
register_executor = EXECUTORS.register

__all__ = [
    "EXECUTORS",
    "ClientResult",
    "ClientTask",
    "Executor",
    "ExecutorSpec",
    "OnResult",
    "register_executor",
]
