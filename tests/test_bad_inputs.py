"""Every bad input of the hardening issue ends in one line on stderr naming the field, exit status
2, no traceback, and no training before the check."""

import os
import stat

import pytest
from fixtures import register_tiny

from fedbench.cli import main

TINY = ["--data.dataset", "tiny", "--backbone.name", "tiny", "--partition.n_clients", "3", "--partition.min_size", "4",
        "--federation.rounds", "1", "--method.options", '{"prompt_length": 2, "prompt_layers": 1}', "--tracking.progress", "false"]

RUN_CASES = [
    (["--train.accelerator", "gpu"], "train.accelerator"),
    (["--train.accelerator", "cuda"], "train.accelerator"),
    (["--train.accelerator", "tpu"], "train.accelerator"),
    (["--train.devices", "0"], "train.devices"),
    (["--train.threads", "-2"], "train.threads"),
    (["--train.threads", "0"], "train.threads"),
    (["--train.eval_batch_size", "0"], "train.eval_batch_size"),
    (["--train.batch_size", "0"], "train.batch_size"),
    (["--train.weight_decay", "-1"], "train.weight_decay"),
    (["--train.lr", "0"], "train.lr"),
    (["--train.lr_schedule", "step"], "train.lr_schedule"),
    (["--train.precision", "fp8"], "train.precision"),
    (["--method.options", '{"prompt_length": "four"}'], "method.options.prompt_length"),
    (["--method.options", '{"prompt_length": 0}'], "method.options.prompt_length"),
    (["--method.options", '{"nope": 1}'], "method.options"),
    (["--method.name", "nope"], "method.name"),
    (["--data.dataset", "imagenet"], "data.dataset"),
    (["--data.options", '{"label": "x"}'], "data.options"),
    (["--backbone.name", "resnet"], "backbone.name"),
    (["--backbone.options", '{"x": 1}'], "backbone.options"),
    (["--executor.name", "slurm"], "executor.name"),
    (["--missing.rate", "1.5"], "missing.rate"),
    (["--missing.both_ratio", "-0.5"], "missing.both_ratio"),
    (["--missing.protocol", "random"], "missing.protocol"),
    (["--partition.name", "zipf"], "partition.name"),
    (["--partition.n_clients", "0"], "partition.n_clients"),
    (["--federation.rounds", "0"], "federation.rounds"),
    (["--federation.client_fraction", "1.5"], "federation.client_fraction"),
    (["--federation.clients_per_round", "9"], "federation.clients_per_round"),
    (["--federation.local_epochs", "0"], "federation.local_epochs"),
    (["--failures.drop_rate", "2"], "failures.drop_rate"),
    (["--failures.slowdown", "0.5"], "failures.slowdown"),
]


@pytest.mark.parametrize("args, field", RUN_CASES, ids=[c[1] + ":" + c[0][1] for c in RUN_CASES])
def test_bad_value_is_one_line_naming_the_field(args, field, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    register_tiny()
    code = main(["run", *TINY, *args, "--tracking.results_dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert field in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "r" / "tiny").exists() or not list((tmp_path / "r" / "tiny").glob("*.json"))


def _one_line(capsys, code, field):
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert field in err and len(err.splitlines()) == 1, err


def test_yaml_section_given_a_value(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("missing: 0.5\n")
    _one_line(capsys, main(["run", "--config", str(cfg)]), "missing")


def test_results_dir_that_is_a_file(tmp_path, capsys):
    register_tiny()
    (tmp_path / "file").write_text("x")
    _one_line(capsys, main(["run", *TINY, "--tracking.results_dir", str(tmp_path / "file")]), "tracking.results_dir")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_unwritable_results_dir(tmp_path, capsys):
    register_tiny()
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    _one_line(capsys, main(["run", *TINY, "--tracking.results_dir", str(ro)]), "tracking.results_dir")


@pytest.mark.parametrize("value, field", [("0", "--workers"), ("-3", "--workers")])
def test_sweep_workers(value, field, tmp_path, capsys):
    register_tiny()
    _one_line(capsys, main(["sweep", *TINY, "--workers", value, "--tracking.results_dir", str(tmp_path)]), field)


def test_sweep_option_that_a_method_lacks(tmp_path, capsys):
    register_tiny()
    args = ["sweep", *TINY, "--methods", "fedavg fedprox", "--method.options", '{"prompt_length": 2, "prompt_layers": 1, "mu": 0.5}',
            "--tracking.results_dir", str(tmp_path)]
    _one_line(capsys, main(args), "method.options: fedavg has no option 'mu'")


def test_per_method_for_a_method_not_in_the_sweep(tmp_path, capsys):
    register_tiny()
    args = ["sweep", *TINY, "--methods", "fedavg", "--per_method", '{"fedprox": {"mu": 0.5}}', "--tracking.results_dir", str(tmp_path)]
    _one_line(capsys, main(args), "--per_method")


def test_empty_cache_variable(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FEDBENCH_CACHE", "")
    _one_line(capsys, main(["run", "--tracking.results_dir", str(tmp_path), "--tracking.progress", "false"]), "FEDBENCH_CACHE")


def test_unknown_profile(capsys):
    _one_line(capsys, main(["bench", "--profile", "huge"]), "PROFILE")
