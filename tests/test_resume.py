"""A run stopped after a round and started again ends exactly where an uninterrupted run ends."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from fedbench.errors import CheckpointError
from fedbench.federation.loop import run_experiment
from fedbench.federation.resolve import resolve, run_id_of
from fedbench.federation.rounds import Federation
from fedbench.federation.setup import prepare


@pytest.mark.parametrize("method", ["fedavg", "local"])
def test_resume_matches_uninterrupted(method, tiny_cfg, tmp_path):
    cfg = tiny_cfg(method, rounds=3)
    full = run_experiment(cfg)

    cfg.tracking.results_dir = str(tmp_path / "resumed")
    assert run_experiment(cfg, stop_after_rounds=1) is None  # "killed" after round 1
    fed = Federation(prepare(resolve(cfg)), tmp_path / "resumed")
    fed.resume()
    assert fed.start_round == 1 and len(fed.history) == 1
    resumed = run_experiment(cfg)

    assert resumed["final"] == full["final"]
    assert resumed["selected"] == full["selected"]
    assert [r["val"] for r in resumed["rounds"]] == [r["val"] for r in full["rounds"]]
    assert not fed.checkpoint_path.exists()  # removed once the record is written


def test_existing_record_is_not_rerun(tiny_cfg):
    cfg = tiny_cfg("fedavg", rounds=1)
    first = run_experiment(cfg)
    again = run_experiment(cfg)
    assert again["created"] == first["created"]


def test_corrupt_checkpoint_is_one_clear_error(tiny_cfg, tmp_path):
    cfg = tiny_cfg("fedavg", rounds=2)
    run_experiment(cfg, stop_after_rounds=1)
    ckpt = tmp_path / "results" / "tiny" / "checkpoints" / f"{run_id_of(cfg)}.pt"
    assert ckpt.exists()
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt.*delete it"):
        run_experiment(cfg)


def test_record_is_complete_and_json(tiny_cfg, tmp_path):
    cfg = tiny_cfg("fedavg", rounds=1)
    record = run_experiment(cfg)
    path = tmp_path / "results" / "tiny" / f"{record['run_id']}.json"
    on_disk = json.loads(path.read_text())
    for key in (
        "config",
        "seed_tree",
        "git_commit",
        "versions",
        "rounds",
        "final",
        "selected",
        "bytes",
        "wall_time_s",
        "partition_report",
    ):
        assert key in on_disk
    assert on_disk["versions"]["torch"] == torch.__version__.split("+")[0] or on_disk["versions"][
        "torch"
    ].startswith(torch.__version__[:4])
    report = on_disk["partition_report"]
    assert sum(report["sizes"]) == len(prepare(resolve(cfg)).bundle.splits["train"])
    shutil.rmtree(tmp_path / "results")


@pytest.mark.parametrize(
    "method, options", [("fedavg", None), ("local", None), ("fedprime", {"selection": "sample"})]
)
def test_fast_test_metrics_equal_one_pass_per_condition(method, options, tiny_cfg):
    cfg = tiny_cfg(method, rounds=1)
    if options:
        cfg.method.options = options
    fed = Federation(prepare(resolve(cfg)), Path(cfg.tracking.results_dir))
    fast, fast_preds = fed.scorer.test_metrics(fed.global_state, fed.personal)
    slow, slow_preds = fed.scorer.test_metrics_per_condition(fed.global_state, fed.personal)
    assert fast == slow
    if slow_preds is not None:
        assert torch.equal(fast_preds[0], slow_preds[0])
