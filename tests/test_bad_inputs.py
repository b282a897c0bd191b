"""Every bad input of the hardening issue ends in one line on stderr naming the field, exit status
2, no traceback, and no training before the check."""

import os
import stat
import subprocess
from pathlib import Path

import pytest
from fixtures import TINY_CLI, register_tiny

from fedbench.cli import main

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
    # nan and inf (issue 21, item 6): named as not finite, not "Expected a <class 'float'>"
    (["--missing.rate", "nan"], "missing.rate: nan is not a finite number"),
    (["--train.lr", "inf"], "train.lr: inf is not a finite number"),
    (["--partition.alpha=-inf"], "partition.alpha: -inf is not a finite number"),
    (["--failures.drop_rate", "NaN"], "failures.drop_rate: NaN is not a finite number"),
    (
        ["--method.name", "fedprox", "--method.options", '{"mu": .nan}'],
        "method.options.mu: nan is not a finite number",
    ),
    (["--missing.rate", "abc"], "missing.rate: expected a float, got 'abc'"),
]


@pytest.mark.parametrize("args, field", RUN_CASES, ids=[c[1] + ":" + c[0][-1] for c in RUN_CASES])
def test_bad_value_is_one_line_naming_the_field(args, field, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    register_tiny()
    code = main(["run", *TINY_CLI, *args, "--tracking.results_dir", str(tmp_path / "r")])
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


YAML_CASES = [  # (file content, what the line says besides the file's name)
    ("", "is empty"),
    ("# only a comment\n", "is empty"),
    ("missing:\n  rate: [0.5\n", "is not valid YAML (line 3, column 1"),
    ("missing: {rate: 0.5\ntrain: x\n", "is not valid YAML"),
    ("- missing\n- train\n", "holds a list, not a mapping of sections"),
    ("missing:\n  rate: .nan\n", "missing.rate: nan is not a finite number"),
    ("train:\n  lr: .inf\n", "train.lr: inf is not a finite number"),
]


@pytest.mark.parametrize("text, says", YAML_CASES, ids=[c[1] + ":" + repr(c[0])[:12] for c in YAML_CASES])
def test_bad_yaml_file_is_one_line_naming_it(text, says, tmp_path, capsys):
    register_tiny()
    cfg = tmp_path / "experiment.yaml"
    cfg.write_text(text)
    code = main(["run", "--config", str(cfg), *TINY_CLI, "--tracking.results_dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and says in err and len(err.splitlines()) == 1, err
    if "finite" not in says:  # a problem of the file itself names the file
        assert str(cfg) in err
    assert not (tmp_path / "r").exists()


def test_empty_results_dir_is_refused(tmp_path, capsys, monkeypatch):
    """`--tracking.results_dir ""` wrote records into the current folder."""
    register_tiny()
    monkeypatch.chdir(tmp_path)
    _one_line(capsys, main(["run", *TINY_CLI, "--tracking.results_dir", ""]), "tracking.results_dir: empty")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_full_disk_during_a_checkpoint_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    """Every write of the round's checkpoint goes to /dev/full, whose writes fail with ENOSPC as a
    full disk's do: one line naming the checkpoint, nothing left half-written."""
    import tempfile

    from fedbench import safe_io

    real = tempfile.mkstemp

    def onto_a_full_disk(*args, **kwargs):
        fd, name = real(*args, **kwargs)
        if Path(name).parent.name == "checkpoints":
            os.close(fd)
            fd = os.open("/dev/full", os.O_WRONLY)
        return fd, name

    monkeypatch.setattr(safe_io.tempfile, "mkstemp", onto_a_full_disk)
    register_tiny()
    results = tmp_path / "r"
    code = main(["run", *TINY_CLI, "--federation.rounds", "2", "--tracking.results_dir", str(results)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert (
        "the disk is full" in err
        and str(results / "tiny" / "checkpoints") in err
        and "finished rounds and runs are kept" in err
    )
    checkpoints = results / "tiny" / "checkpoints"
    assert not list(checkpoints.rglob(".tmp-*")) and not list(
        checkpoints.glob("*.pt")
    )  # nothing half-written


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_torchs_runtime_error_on_a_full_disk_is_recognised(tmp_path, capsys, monkeypatch):
    """torch.save to a path that cannot be written raises RuntimeError ("unexpected pos"), not
    OSError; fedbench's writers never hand torch a path, and were one to, the CLI still says the
    disk is full, in one line."""
    import torch

    with pytest.raises(RuntimeError) as raised:
        torch.save({"w": torch.zeros(100_000)}, "/dev/full")
    assert not isinstance(raised.value, OSError)

    from fedbench import cli

    def save_like_torch(argv):
        torch.save({"w": torch.zeros(100_000)}, "/dev/full")

    monkeypatch.setitem(cli.COMMANDS, "run", save_like_torch)
    _one_line(capsys, main(["run"]), "the disk is most likely full")


def test_bench_outside_the_checkout_refuses_with_make(tmp_path):
    """`make -f path/Makefile bench` from another folder would write results/ there."""
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        ["make", "-f", str(repo / "Makefile"), "bench", "METHOD=fedavg"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "is not the fedbench checkout" in out.stderr and f"make -C {repo} bench" in out.stderr
    assert list(tmp_path.iterdir()) == []  # no results/, no .venv


def test_bench_says_where_it_writes(tmp_path, capsys, monkeypatch):
    from fedbench import bench

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench, "run_grid", lambda base, grid, **kw: [])
    assert main(["bench", "--method", "fedavg", "--wandb", "false"]) == 0
    err = capsys.readouterr().err
    assert f"records go to {tmp_path / 'runs'}, boards to {tmp_path / 'runs' / 'leaderboards'}" in err
    assert "not the fedbench checkout" in err


def test_results_dir_that_is_a_file(tmp_path, capsys):
    register_tiny()
    (tmp_path / "file").write_text("x")
    _one_line(
        capsys,
        main(["run", *TINY_CLI, "--tracking.results_dir", str(tmp_path / "file")]),
        "tracking.results_dir",
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_unwritable_results_dir(tmp_path, capsys):
    register_tiny()
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    _one_line(capsys, main(["run", *TINY_CLI, "--tracking.results_dir", str(ro)]), "tracking.results_dir")


@pytest.mark.parametrize("value, field", [("0", "--workers"), ("-3", "--workers")])
def test_sweep_workers(value, field, tmp_path, capsys):
    register_tiny()
    _one_line(
        capsys, main(["sweep", *TINY_CLI, "--workers", value, "--tracking.results_dir", str(tmp_path)]), field
    )


def test_sweep_option_that_a_method_lacks(tmp_path, capsys):
    register_tiny()
    args = [
        "sweep",
        *TINY_CLI,
        "--methods",
        "fedavg fedprox",
        "--method.options",
        '{"prompt_length": 2, "prompt_layers": 1, "mu": 0.5}',
        "--tracking.results_dir",
        str(tmp_path),
    ]
    _one_line(capsys, main(args), "method.options: fedavg has no option 'mu'")


def test_per_method_for_a_method_not_in_the_sweep(tmp_path, capsys):
    register_tiny()
    args = [
        "sweep",
        *TINY_CLI,
        "--methods",
        "fedavg",
        "--per_method",
        '{"fedprox": {"mu": 0.5}}',
        "--tracking.results_dir",
        str(tmp_path),
    ]
    _one_line(capsys, main(args), "--per_method")


def test_empty_cache_variable(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FEDBENCH_CACHE", "")
    _one_line(
        capsys,
        main(["run", "--tracking.results_dir", str(tmp_path), "--tracking.progress", "false"]),
        "FEDBENCH_CACHE",
    )


def test_unknown_profile(capsys):
    _one_line(capsys, main(["bench", "--profile", "huge"]), "PROFILE")
