"""The real embedded benchmark, end to end: OpenMoji renders, EfficientNet-Lite0 features, the
pretrained projection, frozen MiniLM, two FedAvg rounds. Slow on first use (it builds the cache,
about two minutes on 2 cores); it is the test that shows the whole stack learns."""

import numpy as np
import pytest

from fedbench.config import ExperimentConfig
from fedbench.federation.loop import run_experiment
from fedbench.federation.parts import featurized
from fedbench.federation.resolve import resolve

pytestmark = pytest.mark.slow


def test_emoji_bundle_is_sane():
    cfg = ExperimentConfig()
    bundle, backbone = featurized(resolve(cfg))
    splits = bundle.splits
    assert set(splits) == {"train", "val", "test", "pretrain"}
    all_idx = np.concatenate(list(splits.values()))
    assert len(all_idx) == len(set(all_idx.tolist()))  # disjoint
    assert bundle.num_classes == 9
    assert backbone.image_bank.shape[0] == len(bundle.labels) + 1  # plus the blank canvas
    # the projection was pretrained on held-out emoji and retrieves its own texts well
    assert bundle.info["projection"]["retrieval_top1"] > 0.5
    assert bundle.info["n_pretrain"] > 300


def test_fedavg_learns_on_emoji(tmp_path):
    cfg = ExperimentConfig()
    cfg.federation.rounds = 2
    cfg.missing.rate = 0.1
    cfg.tracking.results_dir = str(tmp_path)
    cfg.tracking.progress = False
    record = run_experiment(cfg)
    majority = record["majority_rate"]
    assert majority < 0.3
    assert record["final"]["as_train"]["accuracy"] > 2 * majority
    assert record["final"]["complete"]["accuracy"] > record["final"]["text_only"]["accuracy"] - 0.05
