"""A third-party plugin as a user would ship it: one method, one dataset, one backbone and one
executor, registered only through entry points (``tests/test_plugins.py`` writes the package
metadata that declares them). Nothing here touches a file under ``fedbench/``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from fixtures import TinyBackbone, tiny_bert, tiny_data

from fedbench.backbones.registry import BackboneSpec
from fedbench.data.registry import DatasetSpec
from fedbench.federation.executors import Executor, ExecutorSpec
from fedbench.methods.fedavg import FedAvgAggregator
from fedbench.methods.map_prompts import MAPOptions, MissingAwarePromptModule
from fedbench.methods.registry import MethodSpec


# ----- a method: MAP prompts with an L2 penalty ------------------------------------------------
@dataclass
class L2Options(MAPOptions):
    strength: float = 0.1


class L2Client(MissingAwarePromptModule):
    def extra_loss(self, batch, logits):
        return self.options.strength * self.prompts.pow(2).mean()


METHOD = MethodSpec(
    name="demo-l2",
    client=L2Client,
    aggregator=FedAvgAggregator,
    options=L2Options,
    description="plugin: MAP prompts with an L2 penalty",
)


# ----- a dataset with its own options -------------------------------------------------------------
@dataclass
class DemoOptions:
    n: int = 120


def build_demo(options: DemoOptions, split_seed: int):
    data = tiny_data(n=options.n, seed=split_seed)
    data.name = "demo"
    return data


DATASET = DatasetSpec("demo", build_demo, DemoOptions, "plugin: tiny label-carrying texts and patches")


# ----- a backbone -----------------------------------------------------------------------------------
def build_backbone(options):
    return TinyBackbone(tiny_bert(seed=1))


BACKBONE = BackboneSpec("demo-bert", build_backbone, None, "plugin: a random 2-layer BERT")


# ----- an executor: runs a round's clients in reverse order ------------------------------------------
class ReversedExecutor(Executor):
    def __init__(self, runner):
        self.runner = runner
        self.calls = 0

    def run(self, tasks, on_result=None):
        results = {}
        for i in reversed(range(len(tasks))):
            results[i] = self.runner.run(tasks[i])
            if on_result is not None:
                on_result(results[i])
        self.calls += 1
        return [results[i] for i in range(len(tasks))]


EXECUTOR = ExecutorSpec(
    "reversed",
    lambda options, cfg, runner: ReversedExecutor(runner),
    None,
    "plugin: clients in reverse order",
)

__all__ = ["BACKBONE", "DATASET", "EXECUTOR", "METHOD", "np"]
