"""FedMVP's frozen features of every bundle row, computed once per (dataset, backbone) and cached.

The official FedMVP runs its frozen ViT and BERT inside every forward. Here they are frozen for
the whole run, so the backbone runs once per row (``modality_features``: each modality through
the transformer on its own) and client fits only gather rows: on emoji that is 20 s once instead
of a MiniLM pass per batch, and the cache makes it 20 s once per machine. The rows live on disk in
blocks (:mod:`fedbench.cache.frozen`) read memory-mapped, so token tables of real datasets
(CLIP's 197 image tokens x 768 per row) never sit whole in RAM, and a block is computed only when
one of its rows is first asked for.

The table has one extra last row, the backbone's *missing inputs* (an empty text ``[CLS][SEP]``
and the blank canvas on the embedded backbone): what ``impute`` fills in and what a missing
modality becomes under ``none`` at evaluation.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from fedbench.backbones.base import frozen_fingerprint
from fedbench.batch import COMPLETE, IMAGE_MISSING, TEXT_MISSING
from fedbench.cache.digest import tensor_digest
from fedbench.cache.folder import cache_key
from fedbench.cache.frozen import FrozenTable, frozen_chunk
from fedbench.data.bundle import bundle_fingerprint
from fedbench.errors import ConfigError

__all__ = [
    "FeatureTable",
    "build_feature_table",
    "feature_dims",
    "feature_table",
    "held_out_rows",
    "tensor_digest",
]

FEATURE_KEYS = ("text", "image", "text_tokens", "text_pad", "image_tokens")
CHUNK = 256  # rows per block: the blocks the table was always computed in, so values stay identical


class TableColumn:
    """One output of a :class:`FeatureTable`, indexed like a tensor of ``N + 1`` rows (an int, a
    slice, or a tensor / array of rows); rows are computed on first use (see the module docstring)."""

    def __init__(self, table: FeatureTable, name: str):
        self.table, self.name = table, name

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.table.n + 1, *self.table.missing[self.name].shape))

    def __len__(self) -> int:
        return self.table.n + 1

    def __getitem__(self, index) -> Tensor:
        if isinstance(index, int | np.integer) or (
            isinstance(index, Tensor | np.ndarray) and index.ndim == 0
        ):
            return self.table.rows(torch.tensor([int(index) % (self.table.n + 1)]))[self.name][0]
        if isinstance(index, slice):
            index = torch.arange(self.table.n + 1)[index]
        return self.table.rows(torch.as_tensor(index))[self.name]


class FeatureTable:
    """Frozen features of N bundle rows plus the missing-input row (index N), read by row.

    text, image: [N + 1, H] pooled vectors; text_tokens [N + 1, L, H] with text_pad [N + 1, L]
    (True = padding); image_tokens [N + 1, G, H]. Rows 0..N-1 live in a
    :class:`~fedbench.cache.frozen.FrozenTable` (blocks of :data:`CHUNK` rows computed on first use,
    on disk, memory-mapped); the missing-input row is computed when the table is made.
    """

    def __init__(self, frozen: FrozenTable, missing: dict[str, Tensor]):
        self.frozen, self.missing, self.n = frozen, missing, frozen.n

    @property
    def missing_row(self) -> int:
        return self.n

    def __getattr__(self, name: str) -> TableColumn:
        if name in FEATURE_KEYS:
            return TableColumn(self, name)
        raise AttributeError(name)

    def rows(self, index: Tensor) -> dict[str, Tensor]:
        """Every output for rows ``index`` (N = the missing-input row)."""
        index = torch.as_tensor(index, dtype=torch.long).cpu()
        gap = index == self.n
        if not bool(gap.any()):
            return self.frozen.rows(index)
        real = self.frozen.rows(index[~gap]) if bool((~gap).any()) else {}
        out = {}
        for name, row in self.missing.items():
            column = torch.empty((len(index), *row.shape), dtype=row.dtype)
            column[gap] = row
            if real:
                column[~gap] = real[name]
            out[name] = column
        return out

    def inputs(
        self, text_rows: Tensor, image_rows: Tensor, device: torch.device | None = None
    ) -> dict[str, Tensor]:
        """:meth:`FedMVPNetwork.forward`'s keyword arguments for samples whose text comes from
        ``text_rows`` and image from ``image_rows``; text tokens trimmed to the batch's longest."""
        texts, images = self.rows(text_rows), self.rows(image_rows)
        pad = texts["text_pad"]
        width = max(int((~pad).sum(1).max()), 1) if len(pad) else 1
        out = {
            "text": texts["text"],
            "image": images["image"],
            "text_tokens": texts["text_tokens"][
                :, :width
            ].contiguous(),  # contiguous, as the kernels always saw them
            "text_pad": pad[:, :width].contiguous(),
            "image_tokens": images["image_tokens"],
        }
        return out if device is None else {k: v.to(device) for k, v in out.items()}


def feature_dims(backbone) -> dict[str, int]:
    """Widths of ``modality_features``' text, image and token vectors, which the network is
    built with: the backbone's ``modality_feature_dims()`` if it has one, else its hidden size."""
    dims = getattr(backbone, "modality_feature_dims", None)
    if callable(dims):
        return dict(dims())
    return {k: int(backbone.hidden_size) for k in ("text", "image", "text_tokens", "image_tokens")}


