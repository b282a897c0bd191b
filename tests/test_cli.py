"""Bad input gets one line that names the field and the fix, exit status 2, and no traceback."""

import json

import pytest
from fixtures import TINY_CLI, register_tiny

from fedbench.cli import main


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--missing.rate", "1.5"], "missing.rate"),
        (["--missing.rate", "-0.1"], "missing.rate"),
        (["--method.name", "nope"], "method.name: unknown method 'nope'; choose one of"),
        (["--data.dataset", "imagenet"], "data.dataset"),
        (["--partition.alpha", "0"], "partition.alpha: must be > 0"),
        (["--partition.alpha", "-1"], "partition.alpha"),
        (["--config", "no/such/file.yaml"], "does not exist"),
        (["--missing.type", "audio"], "missing.type"),
        (["--train.precision", "fp8"], "train.precision"),
        (["--missing.rate", "abc"], "missing.rate"),
    ],
)
def test_bad_run_input(args, expected, capsys, tmp_path):
    code = main(["run", *args, "--tracking.results_dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert expected in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_more_clients_than_samples(capsys, tmp_path):
    register_tiny()
    args = [a if a != "3" else "5000" for a in TINY_CLI]
    code = main(["run", *args, "--tracking.results_dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "n_clients" in err and "fewer clients" in err
    assert len(err.splitlines()) == 1


def test_bad_yaml_and_unknown_field(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("missing: {rate: 0.5, colour: red}\n")
    assert main(["run", "--config", str(bad)]) == 2
    assert "colour" in capsys.readouterr().err


def test_bad_bench_profile(capsys):
    assert main(["bench", "--method", "fedavg", "--profile", "huge"]) == 2
    assert "PROFILE" in capsys.readouterr().err


def test_run_then_leaderboard(tmp_path, capsys):
    register_tiny()
    results, boards = tmp_path / "results", tmp_path / "boards"
    assert main(["run", *TINY_CLI, "--tracking.results_dir", str(results)]) == 0
    assert "record:" in capsys.readouterr().out
    assert (
        main(["leaderboard", "--results", str(results), "--leaderboards", str(boards), "--dataset", "tiny"])
        == 0
    )
    text = (boards / "tiny.md").read_text()
    (record,) = [json.loads(p.read_text()) for p in (results / "tiny").glob("*.json")]
    shown = f"{100 * record['final']['as_train']['accuracy']:.1f}"  # the board's percent, one decimal
    rows = [line for line in text.splitlines() if line.startswith("| fedavg ")]
    assert rows and any(shown in row for row in rows), f"no fedavg row showing {shown}"
    assert "as_train" in text
    assert (boards / "tiny.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_refuses_bad_grid_before_running(tmp_path, capsys):
    register_tiny()
    code = main(
        [
            "sweep",
            *TINY_CLI,
            "--methods",
            "fedavg",
            "--rates",
            "0.5 1.7",
            "--tracking.results_dir",
            str(tmp_path / "r"),
        ]
    )
    assert code == 2 and "missing.rate" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing was run or written


def test_sweep_honours_results_dir_and_per_method_options(tmp_path, capsys):
    import json

    register_tiny()
    results = tmp_path / "elsewhere"
    args = [
        "sweep",
        *TINY_CLI,
        "--methods",
        "fedavg fedprox",
        "--per_method",
        '{"fedprox": {"mu": 0.5}}',
        "--tracking.results_dir",
        str(results),
        "--tracking.sweep",
        "mine",
        "--tracking.wandb",
        "false",
        "--leaderboards",
        str(tmp_path / "boards"),
    ]
    assert main(args) == 0
    records = [json.loads(p.read_text()) for p in (results / "tiny").glob("*.json")]
    assert sorted(r["method"] for r in records) == ["fedavg", "fedprox"]
    by_method = {r["method"]: r for r in records}
    assert by_method["fedprox"]["config"]["method"]["options"]["mu"] == 0.5
    assert by_method["fedavg"]["config"]["method"]["options"] == {"prompt_length": 2, "prompt_layers": 1}
    assert all(r["sweep"] == "mine" and r["config"]["tracking"]["wandb"] is False for r in records)
    assert (tmp_path / "boards" / "tiny.md").exists()


def test_help_lists_every_command_and_the_choices_of_enumerated_fields(capsys):
    from fedbench.cli import COMMANDS
    from fedbench.cli_args import field_choices

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(any(line.split()[:1] == [name] for line in out.splitlines()) for name in COMMANDS)
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for field in (
        "missing.protocol",
        "train.precision",
        "federation.personal_store",
        "executor.name",
        "partition.name",
    ):
        assert "one of: " + ", ".join(field_choices()[field]) in text, field
