"""Input-adaptive prompt retrieval (methods.md §2b), as pure functions so each step is testable.

query(x) = normalize(W_q maxpool_tokens(X)) over the frozen input tokens X; key(p) = normalize(p);
relevance = cosine similarity. Selection is per sample (fedbench's default) or the official
batch-wise majority, which L2P calls ``batchwise_prompt``. The max-pool runs over the real tokens
(``masked_token_max``) or, as the official code, also over the [PAD] positions of a fixed-length
text (``padded_token_max``).
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


def padded_token_max(
    tokens: torch.Tensor, keep: torch.Tensor, text_width: int, pad_rows: torch.Tensor
) -> torch.Tensor:
    """The official query pool: max over the real tokens and over [PAD] at every text position
    the sample leaves empty, up to the fixed text length L = len(pad_rows).

    tokens, keep: [B, S, H], [B, S], the first ``text_width`` positions being the text;
    pad_rows: [L, H], the backbone's embedding of [PAD] at positions 0..L-1 (L >= text_width).
    A sample with n real text tokens has [PAD] at positions n..L-1 in the official input (a
    missing text, fed as [CLS][SEP], has L - 2). The masked positions of ``tokens`` are not used:
    for a text-missing sample they can still hold its real words' embeddings.
    """
    n_text = keep[:, :text_width].sum(1)  # real text tokens per sample
    # suffix[p] = max over q >= p of pad_rows[q]; suffix[L] = -inf (no padding left)
    flipped = torch.cummax(pad_rows.flip(0), dim=0).values.flip(0)
    suffix = torch.cat([flipped, torch.full_like(pad_rows[:1], float("-inf"))], 0)
    return torch.maximum(masked_token_max(tokens, keep), suffix.to(tokens.dtype)[n_text])


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
