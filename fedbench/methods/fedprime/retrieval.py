"""Input-adaptive prompt retrieval (methods.md §2b), as pure functions so each step is testable.

query(x) = normalize(W_q maxpool_tokens(X)) over the frozen input tokens X; key(p) = normalize(p);
relevance = cosine similarity. Selection is per sample (fedbench's default) or the official
batch-wise majority, which L2P calls ``batchwise_prompt``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_token_max(tokens: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Element-wise max over the real tokens only: [B, S, H], [B, S] -> [B, H].

    The official code takes the max over every position; here padding is excluded so that a
    short text does not pool its padding embeddings into the query.
    """
    masked = tokens.masked_fill(~keep.bool()[..., None], float("-inf"))
    return masked.max(dim=1).values


def similarity(query: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """cos(q_b, p_j) for every sample b and prompt j: [B, H], [M, H] -> [B, M].

    ``query`` is the projected (not yet normalised) query; both sides are L2-normalised here.
    """
    return F.normalize(query, dim=-1) @ F.normalize(pool, dim=-1).T


def topk_per_sample(sim: torch.Tensor, kappa: int) -> torch.Tensor:
    """Indices [B, kappa] of each sample's kappa most similar prompts, most similar first."""
    return sim.topk(kappa, dim=1).indices


def batch_majority(per_sample: torch.Tensor, pool_size: int, kappa: int) -> torch.Tensor:
    """The kappa indices that occur most often in the per-sample top lists, for every sample.

    per_sample: [B, k] indices. Returns [B, kappa], most frequent first; ties go to the lower
    index (a stable sort), where the official ``torch.unique``/``topk`` leaves them unspecified.
    """
    counts = torch.bincount(per_sample.flatten(), minlength=pool_size)
    order = torch.sort(counts, descending=True, stable=True).indices[:kappa]
    return order[None].expand(per_sample.shape[0], -1)


def select(sim: torch.Tensor, kappa: int, selection: str) -> torch.Tensor:
    """Retrieved indices [B, kappa] under ``selection`` ("sample" or "batch")."""
    per_sample = topk_per_sample(sim.detach(), kappa)
    if selection == "sample":
        return per_sample
    return batch_majority(per_sample, sim.shape[1], kappa)


def retrieval_regulariser(
    sim: torch.Tensor, idx: torch.Tensor, kappa: int, lambda_r: float, sign: str
) -> torch.Tensor:
    """lambda_r * (kappa - S) for "pull", +lambda_r * S for "push" (the official code's sign).

    S = mean over the batch of sum over the retrieved j of cos(q_b, p_j), the code's reduce_sim.
    "pull" is written as kappa - S (the summed cosine distance) so that it is >= 0.
    """
    s = sim.gather(1, idx).sum(dim=1).mean()
    return lambda_r * (kappa - s) if sign == "pull" else lambda_r * s
