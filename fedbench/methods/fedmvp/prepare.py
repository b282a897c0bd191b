"""FedMVP's step before federation: frozen features, modality completion and its quality.

The aggregator runs :func:`prepare` once when the federation builds it (before the first round),
from the server context. Completion is computed *per row and per direction* rather than for the
rows a missing table marks: a retrieved partner depends only on the row's present modality and
the pool, so every row gets "its image filled from its text" and "its text filled from its image"
(2N lookups, cached by (dataset, completer, seed) plus the features and the pool). A client then
swaps in the filled entry wherever a batch's code says a modality is missing, the missing table
never enters the cache key, and every missing rate, seed and test condition reuses one file. Test
samples with a missing modality are completed the same way (the completer is a frozen model the
deployed system has too); under ``none``/``impute`` they get the backbone's missing input.

Clients find the prepared tables through a per-process registry keyed by the (shared, frozen)
backbone. A remote executor's process would call :func:`prepare` itself: it is deterministic and
both of its expensive parts load from the disk cache.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fedbench.batch import IMAGE_MISSING, TEXT_MISSING
from fedbench.cache.digest import tensor_digest
from fedbench.errors import ConfigError
from fedbench.methods.fedmvp.completion import (
    Completion,
    CompletionPool,
    ImputeCompleter,
    RetrievalCompleter,
    cached_completion,
    completion_quality,
)
from fedbench.methods.fedmvp.config import FedMVPOptions
from fedbench.methods.fedmvp.features import FeatureTable, feature_table, held_out_rows
from fedbench.methods.fedmvp.pixels import pixel_column, pixel_inputs

__all__ = ["Prepared", "prepare", "prepared_for", "used_rows"]


@dataclass
class Prepared:
    """What clients and server share for one run: features, completion and its quality.

    text_from / image_from [N]: the table row whose text / image replaces row r's missing one.
    server_rows: the held-out rows the server compares clients on (and retrieves from).
    """

    table: FeatureTable
    text_from: Tensor
    image_from: Tensor
    server_rows: np.ndarray
    server_split: str
    quality: dict[str, float | int | str] = field(default_factory=dict)
    pixels: Any = None  # the raw-pixel column of joint_image="pixels" (else None)

    def inputs(self, rows: Tensor, codes: Tensor, device: torch.device | None = None) -> dict[str, Tensor]:
        """The network's inputs for bundle ``rows`` whose modalities are missing per ``codes``
        (with raw pixels, [-1, 1], as ``image_tokens`` under joint_image="pixels")."""
        rows, codes = rows.cpu().long(), codes.cpu().long()
        text_rows = torch.where(codes == TEXT_MISSING, self.text_from[rows], rows)
        image_rows = torch.where(codes == IMAGE_MISSING, self.image_from[rows], rows)
        out = self.table.inputs(text_rows, image_rows, device)
        if self.pixels is not None:
            pixels = pixel_inputs(self.pixels, image_rows, self.table.missing_row)
            out["image_tokens"] = pixels if device is None else pixels.to(device)
        return out


_REGISTRY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _slot(options: FedMVPOptions) -> tuple[str, str, str]:
    via = options.retrieval_via if options.completer == "retrieval" else ""
    return options.completer, via, f"pixels{options.pixel_size}" if options.joint_image == "pixels" else ""


def prepared_for(backbone, options: FedMVPOptions) -> Prepared | None:
    """The tables :func:`prepare` made in this process for this backbone and completer."""
    return _REGISTRY.get(backbone, {}).get(_slot(options))


def _sub(done: Completion, rows: Tensor) -> Completion:
    return Completion(**{k: v[rows] for k, v in done.to_dict().items()})


def _round(quality: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in quality.items()}


def used_rows(bundle, pool: np.ndarray) -> Tensor:
    """The sorted rows a run reads: its splits' and the server pool's (all rows of a bundle, except
    in a smoke run, whose splits are capped)."""
    parts = [np.asarray(v) for k, v in bundle.splits.items() if k in ("train", "val", "test")] + [
        np.asarray(pool)
    ]
    return torch.as_tensor(np.unique(np.concatenate(parts)), dtype=torch.long)


def prepare(backbone, bundle, public: np.ndarray | None, options: FedMVPOptions, seed: int) -> Prepared:
    """Features, completion and quality for one run; registered for this process's clients.

    Quality is measured on the train split, both directions, against the held-back true
    modality (:func:`~.completion.completion_quality`): under the per-sample protocol the rows
    that miss a modality are a random subset, so this is their expected quality at any rate.
    """
    if options.completer == "generate":
        raise ConfigError(
            "method.options.completer=generate needs the raw texts and images and a backbone that "
            "featurises new ones, which the embedded backbone does not expose yet; use retrieval "
            "(offline) or run the generate completer's models on a GPU machine (see README)"
        )
    table, features_key = feature_table(backbone, bundle)
    n = len(bundle.labels)
    labels = bundle.labels
    if labels.ndim != 1:
        raise ConfigError("method.name: fedmvp needs single-label data (its losses are cross-entropies)")
    pool, pool_split = held_out_rows(bundle, public)
    train = torch.as_tensor(np.sort(np.asarray(bundle.splits["train"])), dtype=torch.long)
    used = used_rows(
        bundle, pool
    )  # every row when the splits and the pool cover the bundle (as always but in smoke runs)
    pooled = table.rows(used)
    text = torch.zeros((n, *pooled["text"].shape[1:]))
    image = torch.zeros((n, *pooled["image"].shape[1:]))
    text[used], image[used] = pooled["text"], pooled["image"]
    both = torch.cat([torch.full((len(used),), IMAGE_MISSING), torch.full((len(used),), TEXT_MISSING)])
    subset = {} if len(used) == n else {"rows": tensor_digest(used)}
    image_from = text_from = torch.full((n,), -1, dtype=torch.long)
    if options.completer == "retrieval":
        pool_t = torch.as_tensor(pool, dtype=torch.long)
        completer = RetrievalCompleter(
            CompletionPool(text=text[pool_t], image=image[pool_t], labels=labels[pool_t]),
            via=options.retrieval_via,
        )
        extra = dict(features=features_key, pool=tensor_digest(pool_t), via=options.retrieval_via, **subset)
        done = cached_completion(
            lambda: completer.complete(
                torch.cat([text[used], text[used]]), torch.cat([image[used], image[used]]), both
            ),
            bundle.name,
            "retrieval",
            seed,
            n=2 * len(used),
            **extra,
        )
        image_from, text_from = image_from.clone(), text_from.clone()
        image_from[used], text_from[used] = pool_t[done.source[: len(used)]], pool_t[done.source[len(used) :]]
        pool_labels = labels[pool_t]
    else:  # impute and none: the backbone's missing input wherever a modality is missing
        miss = table.missing_row
        completer = ImputeCompleter(table.text[miss], table.image[miss])
        done = completer.complete(
            torch.cat([text[used], text[used]]), torch.cat([image[used], image[used]]), both
        )
        image_from = text_from = torch.full((n,), miss, dtype=torch.long)
        pool_labels = None
    at = torch.searchsorted(used, train)  # the train rows' positions in the completion
    rows = torch.cat([at, len(used) + at])
    quality = completion_quality(
        _sub(done, rows),
        torch.cat([labels[train], labels[train]]),
        true_text=torch.cat([text[train], text[train]]),
        true_image=torch.cat([image[train], image[train]]),
        pool_labels=pool_labels,
    )
    prepared = Prepared(
        table=table,
        text_from=text_from.long(),
        image_from=image_from.long(),
        server_rows=pool,
        server_split=pool_split,
        quality={
            "completer": options.completer,
            "pool": int(len(pool)),
            "pool_split": pool_split,
            **_round(quality),
        },
        pixels=pixel_column(backbone, options.pixel_size) if options.joint_image == "pixels" else None,
    )
    _REGISTRY.setdefault(backbone, {})[_slot(options)] = prepared
    return prepared
