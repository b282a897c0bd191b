"""Per-round diagnostics: prompts used per missing code, merged over clients, and W_q drift.

Retrieval on a hand-built batch: identity query projections and pool rows along axes, so each
sample's top prompts are the axes of its largest coordinates (inter) and most negative ones
(intra), read off by hand.
"""

import math

import torch
from test_fedprime import axis, axis_module, batch_of

from fedbench.methods.fedprime.diagnostics import UsageTracker, usage_summary


def test_usage_per_missing_code_on_a_hand_built_batch():
    module = axis_module(kappa=2)
    module.on_round_start({}, 0)
    module.train()
    batch = batch_of(
        [
            axis((0, 3), (1, 2), (5, -4), (6, -1)),  # complete: inter {0, 1}, intra {5, 6}
            axis((1, 3), (2, 2), (5, -3), (7, -2)),  # text missing: inter {1, 2}, intra {5, 7}
            axis((3, 3), (4, 2), (0, -3), (1, -2)),  # image missing: inter {3, 4}, intra {0, 1}
            axis((1, 3), (0, 2), (6, -3), (5, -2)),  # complete: inter {0, 1}, intra {5, 6}
        ]
    )
    batch["code"] = torch.tensor([0, 1, 2, 0])
    module(batch)
    usage = module.round_metadata()["usage"]
    assert usage["inter"] == {"0": [0, 1], "1": [1, 2], "2": [3, 4]}
    assert usage["intra"] == {"0": [5, 6], "1": [5, 7], "2": [0, 1]}
    summary = usage_summary([module.round_metadata()], ("intra", "inter"))
    assert summary["inter_used_complete"] == 2 and summary["inter_used_text_missing"] == 2
    assert summary["inter_used_all"] == 5 and summary["inter_used_shared"] == 1  # prompt 1: two codes
    assert summary["intra_used_all"] == 5 and summary["intra_used_shared"] == 1  # prompt 5
    assert summary["inter_query_drift"] == 0.0  # nothing trained yet
    module.eval()
    module(batch)  # evaluation does not count
    assert module.round_metadata()["usage"] == usage


def test_summary_merges_clients_and_averages_drift():
    a, b = UsageTracker(("inter",)), UsageTracker(("inter",))
    a.record("inter", torch.tensor([[0, 1], [2, 3]]), torch.tensor([0, 1]))
    b.record("inter", torch.tensor([[0, 4]]), torch.tensor([1]))
    metas = [
        {"usage": a.as_meta(), "query_drift": {"inter": [3.0, 10.0]}},
        {"usage": b.as_meta(), "query_drift": {"inter": [1.0, 20.0]}},
    ]
    out = usage_summary(metas, ("intra", "inter"))
    # complete {0, 1}; text missing {2, 3} | {0, 4} = {0, 2, 3, 4}; all {0..4}; prompt 0 in both codes
    assert out == {
        "inter_used_complete": 2,
        "inter_used_text_missing": 4,
        "inter_used_all": 5,
        "inter_used_shared": 1,
        "inter_used_per_client": 3.0,  # client a: 4 distinct, client b: 2
        "inter_query_drift": 2.0,
        "inter_query_drift_rel": (0.3 + 0.05) / 2,
    }
    assert not any(k.startswith("intra") for k in out)


def test_drift_is_the_frobenius_distance_from_the_initial_projection():
    module = axis_module(kappa=2)
    with torch.no_grad():
        module.inter_query.weight.add_(torch.full_like(module.inter_query.weight, 0.5))
    drift = module.round_metadata()["query_drift"]["inter"]
    h = module.inter_query.weight.shape[0]
    assert math.isclose(drift[0], 0.5 * h, rel_tol=1e-6)  # sqrt(h * h * 0.25)
    assert math.isclose(drift[1], float(module.inter_query_init.norm()), rel_tol=1e-6)
