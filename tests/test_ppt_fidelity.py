"""PPT as PFPT's code runs it (issue 18): the pool aliased across a round's clients, votes over
test batches of 16, the paper tables' protocols, SCAFFOLD-PT's step. Expected values come from the
official code's rules written out here (file:line of PeiYauWeng/PFPT at 9518dce), not from fedbench."""

import dataclasses

import numpy as np
import pytest
import torch
from fixtures import tiny_config

import fedbench.bench as bench_module
from fedbench.config import from_dict
from fedbench.errors import ConfigError
from fedbench.federation.loop import run_experiment
from fedbench.federation.resolve import run_id_of
from fedbench.methods.base import ClientUpdate, TrainSettings
from fedbench.methods.ppt import (
    PPTAggregator,
    PPTModule,
    PPTOfficialAggregator,
    PPTOfficialOptions,
    PPTOptions,
)
from fedbench.methods.ppt.model import select_in_chunks
from fedbench.methods.prompt_baselines.scaffold import ScaffoldPTOptions, ScaffoldVPTModule
from fedbench.methods.registry import get_method
from fedbench.sweep import cell_configs


def official_batch_vote(sim: torch.Tensor, k: int) -> list[int]:
    """L2P_heuristic_model.py:49-59: top-k per row, unique ids with counts, the k most counted."""
    idx = sim.topk(k, dim=1).indices
    ids, counts = torch.unique(idx, return_counts=True, sorted=True)
    return ids[counts.topk(k).indices].tolist()


def _preferring(rows: list[list[int]], width: int = 12) -> torch.Tensor:
    """Similarities whose per-row top 3 are the given indices (plus small distinct noise)."""
    sim = torch.linspace(-0.5, -0.1, width).repeat(len(rows), 1)
    for r, top in enumerate(rows):
        sim[r, top] = torch.tensor([0.9, 0.8, 0.7])
    return sim


def test_evaluation_votes_over_chunks_of_16():
    rows = [[2, 5, 7]] * 10 + [[2, 5, 9]] * 6 + [[1, 3, 4]] * 10 + [[1, 3, 8]] * 6 + [[6, 10, 11]] * 8
    sim = _preferring(rows)
    got = select_in_chunks(sim, 3, "batch", 16)
    by_hand = {0: [2, 5, 7], 16: [1, 3, 4], 32: [6, 10, 11]}  # the majority of each batch of 16 (main.py:133)
    for start, expected in by_hand.items():
        chunk = sim[start : start + 16]
        assert sorted(got[start].tolist()) == expected == sorted(official_batch_vote(chunk, 3))
        assert (got[start : start + len(chunk)] == got[start]).all()
    assert sorted(select_in_chunks(sim, 3, "batch", None)[0].tolist()) == [
        1,
        2,
        3,
    ]  # one vote over all 40 rows
    assert torch.equal(select_in_chunks(sim, 3, "sample", 16), sim.topk(3, dim=1).indices)
    assert PPTOfficialOptions().eval_vote_batch == 16 and PPTOptions().eval_vote_batch is None


def _update(client, pool, head, n):
    return ClientUpdate(client, {"pool": pool, "head.w": head}, n, meta={"usage": [1.0] * len(pool)})


