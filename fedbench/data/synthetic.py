"""``synthetic``: seeded multimodal data of any size with a clear signal per class, for scale tests
only (10,000 clients need 10,000 training samples; no real dataset here has them offline).

Each sample's text is a few words, one of which names its class (with probability ``signal``, else
a random class's word), among noise words; its image is a small RGB patch: the class's colour
pattern plus uniform noise. Both modalities predict the label, so missing one hurts and a few
steps of training beat chance. Features come from ``seed`` (the same data for every split seed),
the train/val/test split from the run's split seed. Pair it with the ``synthetic`` backbone
(the embedded transformer with a cheap image path); it is not a benchmark of anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedbench.data.base import ArrayImages, ModalData
from fedbench.data.registry import DatasetSpec, register_dataset
from fedbench.errors import ConfigError
from fedbench.seeds import rng

# single word pieces of MiniLM's vocabulary: the first ``num_classes`` name classes, the rest is noise
WORDS = (
    "red",
    "blue",
    "green",
    "black",
    "white",
    "brown",
    "pink",
    "gray",
    "gold",
    "silver",
    "apple",
    "river",
    "stone",
    "cloud",
    "horse",
    "bread",
    "chair",
    "glass",
    "paper",
    "table",
    "music",
    "train",
    "light",
    "water",
    "house",
    "field",
    "night",
    "plant",
    "metal",
    "sugar",
    "king",
    "ship",
    "door",
    "road",
    "snow",
    "fire",
    "wind",
    "tree",
    "bird",
    "fish",
)
MAX_CLASSES = 20
IMAGE_PX = 4


@dataclass
class SyntheticOptions:
    """n_train, n_val, n_test: split sizes; num_classes: up to 20; signal: probability that a text
    names its own class; image_noise: uniform pixel noise in [0, 1] of the range; words: per text;
    seed: the features' seed."""

    n_train: int = 10_000
    n_val: int = 200
    n_test: int = 200
    num_classes: int = 10
    signal: float = 0.9
    image_noise: float = 0.5
    words: int = 5
    seed: int = 0

    def validate(self) -> None:
        for name in ("n_train", "n_val", "n_test"):
            if getattr(self, name) < 1:
                raise ConfigError(f"data.options.{name}: must be >= 1, got {getattr(self, name)}")
        if not 2 <= self.num_classes <= MAX_CLASSES:
            raise ConfigError(f"data.options.num_classes: {self.num_classes} is outside [2, {MAX_CLASSES}]")
        for name in ("signal", "image_noise"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"data.options.{name}: must be in [0, 1], got {getattr(self, name)}")
        if not 1 <= self.words <= 30:
            raise ConfigError(f"data.options.words: {self.words} is outside [1, 30] (try 5)")


def build_synthetic(options: SyntheticOptions, split_seed: int) -> ModalData:
    o, k = options, options.num_classes
    n = o.n_train + o.n_val + o.n_test
    gen = rng(o.seed, "synthetic", "features")
    labels = gen.integers(0, k, n)
    named = np.where(gen.random(n) < o.signal, labels, gen.integers(0, k, n))
    words = gen.integers(MAX_CLASSES, len(WORDS), (n, o.words))
    words[np.arange(n), gen.integers(0, o.words, n)] = named  # the class word at a random position
    vocab = np.asarray(WORDS)
    texts = [" ".join(row) for row in vocab[words]]
    palette = rng(o.seed, "synthetic", "palette").random((k, IMAGE_PX, IMAGE_PX, 3))
    pixels = (1 - o.image_noise) * palette[labels] + o.image_noise * gen.random((n, IMAGE_PX, IMAGE_PX, 3))
    images = np.round(pixels * 255).astype(np.uint8)
    order = rng(split_seed, "synthetic", "split").permutation(n)
    cut = np.cumsum([o.n_train, o.n_val])
    splits = {
        "train": np.sort(order[: cut[0]]),
        "val": np.sort(order[cut[0] : cut[1]]),
        "test": np.sort(order[cut[1] :]),
    }
    tag = (
        f"synthetic-{o.n_train}-{o.n_val}-{o.n_test}-{k}-{o.signal}-"
        f"{o.image_noise}-{o.words}-{o.seed}-{split_seed}"
    )
    return ModalData(
        name="synthetic",
        labels=labels.astype(np.int64),
        label_names=list(WORDS[:k]),
        texts=texts,
        images=ArrayImages(images, key=tag),
        splits=splits,
        fingerprint=tag,
        info={"synthetic": "scale tests only"},
    )


register_dataset(
    DatasetSpec(
        "synthetic",
        build_synthetic,
        SyntheticOptions,
        "seeded synthetic text + image patches of any size (scale tests only)",
    )
)
