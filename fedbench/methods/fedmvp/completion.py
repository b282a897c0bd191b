"""Modality completion before federation (methods.md §4a), at the level of frozen features.

FedMVP fills every missing modality once, before training, with frozen pretrained models. The
completers here share one interface, ``complete(text, image, codes) -> Completion``, over
feature tensors [N, ...] and the modality codes of :mod:`fedbench.batch` (0 complete,
1 text missing, 2 image missing); the entries of a missing modality are ignored.

- ``retrieval``: nearest neighbour in a server-held public pool that no client split contains.
  A sample missing its image takes the image of the pool item whose text is nearest to its text
  (``via="partner"``), or the pool image nearest to its text in a shared space (``via="cross"``);
  the same the other way round.
- ``none``: the paper's baselines, which drop incomplete pairs: ``keep`` marks complete samples.
- ``impute``: keep every sample and fill the gap with the backbone's own missing-input features.
- ``generate`` (captioner / text-to-image) works on raw inputs: :mod:`.generate`.

Completions are cached on disk by (dataset, completer, seed) through
:func:`fedbench.cache.folder.cached`, which loads tensors only (no pickled code runs).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from fedbench.batch import COMPLETE, IMAGE_MISSING, TEXT_MISSING
from fedbench.cache.folder import cache_dir, cache_key, cached

__all__ = [
    "Completer",
    "Completion",
    "CompletionPool",
    "ImputeCompleter",
    "NoneCompleter",
    "RetrievalCompleter",
    "cached_completion",
    "completion_path",
    "completion_quality",
]

TEXT, IMAGE = 0, 1  # columns of Completion.filled


@dataclass(frozen=True)
class Completion:
    """Completed features of N samples.

    text, image: [N, ...] features with every kept sample's missing modality filled in.
    keep: [N] bool, False for samples to drop (completer ``none``).
    filled: [N, 2] bool, which (text, image) entries the completer supplied.
    source: [N] int64, the pool row a filled entry came from (-1 when not from a pool).
    """

    text: Tensor
    image: Tensor
    keep: Tensor
    filled: Tensor
    source: Tensor

    def to_dict(self) -> dict[str, Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any, n: int | None = None) -> Completion:
        """Rebuild from :meth:`to_dict`'s output; ValueError if it is not one (for ``n`` samples)."""
        names = [f.name for f in fields(cls)]
        if not isinstance(data, Mapping) or set(data) != set(names):
            raise ValueError("not a completion")
        if not all(isinstance(data[k], Tensor) for k in names):
            raise ValueError("completion entries must be tensors")
        rows = {data[k].shape[0] if data[k].ndim else -1 for k in names}
        if len(rows) != 1 or (n is not None and rows != {n}):
            raise ValueError("completion entries disagree on the number of samples")
        if data["filled"].shape[1:] != (2,) or data["keep"].dtype != torch.bool:
            raise ValueError("completion has a malformed keep or filled mask")
        return cls(**{k: data[k] for k in names})


def _check(text: Tensor, image: Tensor, codes: Tensor) -> Tensor:
    codes = torch.as_tensor(codes, dtype=torch.int64)
    if not text.shape[0] == image.shape[0] == codes.shape[0]:
        raise ValueError(
            f"completion: {text.shape[0]} texts, {image.shape[0]} images and {codes.shape[0]} codes differ"
        )
    bad = ~torch.isin(codes, torch.tensor([COMPLETE, TEXT_MISSING, IMAGE_MISSING]))
    if bad.any():
        raise ValueError(f"completion: unknown modality code {int(codes[bad][0])}")
    return codes


def _filled(codes: Tensor) -> Tensor:
    return torch.stack([codes == TEXT_MISSING, codes == IMAGE_MISSING], dim=1)


class Completer(ABC):
    """Fills missing modalities of feature tensors; see the module docstring."""

    name: str

    @abstractmethod
    def complete(self, text: Tensor, image: Tensor, codes: Tensor, **keys: Tensor) -> Completion:
        """Completion of N samples (text [N, ...], image [N, ...], codes [N])."""


class NoneCompleter(Completer):
    """Drops incomplete samples (``keep`` = complete); features pass through unchanged."""

    name = "none"

    def complete(self, text: Tensor, image: Tensor, codes: Tensor, **keys: Tensor) -> Completion:
        codes = _check(text, image, codes)
        n = codes.shape[0]
        return Completion(
            text, image, codes == COMPLETE, torch.zeros(n, 2, dtype=torch.bool), torch.full((n,), -1)
        )


class ImputeCompleter(Completer):
    """Keeps every sample, filling a missing modality with the backbone's missing-input features
    (``text_missing`` / ``image_missing``: one sample's feature shape, e.g. the backbone's
    features of an empty text and of its placeholder image)."""

    name = "impute"

    def __init__(self, text_missing: Tensor, image_missing: Tensor):
        self.text_missing, self.image_missing = text_missing, image_missing

    def complete(self, text: Tensor, image: Tensor, codes: Tensor, **keys: Tensor) -> Completion:
        codes = _check(text, image, codes)
        filled = _filled(codes)
        text, image = text.clone(), image.clone()
        text[filled[:, TEXT]] = self.text_missing.to(text.dtype)
        image[filled[:, IMAGE]] = self.image_missing.to(image.dtype)
        n = codes.shape[0]
        return Completion(text, image, torch.ones(n, dtype=torch.bool), filled, torch.full((n,), -1))