def test_aliased_pool_reaches_the_matcher_as_copies_of_the_last(monkeypatch):
    """communication.py:98-101: after round 1 every client's pool.prompt is one tensor, so the
    matcher (communication.py:84-94) stacks identical rows: the last client's; the other keys are
    still each client's own copy, averaged by sample count (communication.py:66-75)."""
    seen = {}

    def fake_match(local, **kw):
        seen["local"] = [x.clone() for x in local]
        m = len(local[0])

        class R:
            centres = local[-1].clone()
            assignments = [np.arange(m)] * len(local)

        return R()

    monkeypatch.setattr("fedbench.aggregation.matched_centres.match_prompts", fake_match)
    agg = PPTOfficialAggregator(dataclasses.replace(PPTOfficialOptions(), kappa=2))
    pools = [torch.full((3, 4), float(i)) for i in range(3)]
    heads = [torch.full((2,), float(10 * i)) for i in range(3)]
    ups = [_update(i, pools[i], heads[i], n) for i, n in enumerate((1, 2, 3))]
    out = agg.aggregate({}, ups, round_index=1, seed=0)
    assert all(torch.equal(x, pools[2]) for x in seen["local"])
    assert torch.allclose(out["head.w"], torch.full((2,), (0 * 1 + 10 * 2 + 20 * 3) / 6, dtype=torch.float32))
    agg.aggregate({}, ups, round_index=0, seed=0)  # round 1: separate deep copies (Scenario.py:19-22)
    assert [x[0, 0].item() for x in seen["local"]] == [0.0, 1.0, 2.0]


def test_each_client_restarts_from_the_global_head_but_the_chained_pool():
    agg = PPTOfficialAggregator(PPTOfficialOptions())
    state = {"pool": torch.zeros(3, 2), "query.weight": torch.ones(2, 2)}
    assert agg.configure_fit(0, [4, 5], state) == {4: {"start": state}, 5: {"start": state}}
    later = agg.configure_fit(1, [4, 5], state)
    assert (
        set(later[4]["start"]) == {"query.weight"}
        and later[4]["start"]["query.weight"] is state["query.weight"]
    )
    with pytest.raises(ConfigError, match="cyclic"):
        PPTAggregator(dataclasses.replace(PPTOptions(), alias_shared=True))
    assert get_method("ppt-official").schedule == "cyclic" and get_method("ppt").schedule == "parallel"


def test_round_two_trains_one_pool_after_another(tmp_path, monkeypatch):
    """End to end on the tiny fixture: in round 2 client t+1 starts from the pool client t left,
    and every client from the global query projection and head (fedavg.py:34-57 trains the
    round's slots in order on the aliased pool; their heads were copy_'d from the average)."""
    starts, ends = [], []
    original_start, original_meta = PPTModule.on_round_start, PPTModule.round_metadata

    def on_round_start(self, global_state, round_index, payload=None):
        original_start(self, global_state, round_index, payload)
        starts.append(
            (
                round_index,
                self.pool.detach().clone(),
                self.head.net[0].weight.detach().clone(),
                {k: v.clone() for k, v in (payload or {}).get("start", {}).items()},
            )
        )

    def round_metadata(self):
        ends.append(self.pool.detach().clone())
        return original_meta(self)

    monkeypatch.setattr(PPTModule, "on_round_start", on_round_start)
    monkeypatch.setattr(PPTModule, "round_metadata", round_metadata)
    cfg = tiny_config(tmp_path, "ppt-official", rounds=2)
    cfg.federation.clients_per_round = 3
    run_experiment(cfg)
    first = [i for i, s in enumerate(starts) if s[0] == 0]
    second = [i for i, s in enumerate(starts) if s[0] == 1]
    assert len(first) == len(second) == 3
    assert all(torch.equal(starts[i][1], starts[first[0]][1]) for i in first)  # round 1: one global pool each
    for a, b in zip(second, second[1:], strict=False):
        assert torch.equal(starts[b][1], ends[a])  # round 2: the previous client's trained pool
        assert torch.equal(
            starts[b][2], starts[second[0]][2]
        )  # ... and the global head, not the previous client's
    assert torch.equal(starts[second[0]][2], starts[second[0]][3]["head.net.0.weight"])


PAPER = {"cifar10": 1, "cifar100": 10, "tinyimagenet": 20}  # 10% of the classes (PFPT section 4)


