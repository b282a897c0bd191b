"""Pretraining the image projection so the embedded backbone is a real frozen foundation model.

The projection (EfficientNet grid features -> MiniLM width) starts random, so it is trained once
on a held-out slice of the data that no federated client ever sees, then frozen. Objective:
symmetric InfoNCE between (a) the frozen MiniLM run on ``[CLS] + image tokens``, mean-pooled over
the image tokens, and (b) the frozen MiniLM sentence embedding (mean-pooled) of the same item's
text. Only the projection learns. Settings follow reference/emoji-prototype.md (20 epochs,
batch 64, AdamW 1e-3, one-cycle, temperature 0.05).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from fedbench.backbones.image_features import FEATURE_DIM

if TYPE_CHECKING:
    from fedbench.backbones.minilm_effnet import MiniLMEffNetBackbone


@torch.no_grad()
class ImageProjection(nn.Module):
    """Grid features [N, G*G, F] -> image tokens [N, G*G, H]: linear + cell position + type 1 + LN."""

    def __init__(
        self, feature_dim: int, hidden: int, cells: int, type_embedding: torch.Tensor, norm: nn.LayerNorm
    ):
        super().__init__()
        self.linear = nn.Linear(feature_dim, hidden)
        self.position = nn.Parameter(torch.zeros(cells, hidden))
        nn.init.normal_(self.position, std=0.02)
        self.register_buffer("type_embedding", type_embedding.detach().clone())
        self.norm = nn.LayerNorm(hidden, eps=norm.eps)
        self.norm.load_state_dict(norm.state_dict())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.norm(self.linear(features) + self.position + self.type_embedding)


def sentence_embeddings(
    backbone: MiniLMEffNetBackbone, ids: torch.Tensor, keep: torch.Tensor, batch: int = 256
) -> torch.Tensor:
    out = []
    for s in range(0, len(ids), batch):
        i, k = ids[s : s + batch], keep[s : s + batch].bool()
        h = backbone.run_layers(backbone.text_embeddings(i), k)
        out.append((h * k[..., None]).sum(1) / k.sum(1, keepdim=True))
    return F.normalize(torch.cat(out), dim=-1)


def pretrain_projection(
    backbone: MiniLMEffNetBackbone,
    features: torch.Tensor,
    text_ids: torch.Tensor,
    text_keep: torch.Tensor,
    *,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 1e-3,
    temperature: float = 0.05,
    seed: int = 0,
) -> tuple[ImageProjection, dict[str, float]]:
    """Train a projection on (features, text) pairs; returns it frozen plus retrieval diagnostics."""
    emb = backbone.bert.embeddings
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        proj = ImageProjection(
            FEATURE_DIM,
            backbone.hidden_size,
            features.shape[1],
            emb.token_type_embeddings.weight[1],
            emb.LayerNorm,
        )
    targets = sentence_embeddings(backbone, text_ids, text_keep)
    cls = backbone.text_embeddings(text_ids[:1, :1]).detach()  # the [CLS] input token
    n = len(features)
    steps = epochs * ((n + batch_size - 1) // batch_size)
    opt = torch.optim.AdamW(proj.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    proj.train()
    for _ in range(epochs):
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            img = _image_embedding(backbone, proj, features[idx], cls)
            logits = img @ targets[idx].T / temperature
            labels = torch.arange(len(idx))
            loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    proj.eval().requires_grad_(False)
    with torch.no_grad():
        img = torch.cat([_image_embedding(backbone, proj, f, cls) for f in features.split(256)])
        top1 = (img @ targets.T).argmax(1).eq(torch.arange(n)).float().mean().item()
    return proj, {"retrieval_top1": top1, "loss": loss.item()}


def _image_embedding(backbone, proj, feats: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    tokens = proj(feats)
    seq = torch.cat([cls.expand(len(feats), 1, -1), tokens], 1)
    keep = torch.ones(seq.shape[:2], dtype=torch.bool)
    h = backbone.run_layers(seq, keep)
    return F.normalize(h[:, 1:].mean(1), dim=-1)
