"""PPT's pool measurements (benchmarks/ppt_pool.py) on pools and records worked by hand."""

from __future__ import annotations

import json
import math

import pytest
import torch

from benchmarks import ppt_pool


def test_the_geometry_of_a_hand_made_pool():
    # rows (1, 0), (3, 0), (2, 2): mean (2, 2/3); deviations (-1, -2/3), (1, -2/3), (0, 4/3);
    # squares sum 1 + 4/9 + 1 + 4/9 + 0 + 16/9 = 42/9 over 6 entries: rms sqrt(7/9)
    pool = torch.tensor([[1.0, 0.0], [3.0, 0.0], [2.0, 2.0]])
    g = ppt_pool.pool_geometry(pool)
    rms = math.sqrt(7 / 9)
    assert g["rows"] == 3 and g["dim"] == 2
    assert g["rms_about_mean"] == pytest.approx(rms)
    assert g["mean_row_norm"] == pytest.approx((1 + 3 + math.sqrt(8)) / 3)
    # cosines: rows 1-2 parallel (1), rows 1-3 and 2-3 at 45 degrees (1/sqrt 2); the mean over pairs
    assert g["mean_pair_cosine"] == pytest.approx((1 + 2 / math.sqrt(2)) / 3)
    # distances: rows 1-2: 2, rows 1-3 and 2-3: sqrt 5; so the nearest other row is 2 away for rows 1
    # and 2, sqrt 5 for row 3; standardised: / rms, per dimension: / sqrt 2
    nearest = sorted([2.0, 2.0, math.sqrt(5)])
    per_dim = [x / rms / math.sqrt(2) for x in nearest]
    q = g["nearest_q10_q50_q90"]
    assert q[1] == pytest.approx(per_dim[1])  # the median of three is the middle one
    assert q[0] == pytest.approx(per_dim[0]) and q[2] == pytest.approx(
        per_dim[1] + 0.8 * (per_dim[2] - per_dim[1])
    )  # torch's linear interpolation: the 90% point is 0.8 of the way from the 2nd to the 3rd


def _record(
    folder, name, method, seed, sizes, schedule="linear", partition="imbalanced", run_id=None, options=None
):
    rec = {
        "run_id": run_id or name,
        "status": "ok",
        "sweep": "bench-ppt-quick",
        "method": method,
        "seed": seed,
        "wall_time_s": 600.0,
        "config": {
            "train": {"lr": 5e-3, "lr_schedule": schedule},
            "partition": {"name": partition},
            "method": {"name": method, "options": options or {}},
        },
        "rounds": [{"pool_size": s, "pool_used": min(s, 10), "val": {"accuracy": s / 100}} for s in sizes],
    }
    (folder / "emoji").mkdir(parents=True, exist_ok=True)
    (folder / "emoji" / f"{name}.json").write_text(json.dumps(rec))


def test_the_trajectory_table_reads_ppt_curves_and_the_checkpoint(tmp_path):
    sizes = list(range(1, 21))  # pool size = round number, 20 rounds
    _record(tmp_path / "ppt-recipe", "p", "ppt", 0, sizes)
    _record(tmp_path / "ppt-recipe", "f", "fedavg-pt", 0, sizes)  # not a pool
    _record(tmp_path / "curves", "d", "ppt", 0, sizes, partition="dirichlet")  # another partition
    # the drift price's runs have a folder of their own, and their label says each option set
    _record(tmp_path / "ppt-drift", "g", "ppt", 0, [5] * 20, options={"new_centre": "drift"})
    push = {"retrieval_sign": "push", "new_centre": "drift"}
    _record(tmp_path / "ppt-drift", "h", "ppt", 0, [5] * 20, options=push)
    history = [
        {"round": r, "pool_size": 40 - r, "pool_used": 5, "lr": 5e-3, "val": 0.2 + r / 100}
        for r in range(1, 11)
    ]
    state = {"history": history, "after_round": 10, "seed": 1, "elapsed_s": 120.0, "run_id": "s1"}
    rows = ppt_pool.trajectory_table(tmp_path, state).splitlines()
    head = (
        "| recipe | seed | source | r10 | r20 | peak (round) | most used | val best | val last | wall time |"
    )
    assert rows[0] == head
    # val = pool size / 100 per round, rising: the last 5-round mean is the best, (16 + ... + 20) / 5
    recipe_p = "| 0.005 linear | 0 | results/ppt-recipe | 10 | 20 | 20 (20) | 10 | 18.0 | 18.0 | 10 min |"
    drift = "| results/ppt-drift | 5 | 5 | 5 (1) | 5 | 5.0 | 5.0 | 10 min |"
    assert rows[2] == recipe_p
    assert rows[3] == f"| 0.005 linear, new_centre=drift | 0 {drift}"
    assert rows[4] == f"| 0.005 linear, new_centre=drift, retrieval_sign=push | 0 {drift}"
    # the checkpoint: val 0.21 ... 0.30, last 5-round mean (26 + ... + 30) / 5 = 28
    assert (
        rows[5]
        == "| 0.005 linear | 1 | checkpoint after round 10 | 30 | – | 39 (1) | 5 | 28.0 | 28.0 | 2 min |"
    )
    assert len(rows) == 6
    _record(tmp_path / "ppt-recipe", "s1", "ppt", 1, sizes, run_id="s1")  # the same run, since finished
    rows = ppt_pool.trajectory_table(tmp_path, state).splitlines()
    assert rows[3] == recipe_p.replace("| 0 |", "| 1 |")  # sorted by recipe, then seed
    assert rows[4] == f"| 0.005 linear, new_centre=drift | 0 {drift}"
    assert len(rows) == 6


def test_a_checkpoint_of_another_method_or_a_missing_file_gets_one_line(tmp_path, capsys):
    from fedbench.safe_io import save_sealed

    path = tmp_path / "fedavg.pt"
    save_sealed({"global_state": {"prompt": torch.zeros(2, 3)}, "history": []}, path)
    out = tmp_path / "state.json"
    args = ["--out", str(out), "--command", "c", "--seed", "0"]
    assert ppt_pool.main([str(path), *args]) == 2
    err = capsys.readouterr().err.strip()
    why = "its global state has no prompt pool: it is not a ppt run's checkpoint"
    assert err == f"ppt_pool: cannot read {path}: {why}"
    assert ppt_pool.main([str(tmp_path / "absent.pt"), *args]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1 and not out.exists()