@pytest.mark.parametrize("dataset", sorted(PAPER))
def test_paper_tables_run_the_papers_protocol(monkeypatch, dataset):
    seen = {}
    monkeypatch.setattr(
        bench_module, "run_grid", lambda base, grid, **kw: seen.update(base=base, grid=grid) or []
    )
    bench_module.bench("ppt", "full", dataset=dataset, ablations=True, accelerator="cpu")
    configs = cell_configs(seen["base"], seen["grid"])
    assert {c.method.name for c in configs} >= {"ppt", "ppt-official", "pfedpg", "scaffold-pt", "fedopt-pt"}
    columns = {
        (
            c.partition.name,
            c.partition.alpha if c.partition.name == "dirichlet" else c.partition.n_dominant,
            c.train.lr,
        )
        for c in configs
    }
    assert columns == {
        ("dirichlet", 0.5, 5e-4),
        ("dirichlet", 0.1, 1e-4),
        ("imbalanced", PAPER[dataset], 1e-4),
    }
    for c in configs:
        assert (
            c.partition.n_clients,
            c.federation.clients_per_round,
            c.federation.rounds,
            c.federation.local_epochs,
            c.train.batch_size,
        ) == (100, 10, 120, 5, 16)
        assert c.backbone.name == "torchvision-vit"
        assert (
            c.backbone.options["resize"] == 256
            and c.backbone.options["crop"] == 224
            and c.backbone.options["frozen_head"]
        )
        if c.method.name == "scaffold-pt":  # run_scaffold_*.sh: plain SGD at --lr 1e-3
            assert c.method.options["step"] == 1e-3
        if (
            c.method.name == "fedopt-pt"
        ):  # main.py:63-64 (5e-5), Algo/fedopt.py:14-15 (Adam 0.9/0.98, eps 1e-6)
            o = c.method.options
            assert (
                o["server_lr"],
                o["beta1"],
                o["beta2"],
                o["eps"],
                o["bias_correction"],
                o["client_start"],
            ) == (5e-5, 0.9, 0.98, 1e-6, True, "mean")
        if c.method.name == "ppt-official":
            assert get_method("ppt-official").options(**c.method.options).eval_vote_batch == 16


def test_scaffold_step_and_identity_of_added_options(tmp_path):
    from fixtures import tiny_backbone

    module = ScaffoldVPTModule(
        tiny_backbone(), 3, TrainSettings(lr=5e-4), ScaffoldPTOptions(n_tokens=2, adaptor_width=8, step=1e-3)
    )
    assert module.step_size == 1e-3
    module.options = ScaffoldPTOptions(n_tokens=2, adaptor_width=8)
    assert module.step_size == pytest.approx(5e-4 * 20)
    cfg = tiny_config(tmp_path, "scaffold-pt")
    base = run_id_of(cfg)
    cfg.method.options = {**cfg.method.options, "step": None}
    assert run_id_of(cfg) == base  # an added option at its neutral value leaves earlier records' ids alone
    cfg.method.options = {**cfg.method.options, "step": 1e-3}
    assert run_id_of(cfg) != base
    assert run_id_of(from_dict(cfg.to_dict())) == run_id_of(cfg)


def test_query_key_term_signs_by_hand():
    """push = the code's +0.01 * reduce_sim with reduce_sim = sum(key_norm * query_norm) / B
    (L2P_heuristic_model.py:70-72, util/train_eval.py:34); pull = L2P's distance 0.01 * sum(1 - cos) / B."""
    from fedbench.methods.ppt.model import query_key_term, similarity

    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    pool = torch.tensor([[1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    sim = similarity(q, pool)
    idx = torch.tensor([[0, 1], [1, 0]])
    cos = {(0, 0): 2**-0.5, (0, 1): 0.0, (1, 1): 1.0, (1, 0): 2**-0.5}
    reduce_sim = sum(cos.values()) / 2
    assert float(query_key_term(sim, idx, 2, 0.01, "push")) == pytest.approx(0.01 * reduce_sim)
    assert float(query_key_term(sim, idx, 2, 0.01, "pull")) == pytest.approx(
        0.01 * sum(1 - c for c in cos.values()) / 2
    )
    assert PPTOptions().retrieval_sign == "pull" and PPTOfficialOptions().retrieval_sign == "push"
