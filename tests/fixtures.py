"""A tiny dataset and backbone with the real code paths: a random 2-layer BERT (saved and loaded
with ``save_pretrained``) inside the real :class:`MiniLMEffNetBackbone`, fed by a ``tiny`` dataset
whose text and image both carry the label, so a few steps of training beat chance. Both are
registered like any plugin's (``DATASETS.register``, ``BACKBONES.register``)."""

from __future__ import annotations

import numpy as np
import torch

from fedbench.backbones.minilm_effnet import MiniLMEffNetBackbone
from fedbench.backbones.registry import BACKBONES, BackboneSpec
from fedbench.data.base import ArrayImages, ModalData
from fedbench.data.registry import DATASETS, DatasetSpec

HIDDEN, CELLS, CLASSES, TEXT_LEN, IMAGE_PX = 32, 4, 3, 6, 4

# the command-line flags of a run on the tiny fixture, rounds left to the caller (register_tiny() first)
TINY_RUN = [
    "--data.dataset",
    "tiny",
    "--backbone.name",
    "tiny",
    "--partition.n_clients",
    "3",
    "--partition.min_size",
    "4",
    "--method.options",
    '{"prompt_length": 2, "prompt_layers": 1}',
    "--tracking.progress",
    "false",
]
# ... and of a one-round run
TINY_CLI = [*TINY_RUN, "--federation.rounds", "1"]


def tiny_data(n: int = 150, seed: int = 0) -> ModalData:
    """Texts are word-id strings ("5 41 77 12") whose first word names the label; images are
    4x4 colour patches, one of 3 per label."""
    gen = np.random.default_rng(seed)
    labels = gen.integers(0, CLASSES, n)
    words = gen.integers(10, 100, (n, TEXT_LEN - 2))
    words[:, 0] = 3 + labels  # a label word
    palette = (
        np.random.default_rng(123).integers(0, 200, (CLASSES * 3, IMAGE_PX, IMAGE_PX, 3)).astype(np.uint8)
    )
    images = palette[labels * 3 + gen.integers(0, 3, n)]
    order = gen.permutation(n)
    splits = {
        "train": np.sort(order[: n * 6 // 10]),
        "val": np.sort(order[n * 6 // 10 : n * 8 // 10]),
        "test": np.sort(order[n * 8 // 10 :]),
    }
    return ModalData(
        name="tiny",
        labels=labels.astype(np.int64),
        label_names=[f"c{i}" for i in range(CLASSES)],
        texts=[" ".join(map(str, w)) for w in words],
        images=ArrayImages(images, key=f"tiny-{seed}"),
        splits=splits,
        fingerprint=f"tiny-{n}-{seed}",
    )


class TinyBackbone(MiniLMEffNetBackbone):
    """The real backbone with a word-id tokenizer and a fixed random projection of the pixels as
    its image tokens (instead of MiniLM's tokenizer and EfficientNet + pretrained projection)."""

    def tokenize(self, texts):
        ids = torch.tensor([[1, *map(int, t.split()), 2] for t in texts])  # [CLS] ... [SEP]
        return ids, torch.ones_like(ids, dtype=torch.bool)

    def build_image_bank(self, data, ids, keep):
        pixels = np.concatenate(
            [data.images.array, np.full_like(data.images.array[:1], 255)]
        )  # + white canvas
        flat = torch.as_tensor(pixels.reshape(len(pixels), -1), dtype=torch.float32) / 255.0
        proj = torch.randn(flat.shape[1], CELLS * HIDDEN, generator=torch.Generator().manual_seed(7))
        return (flat @ proj / flat.shape[1] ** 0.5).reshape(len(pixels), CELLS, HIDDEN)


def tiny_bert(seed: int = 0, save_dir=None):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    # initializer_range 0.2, not BERT's 0.02: at 0.02 two random layers keep the [CLS] state nearly
    # constant across samples (spread 0.002 of its scale; a linear probe is at chance), so no method
    # could learn and a broken one would pass; at 0.2 a probe of the read-out reads the label
    config = BertConfig(
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=64,
        initializer_range=0.2,
    )
    bert = BertModel(config)
    if save_dir is not None:  # exercise the same save/load path real models take
        bert.save_pretrained(save_dir)
        bert = BertModel.from_pretrained(save_dir)
    return bert.eval()


def tiny_pair(seed: int = 0, save_dir=None):
    """(bundle, backbone) of the tiny dataset featurised by the tiny backbone."""
    backbone = TinyBackbone(tiny_bert(seed, save_dir))
    return backbone.featurize(tiny_data(seed=seed)), backbone


def tiny_backbone(seed: int = 0, save_dir=None) -> TinyBackbone:
    return tiny_pair(seed, save_dir)[1]


def tiny_bundle(seed: int = 0):
    return tiny_pair(seed)[0]


def register_tiny() -> None:
    DATASETS.register(
        DatasetSpec("tiny", lambda options, split_seed: tiny_data(seed=split_seed), None, "test fixture")
    )
    BACKBONES.register(
        BackboneSpec(
            "tiny",
            lambda options: TinyBackbone(tiny_bert(0)),
            None,
            "test fixture: 2-layer random BERT",
            capabilities=frozenset({"prompts", "multimodal", "text_tokens", "modality_features"}),
        )
    )


def tiny_config(tmp_path, method: str = "fedavg", rounds: int = 2):
    from fedbench.config import ExperimentConfig
    from fedbench.methods.registry import get_method

    register_tiny()
    cfg = ExperimentConfig()
    cfg.data.dataset = "tiny"
    cfg.backbone.name = "tiny"
    cfg.method.name = method
    cfg.partition.n_clients = 3
    cfg.partition.min_size = 4
    cfg.federation.rounds = rounds
    cfg.train.batch_size = 16
    cfg.train.lr = 1e-2
    cfg.method.options = get_method(method).options_for_tests()
    cfg.tracking.results_dir = str(tmp_path / "results")
    cfg.tracking.progress = False
    return cfg


def hashed(record: dict) -> dict:
    """``record`` with the run id a real run of its identity has (``config_hash`` of the identity,
    as ``fedbench.federation.loop.run_id_of`` computes it): hand-made records must pass the board's
    run-id check like real ones."""
    from fedbench.tracking.records import config_hash, record_identity

    record["run_id"] = config_hash(record_identity(record))
    return record
