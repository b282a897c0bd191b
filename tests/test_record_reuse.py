"""A configuration recorded here is not run again (and says so, with the record's path); a record
in its place that was not produced here is neither trusted nor overwritten without --force; and
``fedbench reproduce`` reruns a record's config and tells identical numbers from changed ones."""

from __future__ import annotations

import json
from pathlib import Path

from fedbench.cli import main
from fedbench.federation.loop import run_experiment
from fedbench.federation.resolve import run_id_of


def _record_path(cfg) -> Path:
    return Path(cfg.tracking.results_dir) / cfg.data.dataset / f"{run_id_of(cfg)}.json"


def test_a_recorded_config_is_not_run_again_and_a_record_not_produced_here_is_not_overwritten(
    tiny_cfg, capsys
):
    from fixtures import TINY_CLI, register_tiny

    cfg = tiny_cfg("fedavg", rounds=1)
    register_tiny()
    args = [
        "run",
        *TINY_CLI,
        "--train.batch_size",
        "16",
        "--train.lr",
        "0.01",
        "--tracking.results_dir",
        cfg.tracking.results_dir,
    ]
    path = _record_path(cfg)
    assert main(args) == 0
    first = capsys.readouterr()
    assert "already recorded" not in first.err
    assert main(args) == 0
    again = capsys.readouterr()
    assert f"already recorded: {path} (use --force to run again)" in again.err
    assert again.out == first.out  # the same metrics line, conditions in the same order

    record = json.loads(path.read_text())
    record["final"]["as_train"]["accuracy"] = 0.99  # edited by hand: neither trusted nor silently replaced
    path.write_text(json.dumps(record))
    edited = path.read_bytes()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "not produced here" in err and "--force" in err
    assert path.read_bytes() == edited
    assert main([*args, "--force", "true"]) == 0  # the user's choice: run again, replacing it
    assert capsys.readouterr().out == first.out
    assert json.loads(path.read_text())["final"]["as_train"]["accuracy"] != 0.99


def test_reproduce_tells_identical_from_changed_numbers(tiny_cfg, tmp_path, monkeypatch, capsys):
    cfg = tiny_cfg("fedavg", rounds=1)
    with monkeypatch.context() as m:  # a colleague's record: signed with another key
        m.setenv("FEDBENCH_KEY_FILE", str(tmp_path / "colleague" / "key"))
        run_experiment(cfg)
    path = _record_path(cfg)
    assert main(["reproduce", str(path), "--results", str(tmp_path / "again")]) == 0
    assert "reproduced: every final metric" in capsys.readouterr().out
    record = json.loads(path.read_text())
    true_value = record["final"]["as_train"]["accuracy"]
    record["final"]["as_train"]["accuracy"] = 0.99
    path.write_text(json.dumps(record))
    assert main(["reproduce", str(path), "--results", str(tmp_path / "again")]) == 1
    out = capsys.readouterr().out
    assert (
        "not reproduced: 1 final metric(s)" in out
        and f"as_train accuracy: 0.99 in the record, {true_value} here" in out
    )
    assert (
        main(["reproduce", str(path), "--results", cfg.tracking.results_dir]) == 2
    )  # never into the record's own folder
