"""FedMVP's frozen features of every bundle row, computed once per (dataset, backbone) and cached.

The official FedMVP runs its frozen ViT and BERT inside every forward. Here they are frozen for
the whole run, so the backbone runs once per row (``modality_features``: each modality through
the transformer on its own) and client fits only gather rows: on emoji that is 20 s once instead
of a MiniLM pass per batch, and the cache makes it 20 s once per machine.

The table has one extra last row, the backbone's *missing inputs* (an empty text ``[CLS][SEP]``
and the blank canvas on the embedded backbone): what ``impute`` fills in and what a missing
modality becomes under ``none`` at evaluation.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fedbench.backbones.cache import cache_dir, cache_key, cached
from fedbench.batch import COMPLETE, IMAGE_MISSING, TEXT_MISSING
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


@dataclass(frozen=True)
class FeatureTable:
    """Frozen features of N bundle rows plus the missing-input row (index N).

    text, image: [N + 1, H] pooled vectors; text_tokens [N + 1, L, H] with text_pad [N + 1, L]
    (True = padding); image_tokens [N + 1, G, H].
    """

    text: Tensor
    image: Tensor
    text_tokens: Tensor
    text_pad: Tensor
    image_tokens: Tensor

    @property
    def missing_row(self) -> int:
        return self.text.shape[0] - 1

    def inputs(
        self, text_rows: Tensor, image_rows: Tensor, device: torch.device | None = None
    ) -> dict[str, Tensor]:
        """:meth:`FedMVPNetwork.forward`'s keyword arguments for samples whose text comes from
        ``text_rows`` and image from ``image_rows``; text tokens trimmed to the batch's longest."""
        pad = self.text_pad[text_rows]
        width = max(int((~pad).sum(1).max()), 1) if len(pad) else 1
        out = {
            "text": self.text[text_rows],
            "image": self.image[image_rows],
            "text_tokens": self.text_tokens[text_rows, :width],
            "text_pad": pad[:, :width],
            "image_tokens": self.image_tokens[image_rows],
        }
        return out if device is None else {k: v.to(device) for k, v in out.items()}

    def to_dict(self) -> dict[str, Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any, rows: int | None = None) -> FeatureTable:
        """Rebuild from :meth:`to_dict`; ValueError unless it is a table of ``rows`` + 1 rows."""
        if not isinstance(data, dict) or set(data) != set(FEATURE_KEYS):
            raise ValueError("not a FedMVP feature table")
        if not all(isinstance(data[k], Tensor) and data[k].ndim >= 2 for k in FEATURE_KEYS):
            raise ValueError("feature table entries must be tensors of rows")
        n = {data[k].shape[0] for k in FEATURE_KEYS}
        if len(n) != 1 or (rows is not None and n != {rows + 1}) or data["text_pad"].dtype != torch.bool:
            raise ValueError("feature table rows disagree")
        if not all(bool(torch.isfinite(data[k]).all()) for k in FEATURE_KEYS if k != "text_pad"):
            raise ValueError("feature table has non-finite values")
        return cls(**{k: data[k] for k in FEATURE_KEYS})


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
def build_feature_table(backbone, bundle, chunk: int = 256) -> FeatureTable:
    """Run ``backbone.modality_features`` over every row of ``bundle`` (all complete), then once
    with each modality missing for the missing-input row. A backbone may return pooled ``text``
    and ``image`` only; token sequences are then the pooled vectors as one token."""
    _require_features(backbone)
    n = len(bundle.labels)
    width = int(bundle.columns[bundle.padded[0]].shape[1]) if bundle.padded else None
    parts: dict[str, list[Tensor]] = {k: [] for k in FEATURE_KEYS}

    def add(feats: dict[str, Tensor]) -> None:
        feats = dict(feats)  # a backbone with pooled vectors only: each is a one-token sequence
        feats.setdefault("text_tokens", feats["text"][:, None])
        feats.setdefault("text_pad", torch.zeros(feats["text_tokens"].shape[:2], dtype=torch.bool))
        feats.setdefault("image_tokens", feats["image"][:, None])
        for key in FEATURE_KEYS:
            value = feats[key].detach().cpu()
            if key in ("text_tokens", "text_pad") and width is not None and value.shape[1] < width:
                fill = (
                    (0, 0, 0, width - value.shape[1]) if key == "text_tokens" else (0, width - value.shape[1])
                )
                value = torch.nn.functional.pad(value, fill, value=True if key == "text_pad" else 0.0)
            parts[key].append(value.float() if value.is_floating_point() else value)

    device = next(iter(backbone.buffers()), torch.zeros(())).device
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(n, start + chunk))
        batch = bundle.batch(rows, torch.full((len(rows),), COMPLETE, dtype=torch.long))
        add(backbone.modality_features({k: v.to(device) for k, v in batch.items()}))
    first = torch.zeros(2, dtype=torch.long)
    missing = bundle.batch(first, torch.tensor([TEXT_MISSING, IMAGE_MISSING]))
    feats = backbone.modality_features({k: v.to(device) for k, v in missing.items()})
    add({k: feats[k][:1] if k.startswith("text") else feats[k][1:] for k in FEATURE_KEYS})
    table = {k: torch.cat(v) for k, v in parts.items()}
    keep_width = max(int((~table["text_pad"]).sum(1).max()), 1)  # drop columns that are padding everywhere
    table["text_tokens"] = table["text_tokens"][:, :keep_width].contiguous()
    table["text_pad"] = table["text_pad"][:, :keep_width].contiguous()
    return FeatureTable(**table)


def tensor_digest(*tensors: Tensor) -> str:
    """A content hash of tensors (shapes, dtypes and bytes), for cache keys."""
    h = hashlib.blake2b(digest_size=12)
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes())
    return h.hexdigest()


_MEMO: dict[str, FeatureTable] = {}  # the last table of this process: a sweep's runs share it


def feature_table(backbone, bundle) -> tuple[FeatureTable, str]:
    """(table, key) for ``bundle`` featurised by ``backbone``, from the disk cache when present.

    The key covers the bundle's content (labels and columns) and every weight and buffer of the
    backbone, so another backbone, projection or dataset never reads a stale table.
    """
    _require_features(backbone)
    key = cache_key(
        what="fedmvp-features",
        dataset=bundle.name,
        rows=len(bundle.labels),
        data=tensor_digest(bundle.labels, *(bundle.columns[k] for k in sorted(bundle.columns))),
        backbone=type(backbone).__name__,
        weights=tensor_digest(*backbone.state_dict().values()),
        torch=torch.__version__,
    )
    if key not in _MEMO:
        path = cache_dir() / "fedmvp" / f"features-{key}.pt"
        n = len(bundle.labels)
        data = cached(
            path,
            lambda: build_feature_table(backbone, bundle).to_dict(),
            valid=lambda d: FeatureTable.from_dict(d, n) is not None,
        )
        _MEMO.clear()
        _MEMO[key] = FeatureTable.from_dict(data, n)
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
