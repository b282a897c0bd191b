"""Every registered method runs one round end to end on every registered backbone that supports it
(on the backbone's tiny test stand-in), with the options the method declares for tests."""

import math

import pytest
from fixtures import register_tiny
from hf_fixtures import STAND_INS as HF_STAND_INS
from hf_fixtures import register_hf_tiny

from fedbench.backbones.registry import BACKBONES
from fedbench.batch import TEST_CONDITIONS
from fedbench.federation.loop import run_experiment
from fedbench.methods.registry import METHODS

register_tiny()
register_hf_tiny()
# a backbone whose real weights are too large for a unit test is exercised through a tiny model of
# the same class, registered by the fixtures
STAND_INS = {
    "embedded": "tiny",
    "synthetic": "tiny",
    **HF_STAND_INS,
}  # synthetic: the embedded MiniLM (own test in test_many_clients)
PAIRS = sorted(
    {
        (m, STAND_INS.get(b, b))
        for m in METHODS.names()
        for b in BACKBONES.names()
        if METHODS.get(m).supports(BACKBONES.get(b))
    }
)


@pytest.mark.parametrize("method, backbone", PAIRS)
def test_one_round_of_every_method_on_every_backbone(method, backbone, tiny_cfg):
    cfg = tiny_cfg(method, rounds=1)
    cfg.backbone.name = backbone
    record = run_experiment(cfg)
    assert record["method"] == method and record["backbone"] == backbone
    assert set(record["final"]) == set(TEST_CONDITIONS)
    for metrics in record["final"].values():
        assert 0.0 <= metrics["accuracy"] <= 1.0
    assert len(record["rounds"]) == 1
    assert record["rounds"][0]["bytes_up"] > 0 or METHODS.get(method).local_only
    assert math.isfinite(record["rounds"][0]["train_loss"])
    assert 0 < record["rounds"][0]["seconds"] <= record["wall_time_s"]  # the round's own time
    assert record["personalized"]["accuracy"] >= 0.0
