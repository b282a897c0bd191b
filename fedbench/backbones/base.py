"""The backbone contract: a frozen encoder that featurises a dataset and has prompt insertion points.

A backbone first makes a dataset model-ready (``featurize``: tokenise texts, encode images, cache
what is frozen), then turns a batch into frozen input tokens (``embed``) and runs its transformer
layers (``run_layers``), calling a *prompter* before every layer so that a method can prepend or
replace tokens there. ``readout`` says which hidden state a task head reads, so methods never
assume where the [CLS] token sits. It owns how a missing modality is fed (DESIGN.md: the modality
mask travels with the batch, the backbone chooses the placeholder). One backbone instance is shared
by every client of a process; methods hold a reference to it and never copy or train it.

Implementations: the embedded MiniLM + EfficientNet-Lite0 default (``minilm_effnet``), registered
as ``embedded``; ViLT, CLIP and ViT wrappers implement the same members.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import torch
from torch import nn

from fedbench.data.base import ModalData
from fedbench.data.bundle import DataBundle

# prompter(layer_index, hidden [B,S,H], keep_mask [B,S] bool) -> (hidden, keep_mask)
Prompter = Callable[[int, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def frozen_fingerprint(backbone: nn.Module) -> str:
    """A content hash of every weight and buffer of a frozen backbone (memoised on it): caches of
    its frozen outputs are keyed by it, so other weights never read stale features."""
    found = backbone.__dict__.get("_frozen_fingerprint")
    if found is None:
        from fedbench.cache.digest import tensor_digest

        found = tensor_digest(*backbone.state_dict().values())
        backbone.__dict__["_frozen_fingerprint"] = found
    return found


class Backbone(nn.Module, ABC):
    """A frozen multimodal encoder; see the module docstring for the contract.

    ``bundle`` is the bundle this backbone featurised for a run (set by
    :func:`fedbench.backbones.registry.featurized`): frozen per-row caches compute their rows from it.
    """

    hidden_size: int
    num_layers: int
    bundle: DataBundle | None = None
    source_data: ModalData | None = (
        None  # the dataset ``bundle`` came from (raw images for FedMVP's pixel branch)
    )
    # width of a frozen classifier a method's head may read (torchvision's ImageNet head); None: none
    head_width: int | None = None

    @abstractmethod
    def featurize(self, data: ModalData) -> DataBundle:
        """Make ``data`` model-ready (frozen features computed once and cached); afterwards
        ``embed`` accepts batches of the returned bundle."""

    @abstractmethod
    def embed(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen input tokens [B, S, H] and a keep mask [B, S] (True = real token).

        Missing modalities (``batch["code"]``: 0 complete, 1 text missing, 2 image missing) are
        replaced by this backbone's placeholder.
        """

    @abstractmethod
    def run_layers(
        self, tokens: torch.Tensor, keep: torch.Tensor, prompter: Prompter | None = None
    ) -> torch.Tensor:
        """Run every transformer layer, calling ``prompter`` before each; returns hidden states."""

    def readout(self, hidden: torch.Tensor, n_prefix: int) -> torch.Tensor:
        """The hidden state [B, H] a task head reads when ``n_prefix`` tokens were prepended in
        front of the backbone's own sequence (default: its first token, e.g. the text [CLS])."""
        return hidden[:, n_prefix]

    def head_logits(self, readout: torch.Tensor) -> torch.Tensor:
        """The frozen classifier's output on a read-out [B, H] -> [B, head_width] (when
        ``head_width`` is set); without one, the read-out itself."""
        return readout

    def pooler_state(self) -> dict[str, torch.Tensor] | None:
        """Pretrained pooler weights (``weight``, ``bias``) to initialise a method's pooler, if any."""
        return None

    def freeze(self) -> Backbone:
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()
        return self

    def train(self, mode: bool = True) -> Backbone:  # a frozen backbone never enters train mode
        return super().train(False)
