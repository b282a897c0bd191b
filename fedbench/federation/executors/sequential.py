"""The default executor: every client task in this process, one after another."""

from __future__ import annotations

from fedbench.federation.executors import (
    EXECUTORS,
    ClientResult,
    ClientTask,
    Executor,
    ExecutorSpec,
    OnResult,
)


class SequentialExecutor(Executor):
    def __init__(self, runner):
        self.runner = runner

    def run(self, tasks: list[ClientTask], on_result: OnResult | None = None) -> list[ClientResult]:
        results = []
        for task in tasks:
            results.append(self.runner.run(task))
            if on_result is not None:
                on_result(results[-1])
        return results


EXECUTORS.register(
    ExecutorSpec(
        "sequential",
        lambda options, cfg, runner: SequentialExecutor(runner),
        None,
        "clients one after another in this process",
    )
)
