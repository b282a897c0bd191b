"""FedMSplit on missing-aware prompts: attention weights, personalised mixes and the client's start
and proximal anchor, against numbers worked out by hand (methods.md §7)."""

import math

import numpy as np
import torch

from fedbench.federation.loop import run_experiment
from fedbench.methods.base import ClientUpdate, TrainSettings
from fedbench.methods.fedmsplit import FedMSplitAggregator, FedMSplitModule, FedMSplitOptions
from fedbench.methods.fedmsplit.server import attention, mixing_weights, personalise


def state(prompt_rows, pooler, head):
    """prompts [3, 1, 1, 2] from three 2-vectors; pooler and head one tensor each."""
    return {
        "prompts": torch.tensor(prompt_rows, dtype=torch.float64).reshape(3, 1, 1, 2),
        "pooler.dense.bias": torch.tensor(pooler, dtype=torch.float64),
        "head.net.3.bias": torch.tensor(head, dtype=torch.float64),
    }


A = state([[1, 0], [0, 2], [1, 1]], [2.0], [1.0, 0.0])
B = state([[0, 1], [0, 0], [2, 0]], [1.0], [0.0, 3.0])


def softmax_row(scores):
    e = np.exp(np.asarray(scores) - max(scores))
    return e / e.sum()


def test_attention_and_mixing_by_hand():
    att = attention([A, B])
    # complete prompts (1,0) and (0,1), d = 2: scores row A [1, 0]/sqrt2, row B [0, 1]/sqrt2
    assert np.allclose(att["complete"][0], softmax_row([1 / math.sqrt(2), 0]))
    assert np.allclose(att["complete"][1], softmax_row([0, 1 / math.sqrt(2)]))
    assert np.allclose(att["missing_image"][0], softmax_row([4 / math.sqrt(2), 0]))
    assert np.allclose(att["missing_image"][1], [0.5, 0.5])  # B's set is zero: all scores 0
    assert np.allclose(att["missing_text"][0], softmax_row([2 / math.sqrt(2), 2 / math.sqrt(2)]))
    assert np.allclose(att["pooler"][0], softmax_row([4, 2]))  # d = 1
    assert np.allclose(att["head"][1], softmax_row([0, 9 / math.sqrt(2)]))
    w = mixing_weights(att)
    s = np.mean(
        [att[m].numpy() for m in ("complete", "missing_image", "missing_text", "pooler", "head")], axis=0
    )
    for m in att:
        raw = att[m].numpy() * s
        assert np.allclose(w[m].numpy(), raw / raw.sum(1, keepdims=True))
    mix_a = personalise([A, B], w, 0)
    wc = w["complete"][0].numpy()
    assert np.allclose(mix_a["prompts"][0].flatten(), wc[0] * np.array([1, 0]) + wc[1] * np.array([0, 1]))
    wp = w["pooler"][0].numpy()
    assert np.allclose(mix_a["pooler.dense.bias"], wp[0] * 2.0 + wp[1] * 1.0)


def test_aggregator_keeps_mixes_per_client_and_returns_the_fedavg():
    agg = FedMSplitAggregator(FedMSplitOptions())
    assert agg.configure_fit(0, [0, 1], A) == {}  # nobody has a mix yet: start from the global state
    out = agg.aggregate(A, [ClientUpdate(3, A, 1), ClientUpdate(5, B, 3)], 0, 0)
    assert torch.allclose(out["pooler.dense.bias"], torch.tensor([1.25], dtype=torch.float64))  # (2 + 3) / 4
    payload = agg.configure_fit(1, [3, 9], out)
    assert set(payload) == {3}  # client 9 never took part
    w = mixing_weights(attention([A, B]))
    assert torch.allclose(
        payload[3]["start"]["head.net.3.bias"], personalise([A, B], w, 0)["head.net.3.bias"]
    )
    assert 0.5 < agg.metadata()["fedmsplit_self_weight"] < 1.0
    restored = FedMSplitAggregator(FedMSplitOptions())
    restored.load_server_state(agg.server_state())
    assert restored.personal.keys() == agg.personal.keys()
    assert all(
        torch.equal(restored.personal[c][k], agg.personal[c][k])
        for c in agg.personal
        for k in agg.personal[c]
    )


def test_client_starts_from_its_mix_and_is_pulled_towards_it():
    from fixtures import tiny_backbone

    module = FedMSplitModule(
        tiny_backbone(),
        3,
        TrainSettings(),
        FedMSplitOptions(prompt_length=2, prompt_layers=1, prox_lambda=0.5),
    )
    mix = {k: v + 1.0 for k, v in module.trainable_state().items()}
    module.on_round_start({k: torch.zeros_like(v) for k, v in mix.items()}, 1, {"start": mix})
    assert torch.equal(module.prompts.detach(), mix["prompts"])
    with torch.no_grad():
        module.prompts.add_(2.0)  # drift away from the mix by 2 on every entry
    extra = module.extra_loss({}, None)
    assert math.isclose(float(extra), 0.5 / 2 * 4.0 * mix["prompts"].numel(), rel_tol=1e-6)


def test_fedmsplit_runs_two_rounds_with_personal_starts(tiny_cfg):
    record = run_experiment(tiny_cfg("fedmsplit", rounds=2))
    assert [r["round"] for r in record["rounds"]] == [1, 2]
    assert all(0 < r["fedmsplit_self_weight"] <= 1 for r in record["rounds"])
