"""Multi-label (MM-IMDb) and binary (Hateful Memes) tasks: metrics against scikit-learn, and one
federated round end to end on tiny data of each kind."""

import numpy as np
import pytest
import torch
from fixtures import tiny_config, tiny_data
from sklearn.metrics import f1_score, roc_auc_score

from fedbench.data.base import MetricSpec
from fedbench.data.registry import DATASETS, DatasetSpec
from fedbench.federation.evaluate import classification_metrics
from fedbench.federation.loop import run_experiment


def test_multilabel_f1s_match_sklearn():
    gen = np.random.default_rng(0)
    probs = gen.random((40, 5))
    target = (gen.random((40, 5)) < 0.3).astype(int)
    target[0] = 0  # a sample with no label
    ours = classification_metrics(torch.tensor(probs), torch.tensor(target), 5, "multilabel")
    hits = (probs >= 0.5).astype(int)
    for avg in ("macro", "micro", "weighted", "samples"):
        assert ours[f"f1_{avg}"] == pytest.approx(
            f1_score(target, hits, average=avg, zero_division=0), abs=1e-6
        )


def test_binary_auroc_matches_sklearn():
    gen = np.random.default_rng(1)
    target = gen.integers(0, 2, 60)
    probs = np.clip(0.3 * target + gen.random(60) * 0.8, 0, 1)
    ours = classification_metrics(torch.tensor(probs, dtype=torch.float32), torch.tensor(target), 2, "binary")
    assert ours["auroc"] == pytest.approx(roc_auc_score(target, probs), abs=1e-6)
    assert ours["accuracy"] == pytest.approx(((probs >= 0.5) == target).mean())


def _multilabel(options, split_seed):
    data = tiny_data(seed=split_seed)
    hot = np.zeros((len(data.labels), 4), dtype=np.int64)
    hot[np.arange(len(hot)), data.labels] = 1
    hot[::3, 3] = 1  # a second label on every third sample
    data.labels, data.label_names, data.metric = (
        hot,
        ["a", "b", "c", "d"],
        MetricSpec("multilabel", "f1_macro"),
    )
    return data


def _binary(options, split_seed):
    data = tiny_data(seed=split_seed)
    data.labels, data.label_names, data.metric = (
        (data.labels == 0).astype(np.int64),
        ["no", "yes"],
        MetricSpec("binary", "auroc"),
    )
    return data


@pytest.mark.parametrize(
    "name, build, metric", [("tiny-multilabel", _multilabel, "f1_macro"), ("tiny-binary", _binary, "auroc")]
)
def test_one_round_on_other_tasks(name, build, metric, tmp_path):
    DATASETS.register(DatasetSpec(name, build, None, "test fixture"))
    cfg = tiny_config(tmp_path, "fedavg", rounds=1)
    cfg.data.dataset = name
    record = run_experiment(cfg)
    assert record["metric"] == metric
    assert 0.0 <= record["final"]["complete"][metric] <= 1.0
    assert record["rounds"][0]["val"][metric] >= 0.0
