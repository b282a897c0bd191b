"""FedMVP's client: the small multimodal network trained on frozen, completed features.

A batch (rows of the bundle, with missing codes) becomes the network's inputs by gathering the
prepared feature table (:mod:`.prepare`): a missing text or image is the completed one. The
loss is the base contract's ``task_loss`` (CE of the joint branch) plus ``extra_loss``
(L_MCM + L_RAM). Under ``completer=none`` incomplete samples are dropped from training (the
paper's baselines), and the client reports how many it trained on, which FedAvg weighting uses.
Every fit gets a fresh AdamW with cosine annealing over its local epochs (:mod:`.optim`).
"""

from __future__ import annotations

from typing import Any

import torch

from fedbench.batch import CODE, COMPLETE, LABEL
from fedbench.errors import ConfigError
from fedbench.methods.base import ClientModule, State, TrainSettings
from fedbench.methods.fedmvp.config import FedMVPOptions
from fedbench.methods.fedmvp.features import feature_dims
from fedbench.methods.fedmvp.network import FedMVPNetwork, FedMVPOutput
from fedbench.methods.fedmvp.optim import configure_optimizer
from fedbench.methods.fedmvp.prepare import Prepared, prepared_for

__all__ = ["FedMVPModule", "PREFIX", "network_for"]

PREFIX = "net."  # the network's tensors are the module's "net.*" parameters


def network_for(backbone, num_classes: int, options: FedMVPOptions) -> FedMVPNetwork:
    """A FedMVPNetwork sized for the backbone's per-modality features."""
    d = feature_dims(backbone)
    return FedMVPNetwork(d["text"], d["image"], num_classes, options, d["text_tokens"], d["image_tokens"])


class FedMVPModule(ClientModule):
    """FedMVPNetwork over the frozen backbone's per-modality features; all tensors are shared."""

    batch_independent = True  # attention and normalisation run within a sample

    def __init__(self, backbone, num_classes: int, train: TrainSettings, options: FedMVPOptions):
        super().__init__(backbone, num_classes, train, options)
        self.net = network_for(backbone, num_classes, options)
        self._out: FedMVPOutput | None = None
        self._n_trained = 0
        self._parts: dict[str, list[float]] = {}

    # ----- features ------------------------------------------------------------------------------
    def prepared(self) -> Prepared:
        found = prepared_for(self.backbone, self.options)
        if found is None:
            raise ConfigError(
                "method.name: fedmvp's features and completion are prepared by its aggregator before "
                "federation; run it through fedbench's federation (or call fedmvp.prepare.prepare first)"
            )
        return found

    def network_inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        rows = self.backbone.batch_rows(batch)
        return self.prepared().inputs(rows, batch[CODE], device=batch[LABEL].device)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self._out = self.net(**self.network_inputs(batch))
        return self._out.logits

    # ----- training ------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        if self.options.completer == "none":  # the paper's baselines: drop incomplete pairs
            keep = batch[CODE] == COMPLETE
            if not bool(keep.any()):
                return None  # Lightning skips the step
            batch = {k: v[keep] for k, v in batch.items()}
        if self.current_epoch == 0:
            self._n_trained += len(batch[LABEL])
        return super().training_step(batch, batch_idx)

    def extra_loss(self, batch: dict[str, torch.Tensor], logits: torch.Tensor) -> torch.Tensor | None:
        extra, parts = self.net.auxiliary_loss(self._out, batch[LABEL])
        for name, value in parts.items():
            self._parts.setdefault(name, []).append(float(value))
        return extra

    def setup(self, stage: str) -> None:
        """FedMVP's own local epochs (options.local_epochs), set before the optimiser is built."""
        if self.options.local_epochs is not None and getattr(self, "_trainer", None) is not None:
            self.trainer.fit_loop.max_epochs = self.options.local_epochs

    def configure_optimizers(self):
        return configure_optimizer(self.net.trained_parameters(), self.options, int(self.trainer.max_epochs))

    # ----- federation hooks ----------------------------------------------------------------------
    def on_round_start(
        self, global_state: State, round_index: int, payload: dict[str, Any] | None = None
    ) -> None:
        self._n_trained, self._parts = 0, {}
        self.prepared()  # fail before training, not inside the first batch

    def round_metadata(self) -> dict[str, Any]:
        """Samples trained on (fewer than the client holds under ``none``) and the mean of each
        auxiliary loss over the fit's batches."""
        means = {f"mean_{k}": sum(v) / len(v) for k, v in self._parts.items() if v}
        return {"n_trained": self._n_trained, **means}
