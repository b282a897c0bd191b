"""A dataset large enough for memory to matter (20,000 images, at 224 px 3.0 GB of decoded pixels),
built from a few hundred small encoded images, for tests that measure a process's peak memory.

Run as a script in a fresh process (``python tests/real_size_fixture.py featurize|smoke CACHE``),
it prints that process's peak resident size in bytes after the step.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np

ROWS, SIZE, DISTINCT = 20_000, 224, 97


class Blobs:
    """ROWS encoded PNGs cycling through DISTINCT small images (only DISTINCT are held)."""

    def __init__(self):
        from PIL import Image

        rng = np.random.default_rng(0)
        self.distinct = []
        for _ in range(DISTINCT):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (8, 12, 3), dtype=np.uint8)).save(buf, format="PNG")
            self.distinct.append(buf.getvalue())

    def __len__(self):
        return ROWS

    def __getitem__(self, i):
        return self.distinct[int(i) % DISTINCT]

    def name(self, i):
        return f"row {i}"


def build_big(options, split_seed):
    from fedbench.data.base import ModalData
    from fedbench.data.sources import EncodedImages

    labels = np.arange(ROWS) % 4
    order = np.random.default_rng(split_seed).permutation(ROWS)
    splits = {
        "train": np.sort(order[:16_000]),
        "val": np.sort(order[16_000:18_000]),
        "test": np.sort(order[18_000:]),
    }
    return ModalData(
        name="big",
        labels=labels,
        label_names=[f"c{i}" for i in range(4)],
        texts=["1 2 3"] * ROWS,
        images=EncodedImages(Blobs(), key="big", origin_key="big-origin"),
        splits=splits,
        fingerprint="big",
    )


def register() -> None:
    from dataclasses import dataclass

    from fedbench.data.registry import DATASETS, DatasetSpec

    @dataclass
    class NoOptions:
        def validate(self):
            pass

    DATASETS.register(DatasetSpec("big", build_big, NoOptions, "20,000 small images for memory tests"))


def main(step: str, results: str) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from hf_fixtures import register_hf_tiny

    from fedbench.hardware import peak_rss_bytes

    register()
    register_hf_tiny()
    if step == "featurize":
        from fedbench.backbones.registry import BACKBONES
        from fedbench.data.registry import DATASETS
        from fedbench.registry import build_options

        spec = BACKBONES.get("vit-tiny")
        backbone = spec.build(build_options(spec.options, {"image_size": SIZE}, "backbone.options"))
        bundle = backbone.featurize(DATASETS.get("big").build(None, 0))
        assert tuple(bundle.columns["pixels"].shape) == (ROWS, 3, SIZE, SIZE)
    else:
        from fedbench.config import ExperimentConfig
        from fedbench.federation.loop import run_experiment

        cfg = ExperimentConfig()
        cfg.data.dataset, cfg.backbone.name, cfg.backbone.options = "big", "vit-tiny", {"image_size": SIZE}
        cfg.method.name, cfg.missing.rate, cfg.missing.type = "fedavg-pt", 0.0, "text"
        cfg.partition.n_clients, cfg.tracking.results_dir, cfg.tracking.progress = 4, results, False
        from fedbench.methods.registry import get_method

        cfg.method.options = get_method("fedavg-pt").options_for_tests()
        assert run_experiment(cfg, smoke=True)["smoke"]["status"] == "ok"
    print(peak_rss_bytes())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
