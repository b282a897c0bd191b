"""FedMVP's two knowledge-transfer losses (methods.md §4b), as pure functions of embeddings.

Both follow the official code's arithmetic: MCM is a symmetric NT-Xent over the 2B stacked
joint and unimodal vectors, RAM compares batch-mean losses and takes the norm of the whole
B x d difference, not a per-sample norm.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["mcm_loss", "ram_loss", "ram_indicators"]


def _nt_xent_per_anchor(h_joint: Tensor, h_mod: Tensor, tau: float) -> Tensor:
    """[2B] NT-Xent losses of the anchors u = [h_joint; h_mod], positive partner at index a +- B."""
    b = h_joint.shape[0]
    u = torch.cat([h_joint, h_mod], dim=0)
    logits = (u @ u.T) / tau
    eye = torch.eye(2 * b, dtype=torch.bool, device=u.device)
    logits = logits.masked_fill(eye, float("-inf"))  # an anchor is never its own negative
    partner = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(u.device)
    positive = logits[torch.arange(2 * b, device=u.device), partner]
    return torch.logsumexp(logits, dim=1) - positive


def mcm_loss(h_joint: Tensor, unimodal: Sequence[Tensor], alpha: float = 0.01, tau: float = 0.1) -> Tensor:
    """Multi-modal contrastive matching between the joint embedding and each unimodal one.

    For each modality m (image, text) stack u = [h_J ; h_m] (2B rows) and
    score s(a, k) = <u_a, u_k> / tau (a dot product: the embeddings come out of the common
    encoder, so this is a cosine where they are unit vectors). Every row a is an anchor whose
    positive is the same sample in the other half, p(a) = a + B or a - B, and whose denominator
    runs over every other row k != a (the positive, the other joint rows and the other unimodal
    rows):

        L_MCM = alpha * sum_m (1 / 2B) * sum_a -log( exp(s(a, p(a))) / sum_{k != a} exp(s(a, k)) )

    Symmetric: joint rows anchor to unimodal partners and unimodal rows to joint partners, with
    the same positive score. alpha = 0.01, tau = 0.1 in the paper.
    """
    if len(unimodal) == 0:
        raise ValueError("mcm_loss: need at least one unimodal embedding")
    total = h_joint.new_zeros(2 * h_joint.shape[0])
    for h_mod in unimodal:
        if h_mod.shape != h_joint.shape:
            raise ValueError(f"mcm_loss: unimodal shape {tuple(h_mod.shape)} != joint {tuple(h_joint.shape)}")
        total = total + _nt_xent_per_anchor(h_joint, h_mod, tau)
    return alpha * total.mean()


def ram_indicators(ce_joint: Tensor, ce_unimodal: Sequence[Tensor]) -> list[bool]:
    """1[CE_m < CE_J] per modality, from batch-mean cross-entropies (no gradient flows through it)."""
    return [bool(ce_m.detach() < ce_joint.detach()) for ce_m in ce_unimodal]


def ram_loss(
    h_joint: Tensor,
    unimodal: Sequence[Tensor],
    ce_joint: Tensor,
    ce_unimodal: Sequence[Tensor],
    beta: float = 0.5,
    batch_size: int | None = None,
) -> Tensor:
    """Representation-aligned margin: a unimodal branch that classifies the batch better than
    the joint one pulls the joint representation towards itself.

        L_RAM = beta / B * sum_m 1[CE(g(h_m), y) < CE(head(h_J), y)] * ||h_J - h_m||_F

    CE values are batch means (scalars), so the indicator is one bit per batch and modality, and
    ||.||_F is the norm of the whole B x d difference (the official ``sqrt(sum(diff ** 2))``).
    g is the final linear classifier alone, head the full residual classifier; the caller passes
    the resulting CE values. The gradient reaches both h_J and h_m, as in the official code.
    ``batch_size`` defaults to the rows of h_J (the official code divides by the configured batch
    size, which differs only for a short last batch). beta = 0.5 in the paper.
    """
    if len(unimodal) != len(ce_unimodal):
        raise ValueError("ram_loss: one CE value per unimodal embedding")
    b = h_joint.shape[0] if batch_size is None else batch_size
    total = h_joint.new_zeros(())
    for active, h_mod in zip(ram_indicators(ce_joint, ce_unimodal), unimodal, strict=True):
        if active:
            total = total + torch.linalg.vector_norm(h_joint - h_mod)
    return beta * total / b
