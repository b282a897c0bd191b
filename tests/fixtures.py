"""A tiny dataset and backbone with the real code paths: a random 2-layer BERT (saved and loaded
with ``save_pretrained``) inside the real :class:`MiniLMEffNetBackbone`, and a bundle whose text
and image both carry the label, so a few steps of training beat chance."""

from __future__ import annotations

import numpy as np
import torch

from fedbench.backbones.minilm_effnet import MiniLMEffNetBackbone
from fedbench.data.bundle import DataBundle
from fedbench.data.registry import register_dataset

HIDDEN, CELLS, CLASSES = 32, 4, 3


def tiny_backbone(n_images: int = 10, seed: int = 0, save_dir=None) -> MiniLMEffNetBackbone:
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, vocab_size=100, max_position_embeddings=64)
    bert = BertModel(config)
    if save_dir is not None:  # exercise the same save/load path real models take
        bert.save_pretrained(save_dir)
        bert = BertModel.from_pretrained(save_dir)
    bank = torch.randn(n_images + 1, CELLS, HIDDEN)
    return MiniLMEffNetBackbone(bert.eval(), bank)


def tiny_bundle(n: int = 150, seed: int = 0) -> DataBundle:
    gen = np.random.default_rng(seed)
    labels = gen.integers(0, CLASSES, n)
    length = 6
    ids = np.zeros((n, length), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 1, 2  # [CLS] ... [SEP]
    ids[:, 1:-1] = gen.integers(10, 100, (n, length - 2))
    ids[:, 1] = 3 + labels  # a label word
    keep = np.ones((n, length), dtype=bool)
    order = gen.permutation(n)
    splits = {"train": np.sort(order[: n * 6 // 10]), "val": np.sort(order[n * 6 // 10 : n * 8 // 10]), "test": np.sort(order[n * 8 // 10 :])}
    return DataBundle(
        name="tiny", num_classes=CLASSES, label_names=[f"c{i}" for i in range(CLASSES)],
        labels=torch.as_tensor(labels), text_ids=torch.as_tensor(ids), text_keep=torch.as_tensor(keep),
        image=torch.as_tensor(labels * 3 + gen.integers(0, 3, n)),  # images 0..8 tied to the label
        splits=splits,
    )


def register_tiny() -> None:
    register_dataset("tiny", lambda cfg: (tiny_bundle(seed=cfg.split_seed), tiny_backbone(seed=cfg.split_seed)))


def tiny_config(tmp_path, method: str = "fedavg", rounds: int = 2):
    from fedbench.config import ExperimentConfig

    register_tiny()
    cfg = ExperimentConfig()
    cfg.data.dataset = "tiny"
    cfg.method.name = method
    cfg.partition.n_clients = 3
    cfg.partition.min_size = 4
    cfg.federation.rounds = rounds
    cfg.train.batch_size = 16
    cfg.train.lr = 1e-2
    cfg.method.options = {"prompt_length": 2, "prompt_layers": 1} if method in ("fedavg", "fedprox", "local", "centralized") else {}
    cfg.tracking.results_dir = str(tmp_path / "results")
    cfg.tracking.progress = False
    return cfg
