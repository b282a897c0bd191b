"""The prompted frozen backbone shared by PPT and its baselines (methods.md §3a).

PFPT's models are a frozen ViT-B/32 read at its [CLS] token, shallow prompt tokens inserted once
before the first layer, and a trainable adaptor head. Here the frozen backbone is any fedbench
:class:`~fedbench.backbones.base.Backbone`: the prompts are prepended before layer 0 (after the
position embeddings, as VPT; attention ignores order once positions are added, so in front of
[CLS] is the same as right after it) and the head reads ``backbone.readout``, the embedded
backbone's [CLS]. On PPT's image protocol every text is missing, so the sequence is
``[CLS][SEP]`` + image tokens and the [CLS] is an image [CLS].

Why padding is dropped here: with every text missing, a batch still carries the text columns of
its longest original text, all masked. Masked keys get no attention weight, so removing columns
masked in every row changes no visible output, and the image-only sequence shrinks from about 41
to 11 tokens (about 3x less compute per step). It is done only for backbones that read their
first token (the base ``readout``), whose position cannot move.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fedbench.backbones.base import Backbone

# what PPT and its baselines need from a backbone: prompt insertion only, so an image-only ViT
# qualifies as well as the multimodal ones (fed images only through missing.type text, rate 1)
REQUIRES = frozenset({"prompts"})


def prompt_init_bound(hidden: int) -> float:
    """PFPT's uniform bound for prompts: the Xavier bound of a 32x32 RGB patch projection,
    sqrt(6 / (3 * 32 * 32 + H)), here at the backbone's width H."""
    return math.sqrt(6.0 / (3 * 32 * 32 + hidden))


class AdaptorHead(nn.Module):
    """PFPT's ``classification_head``: Linear(in, width) -> Dropout -> Linear(width, C), no activation.

    PFPT feeds it the frozen ViT's 1000 ImageNet logits; fedbench backbones have no frozen
    classifier, so it reads the hidden state at the read-out token (width H) instead.
    """

    def __init__(self, hidden: int, num_classes: int, width: int = 512, dropout: float = 0.5):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden, width), nn.Dropout(dropout), nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def reads_first_token(backbone: Backbone) -> bool:
    return type(backbone).readout is Backbone.readout


def visible_tokens(backbone: Backbone, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The backbone's frozen input tokens and keep mask, minus the columns masked in every row
    (see the module docstring for why this is exact)."""
    tokens, keep = backbone.embed(batch)
    if reads_first_token(backbone):
        columns = keep.any(0)
        if not bool(columns.all()):
            tokens, keep = tokens[:, columns], keep[:, columns]
    return tokens, keep


@torch.no_grad()
def frozen_readout(backbone: Backbone, tokens: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """[B, H]: the read-out token of the un-prompted frozen backbone (PPT's query feature)."""
    return backbone.readout(backbone.run_layers(tokens, keep), 0)


def prompted_readout(backbone: Backbone, tokens: torch.Tensor, keep: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
    """[B, H]: the read-out token after prepending ``prompts`` ([B, P, H] or [P, H]) before layer 0."""
    if prompts.ndim == 2:
        prompts = prompts.unsqueeze(0).expand(tokens.shape[0], -1, -1)

    def prompter(i: int, x: torch.Tensor, k: torch.Tensor):
        if i != 0:
            return x, k
        ones = torch.ones(prompts.shape[:2], dtype=torch.bool, device=k.device)
        return torch.cat([prompts.to(x.dtype), x], 1), torch.cat([ones, k], 1)

    return backbone.readout(backbone.run_layers(tokens, keep, prompter), prompts.shape[1])


def pfpt_adam(module: nn.Module, lr: float) -> torch.optim.Optimizer:
    """PFPT's local optimiser: Adam(lr, betas (0.9, 0.98), eps 1e-6), no weight decay."""
    params = [p for p in module.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.98), eps=1e-6)
