"""Every registered method runs one round end to end on the tiny fixture and writes a record."""

import math

import pytest

from fedbench.config import TEST_CONDITIONS
from fedbench.federation.loop import run_experiment
from fedbench.methods.registry import available


@pytest.mark.parametrize("method", available())
def test_one_round_of_every_method(method, tiny_cfg):
    cfg = tiny_cfg(method, rounds=1)
    record = run_experiment(cfg)
    assert record["method"] == method
    assert set(record["final"]) == set(TEST_CONDITIONS)
    for metrics in record["final"].values():
        assert 0.0 <= metrics["accuracy"] <= 1.0
    assert len(record["rounds"]) == 1
    assert record["rounds"][0]["bytes_up"] > 0 or method == "local"
    assert math.isfinite(record["rounds"][0]["train_loss"])
    assert record["personalized"]["accuracy"] >= 0.0
