"""One client's local training as a pure function of its task.

A :class:`ClientTask` holds everything a fit depends on (global shared state, the client's own
state, the aggregator's payload, its data rows and missing codes, its seed and learning rate). A
:class:`ClientRunner` owns one process's module and data (and through the module the frozen
backbone); ``run(task)`` loads the task's tensors into the module, runs one lean ``Trainer.fit``
and reads the result back, so the same task gives the same result in any process and any order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fedbench.config import TrainConfig
from fedbench.data.bundle import DataBundle
from fedbench.data.loader import make_loader
from fedbench.federation.trainer import fit, make_trainer
from fedbench.methods.base import ClientModule, ClientUpdate, State

ClientResult = ClientUpdate  # the executor's name for what a fit returns


@dataclass
class ClientTask:
    round_index: int
    client_id: int
    global_state: State
    personal: State
    index: np.ndarray  # bundle rows of this client
    codes: np.ndarray  # missing code per row, aligned with ``index``
    seed: int
    lr: float
    payload: dict[str, Any] = field(default_factory=dict)
    work: float = (
        1.0  # fraction of the local steps this client completes (simulated stragglers, partial work)
    )


class ClientRunner:
    """Runs client tasks on one module instance (tensors are swapped in and out per task)."""

    def __init__(self, module: ClientModule, bundle: DataBundle, train: TrainConfig, local_epochs: int):
        self.module, self.bundle, self.train, self.local_epochs = module, bundle, train, local_epochs
        # how another process (a Ray actor) makes its own runner from the run's config; set by
        # fedbench.federation.parts, so executors need not know how a run is built
        self.rebuild: Callable[[Any], ClientRunner] | None = None

    def run(self, task: ClientTask) -> ClientResult:
        module = self.module
        module.load_trainable_state({**task.global_state, **task.personal})
        module.lr = task.lr
        module.epoch_losses = []
        module.on_round_start(task.global_state, task.round_index, task.payload)
        index, codes = task.index, task.codes
        keep = module.train_mask(codes)  # a method may train on part of its client's rows
        if keep is not None:
            index, codes = index[keep], codes[keep]
            if not len(index):  # nothing to train on: the start state, with no weight
                return self._result(task, 0, loss=0.0)
        torch.manual_seed(task.seed)
        on_gpu = next(module.parameters()).device.type == "cuda"
        loader = make_loader(
            self.bundle,
            index,
            codes,
            batch_size=self.train.batch_size,
            shuffle=True,
            seed=task.seed,
            pin=on_gpu,
        )
        steps = math.ceil(
            self.local_epochs * len(loader) / self.train.accumulate
        )  # optimiser steps of a full fit
        max_steps = -1 if task.work >= 1.0 else max(1, math.ceil(task.work * steps))
        if self.train.max_steps is not None and (max_steps < 0 or max_steps > self.train.max_steps):
            max_steps = self.train.max_steps
        fit(make_trainer(self.train, self.local_epochs, max_steps), module, loader)
        return self._result(
            task, len(index), module.epoch_losses[-1] if module.epoch_losses else float("nan")
        )

    def _result(self, task: ClientTask, n_samples: int, loss: float) -> ClientResult:
        shared, personal = self.module.split_state(self.module.trainable_state())
        return ClientResult(
            client_id=task.client_id,
            state={k: v.cpu() for k, v in shared.items()},
            n_samples=n_samples,
            meta=self.module.round_metadata(),
            personal={k: v.cpu() for k, v in personal.items()},
            loss=loss,
        )