@dataclass(frozen=True)
class CompletionPool:
    """The server's public image-text pairs: features [P, ...] and retrieval keys [P, k]
    (default: the features themselves, which must then be [P, k]). ``labels`` are optional and
    only used to measure completion quality."""

    text: Tensor
    image: Tensor
    text_key: Tensor | None = None
    image_key: Tensor | None = None
    labels: Tensor | None = None

    def key(self, modality: int) -> Tensor:
        key = (self.text_key, self.image_key)[modality]
        return _as_key((self.text, self.image)[modality] if key is None else key, "pool")


def _as_key(x: Tensor, who: str) -> Tensor:
    if x.ndim != 2:
        raise ValueError(
            f"retrieval: {who} keys must be [N, k]; pass text_key/image_key for {x.ndim}-d features"
        )
    return F.normalize(x.to(torch.float32), dim=1)


def _nearest(queries: Tensor, keys: Tensor, chunk: int = 4096) -> Tensor:
    """Index of the most cosine-similar key row for each query row (first on ties)."""
    return (
        torch.cat([(q @ keys.T).argmax(dim=1) for q in queries.split(chunk)])
        if len(queries)
        else queries.new_zeros(0, dtype=torch.long)
    )


class RetrievalCompleter(Completer):
    """Nearest-neighbour completion from a :class:`CompletionPool` (cosine similarity of keys)."""

    name = "retrieval"

    def __init__(self, pool: CompletionPool, via: str = "partner"):
        if via not in ("partner", "cross"):
            raise ValueError(f"RetrievalCompleter: via must be 'partner' or 'cross', got {via!r}")
        if pool.text.shape[0] != pool.image.shape[0] or pool.text.shape[0] == 0:
            raise ValueError("RetrievalCompleter: the pool needs as many texts as images, at least one")
        self.pool, self.via = pool, via

    def complete(
        self,
        text: Tensor,
        image: Tensor,
        codes: Tensor,
        text_key: Tensor | None = None,
        image_key: Tensor | None = None,
    ) -> Completion:
        codes = _check(text, image, codes)
        filled = _filled(codes)
        text, image = text.clone(), image.clone()
        source = torch.full((codes.shape[0],), -1, dtype=torch.int64)
        sample_keys = (text if text_key is None else text_key, image if image_key is None else image_key)
        for missing, present, target in ((IMAGE, TEXT, image), (TEXT, IMAGE, text)):
            rows = filled[:, missing].nonzero().squeeze(1)
            if len(rows) == 0:
                continue
            query = _as_key(sample_keys[present][rows], "sample")
            match = _nearest(query, self.pool.key(present if self.via == "partner" else missing))
            target[rows] = (self.pool.text, self.pool.image)[missing][match].to(target.dtype)
            source[rows] = match
        return Completion(text, image, torch.ones(codes.shape[0], dtype=torch.bool), filled, source)


def completion_quality(
    completion: Completion,
    labels: Tensor,
    true_text: Tensor | None = None,
    true_image: Tensor | None = None,
    pool_labels: Tensor | None = None,
) -> dict[str, float]:
    """How good the filled entries are, per filled modality (keys ``text/...``, ``image/...``):

    n: filled entries; label_agreement: share whose pool source has the sample's label (needs
    ``pool_labels`` and a pool source); cosine: mean cosine between the filled feature and the
    held-back true one; partner_top1: share of filled entries whose nearest held-back true
    feature (among those of every filled entry of that modality) is their own partner.
    """
    out: dict[str, float] = {}
    for modality, name, truth in ((TEXT, "text", true_text), (IMAGE, "image", true_image)):
        rows = completion.filled[:, modality].nonzero().squeeze(1)
        out[f"{name}/n"] = float(len(rows))
        if len(rows) == 0:
            continue
        src = completion.source[rows]
        if pool_labels is not None and bool((src >= 0).all()):
            out[f"{name}/label_agreement"] = float((pool_labels[src] == labels[rows]).float().mean())
        if truth is not None:
            got = F.normalize((completion.text, completion.image)[modality][rows].flatten(1).double(), dim=1)
            want = F.normalize(truth[rows].flatten(1).double(), dim=1)
            sims = got @ want.T
            out[f"{name}/cosine"] = float(sims.diagonal().mean())
            out[f"{name}/partner_top1"] = float((sims.argmax(1) == torch.arange(len(rows))).double().mean())
    return out


def completion_path(dataset: str, completer: str, seed: int, root: Path | None = None, **extra: Any) -> Path:
    """Cache file of one completion: keyed by (dataset, completer, seed) and any ``extra`` part
    that changes it (the backbone, the pool, the missing table's identity)."""
    key = cache_key(dataset=dataset, completer=completer, seed=seed, **extra)
    return Path(root if root is not None else cache_dir()) / "fedmvp" / f"completion-{completer}-{key}.pt"


def cached_completion(
    build: Callable[[], Completion],
    dataset: str,
    completer: str,
    seed: int,
    n: int | None = None,
    root: Path | None = None,
    **extra: Any,
) -> Completion:
    """The cached completion for this key, or ``build()``'s, saved atomically. A file that is
    unreadable, not tensors-only, or not a completion of ``n`` samples is reported and rebuilt."""
    path = completion_path(dataset, completer, seed, root, **extra)
    data = cached(path, lambda: build().to_dict(), valid=lambda d: Completion.from_dict(d, n) is not None)
    return Completion.from_dict(data, n)
