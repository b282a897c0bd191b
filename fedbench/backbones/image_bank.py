"""The embedded backbone's image-token bank for one dataset: frozen, deterministic, cached.

Pipeline: every image (plus a white canvas, the missing-image placeholder) -> frozen
EfficientNet-Lite0 grid features -> a projection into MiniLM's width, pretrained with InfoNCE on
the dataset's held-out ``pretrain`` split only (no federated client ever sees it), then frozen ->
one bank row per image. The first build takes about two minutes on 2 cores; later runs load the
cache (``FEDBENCH_CACHE``), keyed by the dataset's content, the backbone's options and versions.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from fedbench.backbones.image_features import extract_grid_features
from fedbench.cache.folder import cache_dir, cache_key, cached
from fedbench.data.base import ModalData
from fedbench.errors import ConfigError

log = logging.getLogger(__name__)

BUILD_THREADS = 2  # the same bits whichever command (and thread setting) builds the cache
PRETRAIN_SPLITS = ("pretrain", "public")


def all_images(data: ModalData) -> np.ndarray:
    """Every image of ``data`` as uint8 [N, S, S, 3]; rows without an image get the white canvas."""
    load_all = getattr(data.images, "load_all", None)
    if load_all is not None:
        return load_all()
    first = next((im for im in (data.images[i] for i in range(len(data.images))) if im is not None), None)
    if first is None:
        raise ConfigError(f"data.dataset: {data.name} has no images; the embedded backbone needs some")
    return np.stack(
        [
            data.images[i] if data.images[i] is not None else np.full_like(first, 255)
            for i in range(len(data.images))
        ]
    )


def embedded_image_bank(
    backbone, data: ModalData, ids: torch.Tensor, keep: torch.Tensor
) -> tuple[torch.Tensor, dict[str, Any]]:
    """([N + 1, cells, H] bank, diagnostics) for ``data``; see the module docstring."""
    from fedbench.backbones.projection import pretrain_projection

    split = next((s for s in PRETRAIN_SPLITS if s in data.splits), None)
    if split is None:
        raise ConfigError(
            "backbone.name: embedded pretrains its image projection on a held-out 'pretrain' split, which "
            f"{data.name} lacks; give the dataset one or choose another backbone"
        )
    pre = torch.as_tensor(np.asarray(data.splits[split]))
    opts = backbone.options
    key = cache_key(
        what="embedded-image-bank",
        data=data.fingerprint,
        images=data.images.key,
        n=len(data),
        split=split,
        epochs=opts.pretrain_epochs,
        seed=opts.pretrain_seed,
        text_tokens=opts.max_text_tokens,
        hidden=backbone.hidden_size,
        torch=torch.__version__,
    )

    def build() -> dict:
        log.info("building the image bank of %s (first run only, about two minutes)", data.name)
        threads = torch.get_num_threads()
        torch.set_num_threads(BUILD_THREADS)
        try:
            images = all_images(data)
            images = np.concatenate([images, np.full_like(images[:1], 255)])
            with torch.random.fork_rng():
                feats = extract_grid_features(images)
                proj, diag = pretrain_projection(
                    backbone,
                    feats[pre],
                    ids[pre],
                    keep[pre],
                    epochs=opts.pretrain_epochs,
                    seed=opts.pretrain_seed,
                )
                with torch.no_grad():
                    bank = torch.cat([proj(f) for f in feats.split(256)])
            return {"bank": bank, "diagnostics": diag}
        finally:
            torch.set_num_threads(threads)

    def is_bank(obj) -> bool:  # a file that loads but holds something else is rebuilt, not used
        bank = obj.get("bank") if isinstance(obj, dict) else None
        return (
            isinstance(bank, torch.Tensor)
            and bank.ndim == 3
            and bank.shape[0] == len(data) + 1
            and bank.shape[2] == backbone.hidden_size
            and bool(torch.isfinite(bank).all())
            and isinstance(obj.get("diagnostics"), dict)
        )

    art = cached(cache_dir() / f"image_bank_{key}.pt", build, valid=is_bank)
    return art["bank"], {"projection": art["diagnostics"], "n_pretrain": int(len(pre))}
