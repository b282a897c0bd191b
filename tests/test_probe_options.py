"""The two probe settings of docs/ppt.md and docs/fedmvp.md: FedAvg-PT without prompts
(``n_tokens=0``: the adaptor head alone on the frozen read-out) and FedMVP without joint layers
(``joint_layers=0``: the cross-attention fusion alone)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixtures import tiny_config, tiny_pair

from fedbench.batch import TEXT_MISSING
from fedbench.data.loader import make_loader
from fedbench.errors import ConfigError
from fedbench.methods.base import TrainSettings
from fedbench.methods.prompt_baselines.vpt import VPTModule, VPTOptions


@pytest.fixture(scope="module")
def tiny():
    return tiny_pair()


def test_fedavg_pt_without_prompts_is_its_head_on_the_unprompted_readout(tiny):
    bundle, backbone = tiny
    torch.manual_seed(0)
    module = VPTModule(backbone, bundle.num_classes, TrainSettings(), VPTOptions(n_tokens=0, adaptor_width=8))
    module.eval()
    assert module.prompts.numel() == 0
    index = np.sort(bundle.splits["train"])[:16]
    batch = next(
        iter(
            make_loader(
                bundle, index, np.full(16, TEXT_MISSING, np.int8), batch_size=16, shuffle=False, seed=0
            )
        )
    )
    with torch.no_grad():
        tokens, keep = backbone.embed(batch)
        cls = backbone.run_layers(tokens, keep)[:, 0]  # the un-prompted backbone's first token, by hand
        by_hand = module.head(cls)
        torch.testing.assert_close(module(batch), by_hand)


def test_negative_prompt_counts_are_still_refused():
    with pytest.raises(ConfigError, match="method.options.n_tokens"):
        VPTOptions(n_tokens=-1).validate()


@pytest.mark.parametrize(
    ("method", "options"),
    [("fedavg-pt", {"n_tokens": 0}), ("fedmvp", {"joint_layers": 0})],
)
def test_the_probes_train_and_keep_what_they_should(tmp_path, method, options):
    from fedbench.federation.loop import run_experiment

    cfg = tiny_config(tmp_path, method, rounds=1)
    cfg.method.options = {**cfg.method.options, **options}
    cfg.train.threads = 1
    record = run_experiment(cfg)
    assert record["status"] == "ok" and np.isfinite(record["rounds"][0]["train_loss"])
    assert record["config"]["method"]["options"] == cfg.method.options


def test_fedmvp_without_joint_layers_builds_none(tiny):
    from fedbench.methods.fedmvp import TEST_OPTIONS
    from fedbench.methods.fedmvp.client import FedMVPModule
    from fedbench.methods.fedmvp.config import FedMVPOptions

    bundle, backbone = tiny
    make = lambda layers: FedMVPModule(  # noqa: E731
        backbone,
        bundle.num_classes,
        TrainSettings(),
        FedMVPOptions(**{**TEST_OPTIONS, "joint_layers": layers}),
    )
    with_layers, without = make(1).trainable_state(), make(0).trainable_state()
    assert any(".layers.0." in k for k in with_layers)
    assert not any(".layers." in k for k in without)
    assert set(without) == {k for k in with_layers if ".layers." not in k}


def test_joint_layers_below_zero_are_refused():
    from fedbench.methods.fedmvp.config import FedMVPOptions

    with pytest.raises(ConfigError, match="method.options.joint_layers"):
        FedMVPOptions(joint_layers=-1).validate()
