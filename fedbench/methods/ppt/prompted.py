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

import numpy as np
import torch
from torch import nn

from fedbench.backbones.base import Backbone, frozen_fingerprint
from fedbench.cache.folder import cache_key
from fedbench.cache.frozen import FrozenTable, frozen_chunk
from fedbench.data.bundle import bundle_fingerprint

# what PPT and its baselines need from a backbone: prompt insertion only, so an image-only ViT
# qualifies as well as the multimodal ones (fed images only through missing.type text, rate 1)
REQUIRES = frozenset({"prompts"})


def prompt_init_bound(hidden: int) -> float:
    """PFPT's uniform bound for prompts: the Xavier bound of a 32x32 RGB patch projection,
    sqrt(6 / (3 * 32 * 32 + H)), here at the backbone's width H."""
    return math.sqrt(6.0 / (3 * 32 * 32 + hidden))


class AdaptorHead(nn.Module):
    """PFPT's ``classification_head``: Linear(in, width) -> Dropout -> Linear(width, C), no activation.

    PFPT feeds it the frozen ViT's 1000 ImageNet logits (``L2P_heuristic_model.py:136-140``). A
    backbone with such a frozen head (``head_width``: torchvision's checkpoint) passes its logits
    (:func:`adaptor_input`); the others have none, and the head reads the hidden state at the
    read-out token (width H).
    """

    def __init__(self, hidden: int, num_classes: int, width: int = 512, dropout: float = 0.5):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden, width), nn.Dropout(dropout), nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def adaptor_width(backbone: Backbone) -> int:
    """The adaptor head's input width: the backbone's frozen classifier's, else its hidden size."""
    return backbone.head_width or backbone.hidden_size


def adaptor_input(backbone: Backbone, readout: torch.Tensor) -> torch.Tensor:
    """What the adaptor head reads: the frozen classifier's logits where the backbone has one."""
    return backbone.head_logits(readout) if backbone.head_width else readout


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


QUERY_CHUNK = 64  # rows per block of the cached query features


def query_features(backbone: Backbone, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """[B, H] float32: PPT's query feature of each row of ``batch`` under its missing code.

    It depends only on the row, its code and frozen weights, so it is computed once per (row, code)
    in blocks of :data:`QUERY_CHUNK` rows, under the autocast the caller runs in, and read from
    the frozen cache afterwards (:mod:`fedbench.cache.frozen`): training, validation and test
    passes skip the un-prompted pass (about 30% of a training step, 45% of an evaluation). Without
    a featurised bundle to compute blocks from (a backbone used outside a run), it is computed on
    the batch."""
    bundle = getattr(backbone, "bundle", None)
    if bundle is None or "row" not in batch:
        tokens, keep = visible_tokens(backbone, batch)
        return frozen_readout(backbone, tokens, keep).float()
    rows, codes = batch["row"].cpu(), batch["code"].cpu()
    out = None
    for code in codes.unique().tolist():
        at = codes == code
        got = _query_table(backbone, bundle, int(code)).rows(rows[at])["query"]
        if out is None:
            out = torch.empty((len(rows), *got.shape[1:]), dtype=got.dtype)
        out[at] = got
    return out.to(batch["code"].device)


def _query_table(backbone: Backbone, bundle, code: int) -> FrozenTable:
    device = next(iter(backbone.buffers()), torch.zeros(())).device
    cast = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else None
    tables = backbone.__dict__.setdefault("_query_tables", {})
    slot = (id(bundle), code, str(cast), device.type)
    if slot not in tables:
        chunk = frozen_chunk(QUERY_CHUNK)
        key = cache_key(
            weights=frozen_fingerprint(backbone),
            data=bundle_fingerprint(bundle),
            code=code,
            autocast=str(cast),
            device=device.type,
            chunk=chunk,
            what="ppt-query",
        )

        @torch.no_grad()
        def compute(rows: np.ndarray) -> dict[str, torch.Tensor]:
            batch = bundle.batch(torch.as_tensor(rows), torch.full((len(rows),), code, dtype=torch.long))
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.autocast(device.type, dtype=cast or torch.float32, enabled=cast is not None):
                tokens, keep = visible_tokens(backbone, batch)
                return {"query": frozen_readout(backbone, tokens, keep).float().cpu()}

        tables[slot] = FrozenTable("ppt-query", key, len(bundle.labels), compute, chunk)
    return tables[slot]


def prompted_readout(
    backbone: Backbone, tokens: torch.Tensor, keep: torch.Tensor, prompts: torch.Tensor
) -> torch.Tensor:
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
