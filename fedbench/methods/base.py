"""What a method is: a ClientModule (local training) and an Aggregator (the server rule).

A :class:`ClientModule` is a LightningModule that holds a *reference* to the shared frozen
backbone (never a copy, never a registered sub-module) and only its own trainable tensors. The
federation loads a client's tensors into one module instance, runs ``Trainer.fit`` and reads the
tensors back, so a thousand clients cost a thousand small dicts, not a thousand models.

The method says which trainable tensors are *personal* (kept on the client; e.g. FedPrime's query
projections) through :meth:`ClientModule.personal_names`; the rest are *shared* (sent to the
server). The server side is an :class:`Aggregator`, shaped like Flower's Strategy: it configures
each client's fit (a per-client payload such as SCAFFOLD's control variates), aggregates the
clients' results into the next global shared state, may keep server state (checkpointed with the
round) and may use a server context (the backbone and a server-held split).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from fedbench.backbones.base import Backbone

State = dict[str, torch.Tensor]


@dataclass
class TrainSettings:
    lr: float = 5e-3
    weight_decay: float = 0.02


@dataclass
class ClientUpdate:
    """What one client's fit returns to the server (and keeps for itself)."""

    client_id: int
    state: State  # shared tensors after local training
    n_samples: int
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. used prompt indices, control-variate deltas
    personal: State = field(default_factory=dict)  # what the client keeps; never sent
    loss: float = float("nan")  # mean training loss of the last local epoch


@dataclass
class ServerContext:
    """What a server may use beyond the clients' updates: the frozen backbone, the featurised data
    and the rows of a server-held split that no client holds (``public``; None when the dataset
    has none), plus the device and the run's seed."""

    backbone: Backbone
    bundle: Any  # fedbench.data.bundle.DataBundle
    public: Any
    device: torch.device
    seed: int
    n_clients: int = 0  # clients in the whole federation (not this round's sample); SCAFFOLD's N


class ClientModule(L.LightningModule):
    """Base class; subclasses create parameters in ``__init__`` and implement ``forward``."""

    # True when a prediction depends only on its own sample (not on the rest of the batch), which
    # lets evaluation reuse predictions across test conditions.
    batch_independent: bool = True

    def __init__(self, backbone: Backbone, num_classes: int, train: TrainSettings, options: Any):
        super().__init__()
        object.__setattr__(self, "backbone", backbone)  # shared and frozen: not a sub-module
        self.num_classes = num_classes
        self.train_settings = train
        self.options = options
        self.lr = train.lr
        self.epoch_losses: list[float] = []

    # ----- state exchanged with the federation -------------------------------------------------
    def trainable_state(self) -> State:
        return {n: p.detach().clone() for n, p in self.named_parameters() if p.requires_grad}

    def load_trainable_state(self, state: State) -> None:
        params = dict(self.named_parameters())
        with torch.no_grad():
            for name, value in state.items():
                if name not in params:
                    raise KeyError(f"unknown trainable tensor {name!r}")
                if params[name].shape != value.shape:  # e.g. a prompt pool that changed size
                    params[name].data = value.detach().clone().to(params[name].device)
                else:
                    params[name].copy_(value)

    def personal_names(self) -> set[str]:
        """Names of the trainable tensors each client keeps (default: none, all are shared)."""
        return set()

    def split_state(self, state: State) -> tuple[State, State]:
        personal_names = self.personal_names()
        shared = {k: v for k, v in state.items() if k not in personal_names}
        personal = {k: v for k, v in state.items() if k in personal_names}
        return shared, personal

    # ----- hooks a method may override ----------------------------------------------------------
    def on_round_start(
        self, global_state: State, round_index: int, payload: dict[str, Any] | None = None
    ) -> None:
        """Called after the client's state is loaded, before ``Trainer.fit``; ``payload`` is what
        the aggregator's ``configure_fit`` sent this client."""

    def round_metadata(self) -> dict[str, Any]:
        """Extra information sent with the update (e.g. which prompts were used)."""
        return {}

    def extra_loss(self, batch: dict[str, torch.Tensor], logits: torch.Tensor) -> torch.Tensor | None:
        return None

    def train_mask(self, codes: Any) -> Any:
        """Which of the client's rows (by missing code, a numpy array) a fit trains on: a boolean
        array, or None for all of them (default). The client's sample count (FedAvg's weight) is
        then the rows kept."""
        return None

    # ----- Lightning ----------------------------------------------------------------------------
    def task_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy; binary cross-entropy per label for multi-label data (labels [B, C])."""
        if labels.ndim == 2:
            return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
        return F.cross_entropy(logits.float(), labels)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(batch)
        loss = self.task_loss(logits, batch["label"])
        extra = self.extra_loss(batch, logits)
        if extra is not None:
            loss = loss + extra
        self._loss_sum += float(loss.detach())
        self._loss_n += 1
        return loss

    def on_train_epoch_start(self) -> None:
        self._loss_sum, self._loss_n = 0.0, 0

    def on_train_epoch_end(self) -> None:
        self.epoch_losses.append(self._loss_sum / max(self._loss_n, 1))

    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
        groups = [
            {"params": decay, "weight_decay": self.train_settings.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=self.lr)


class Aggregator:
    """Server rule. Subclasses implement ``aggregate``; the other hooks are optional.

    ``context`` is a :class:`ServerContext`, built only for methods whose spec asks for it.
    """

    def __init__(self, options: Any = None, context: ServerContext | None = None):
        self.options = options
        self.context = context

    def configure_fit(
        self, round_index: int, clients: list[int], global_state: State
    ) -> dict[int, dict[str, Any]]:
        """A per-client payload for this round's fits (default: none)."""
        return {}

    def aggregate(
        self, global_state: State, updates: list[ClientUpdate], round_index: int, seed: int
    ) -> State:
        """The next global shared state from this round's client results."""
        raise NotImplementedError

    def server_state(self) -> State:
        """Tensors the server keeps between rounds (checkpointed with the round)."""
        return {}

    def load_server_state(self, state: State) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} keeps no server state but was given {sorted(state)}")

    def metadata(self) -> dict[str, Any]:
        """Per-round facts worth recording (e.g. the size of a prompt pool)."""
        return {}