def _require_features(backbone) -> None:
    for member in ("modality_features", "batch_rows"):
        if not callable(getattr(backbone, member, None)):
            raise ConfigError(
                f"method.name: fedmvp trains on frozen per-modality features, which backbone "
                f"{type(backbone).__name__} does not provide ({member}); use backbone.name=embedded"
            )


@torch.no_grad()
def build_feature_table(backbone, bundle, rows: np.ndarray) -> dict[str, Tensor]:
    """``backbone.modality_features`` of bundle ``rows`` (all complete), text tokens padded to the
    bundle's width. A backbone may return pooled ``text`` and ``image`` only; token sequences are
    then the pooled vectors as one token."""
    _require_features(backbone)
    batch = bundle.batch(torch.as_tensor(rows), torch.full((len(rows),), COMPLETE, dtype=torch.long))
    return _padded(bundle, _features(backbone, batch))


def _features(backbone, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    device = next(iter(backbone.buffers()), torch.zeros(())).device
    with torch.autocast(device.type, enabled=False):  # float32 features, whatever precision asks for them
        feats = dict(backbone.modality_features({k: v.to(device) for k, v in batch.items()}))
    feats.setdefault("text_tokens", feats["text"][:, None])
    feats.setdefault("text_pad", torch.zeros(feats["text_tokens"].shape[:2], dtype=torch.bool))
    feats.setdefault("image_tokens", feats["image"][:, None])
    out = {}
    for key in FEATURE_KEYS:
        value = feats[key].detach().cpu()
        out[key] = value.float() if value.is_floating_point() else value
    return out


def _padded(bundle, feats: dict[str, Tensor]) -> dict[str, Tensor]:
    width = int(bundle.columns[bundle.padded[0]].shape[1]) if bundle.padded else None
    for key in ("text_tokens", "text_pad"):
        value = feats[key]
        if width is not None and value.shape[1] < width:
            fill = (0, 0, 0, width - value.shape[1]) if key == "text_tokens" else (0, width - value.shape[1])
            feats[key] = torch.nn.functional.pad(value, fill, value=True if key == "text_pad" else 0.0)
    return feats


@torch.no_grad()
def missing_features(backbone, bundle) -> dict[str, Tensor]:
    """The features of the backbone's missing inputs (the empty text, the blank canvas / constant
    image): one row, as :meth:`FeatureTable.rows` returns it for row N."""
    first = torch.zeros(2, dtype=torch.long)
    feats = _padded(
        bundle, _features(backbone, bundle.batch(first, torch.tensor([TEXT_MISSING, IMAGE_MISSING])))
    )
    return {k: (feats[k][0] if k.startswith("text") else feats[k][1]) for k in FEATURE_KEYS}


_MEMO: dict[str, FeatureTable] = {}  # the last table of this process: a sweep's runs share it


def feature_table(backbone, bundle) -> tuple[FeatureTable, str]:
    """(table, key) for ``bundle`` featurised by ``backbone``; blocks load from the disk cache.

    The key covers the bundle's content (labels and columns) and every weight and buffer of the
    backbone, so another backbone, projection or dataset never reads a stale table.
    """
    _require_features(backbone)
    chunk = frozen_chunk(CHUNK)
    key = cache_key(
        what="fedmvp-features",
        dataset=bundle.name,
        rows=len(bundle.labels),
        data=bundle_fingerprint(bundle),
        backbone=type(backbone).__name__,
        weights=frozen_fingerprint(backbone),
        torch=torch.__version__,
        chunk=chunk,
        **({"layout": layout} if (layout := getattr(backbone, "feature_layout", None)) else {}),
    )
    if key not in _MEMO:
        frozen = FrozenTable(
            "fedmvp", key, len(bundle.labels), lambda rows: build_feature_table(backbone, bundle, rows), chunk
        )
        _MEMO.clear()
        _MEMO[key] = FeatureTable(frozen, missing_features(backbone, bundle))
    return _MEMO[key], key


def held_out_rows(bundle, public: np.ndarray | None) -> tuple[np.ndarray, str]:
    """The rows the server may use (retrieval pool, CKA set), and where they come from.

    ``public`` (the server context's held-out split) when given; else the rows that no
    train/val/test split holds (the embedded backbone keeps only those three splits in its
    bundle, so on emoji these are exactly the held-out 25% pretraining split); else, for a
    dataset without held-out rows, the validation split (never a client's data, never test).
    """
    if public is not None and len(public):
        return np.sort(np.asarray(public)), "public"
    used = np.concatenate(
        [np.asarray(bundle.splits[k]) for k in ("train", "val", "test") if k in bundle.splits]
    )
    rest = np.setdiff1d(np.arange(len(bundle.labels)), used)
    if len(rest) >= 2:
        return rest, "held-out"
    warnings.warn(
        f"fedmvp: {bundle.name} has no held-out split; the server uses the validation split as its "
        "retrieval pool and CKA set, so validation scores are optimistic (test scores are not)",
        stacklevel=2,
    )
    return np.sort(np.asarray(bundle.splits["val"])), "val"
