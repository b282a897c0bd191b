"""Local batches larger than the loader's: the official code's batch 512 / 64.

The federation's loader yields ``train.batch_size`` rows at a time; the official scripts train
FedPrime with batch 512 (Food-101, text or image missing) or 64 (both missing), and a batch is
both one SGD step and one majority vote over retrieved prompts. So the module collects a local
epoch's loader batches (in the loader's shuffled order), cuts them into consecutive local batches
of the official size (``split_batches``), takes the vote over each whole local batch
(``majority_indices``) and accumulates its gradient over the pieces before one step. The loss of
a local batch is the mean over its samples, exactly as one big batch (nothing in the model
depends on batch statistics).

Which size: the scripts choose it per setting; a client whose own data holds both text-missing
and image-missing samples is in the "both" setting (``local_batch_size``).
"""

from __future__ import annotations

import torch

from fedbench.batch import IMAGE_MISSING, TEXT_MISSING
from fedbench.methods.fedprime.retrieval import batch_majority, topk_per_sample

Batch = dict[str, torch.Tensor]


def local_batch_size(options, codes: torch.Tensor, loader_batch: int) -> int:
    """``batch_size_both`` for a client holding both kinds of missing samples, else
    ``batch_size``; the loader's batch where the chosen one is None."""
    present = set(codes.unique().tolist())
    mixed = TEXT_MISSING in present and IMAGE_MISSING in present
    size = options.batch_size_both if mixed and options.batch_size_both is not None else options.batch_size
    return loader_batch if size is None else int(size)


def split_batches(chunks: list[Batch], size: int) -> list[list[Batch]]:
    """Consecutive local batches of ``size`` rows (the last may be smaller), each a list of
    row slices of the loader batches ``chunks`` (every tensor is sliced along dim 0)."""
    groups: list[list[Batch]] = []
    current: list[Batch] = []
    room = size
    for chunk in chunks:
        n, start = len(chunk["code"]), 0
        while start < n:
            take = min(room, n - start)
            current.append({k: v[start : start + take] for k, v in chunk.items()})
            start, room = start + take, room - take
            if room == 0:
                groups.append(current)
                current, room = [], size
    if current:
        groups.append(current)
    return groups


@torch.no_grad()
def majority_indices(module, group: list[Batch]) -> dict[str, torch.Tensor]:
    """{pool: [1, kappa]}: the kappa prompts most often in the samples' top-kappa lists over the
    whole local batch ``group`` (ties to the lower index, see ``batch_majority``)."""
    per_sample: dict[str, list[torch.Tensor]] = {}
    for chunk in group:
        tokens, keep = module.backbone.embed(chunk)
        for name, sim in module.similarities(module.query_input(chunk, tokens, keep)).items():
            per_sample.setdefault(name, []).append(topk_per_sample(sim, module.options.kappa))
    out = {}
    for name, parts in per_sample.items():
        size = getattr(module, f"{name}_pool").shape[0]
        out[name] = batch_majority(torch.cat(parts), size, module.options.kappa)[:1]
    return out
