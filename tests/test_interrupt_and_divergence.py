"""Ctrl-C stops a run (and a parallel sweep) within seconds with exit 130 and the resume message;
a diverged run is recorded as diverged, never as a valid result."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fixtures import TINY_RUN
from processes import HANG_GUARD_S

from fedbench.federation.loop import run_experiment
from fedbench.federation.resolve import run_id_of
from fedbench.tracking.records import load_records

TESTS = Path(__file__).parent
PRELUDE = (
    f"import sys; sys.path.insert(0, {str(TESTS)!r}); from fixtures import register_tiny; register_tiny(); "
    "from fedbench.cli import entry; "
)
TINY = [*TINY_RUN, "--train.batch_size", "16"]  # the first 4: dataset and backbone


def _start(args, tmp_path):
    # as the console script runs it: entry() ends an interrupted process with os._exit (no interpreter
    # shutdown, where torch's threads could abort it with "terminate called without an active exception")
    code = PRELUDE + f"sys.argv = ['fedbench', *{args!r}]; entry()"
    env = {**os.environ, "FEDBENCH_WANDB": "0"}
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )


def _wait_for(path_glob, proc, timeout=HANG_GUARD_S):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if list(path_glob()):
            return True
        time.sleep(0.05)
    return False


def test_sigint_during_a_client_fit_exits_130_with_resume_message(tmp_path, tiny_cfg):
    results = tmp_path / "results"
    args = ["run", *TINY, "--federation.rounds", "200", "--tracking.results_dir", str(results)]
    proc = _start(args, tmp_path)
    ckpts = results / "tiny" / "checkpoints"
    assert _wait_for(lambda: ckpts.glob("*.pt"), proc), "no round finished"
    time.sleep(0.3)  # now inside a later round's client fits
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=HANG_GUARD_S)
    assert time.time() - sent < 10
    assert proc.returncode == 130
    assert "interrupted at round" in err and "run the same command to resume" in err
    assert list(ckpts.glob("*.pt")), "the finished rounds' checkpoint is kept"


def test_sweep_with_two_workers_stops_within_10s_of_sigint(tmp_path):
    # worker processes find the dataset and backbone through entry points, as a user's plugin would
    from test_plugins import _install_metadata

    env = _install_metadata(tmp_path / "site")
    results = tmp_path / "results"
    args = [
        "sweep",
        *[a if a != "tiny" else "demo" for a in TINY[:4]],
        "--backbone.name",
        "demo-bert",
        *TINY[4:],
        "--federation.rounds",
        "200",
        "--methods",
        "fedavg fedprox",
        "--seeds",
        "0 1 2",
        "--workers",
        "2",
        "--tracking.results_dir",
        str(results),
        "--leaderboards",
        str(tmp_path / "boards"),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedbench.cli", *args],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert _wait_for(lambda: (results / "demo" / "checkpoints").glob("*.pt"), proc), (
        proc.stderr.read() if proc.poll() else "no round finished"
    )
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=HANG_GUARD_S)
    assert time.time() - sent < 10
    assert proc.returncode == 130
    # no worker keeps running: the checkpoints stop changing
    stamp = {p: p.stat().st_mtime for p in (results / "demo" / "checkpoints").glob("*.pt")}
    time.sleep(2)
    assert stamp == {p: p.stat().st_mtime for p in (results / "demo" / "checkpoints").glob("*.pt")}


def test_huge_learning_rate_is_recorded_as_diverged(tiny_cfg, tmp_path):
    cfg = tiny_cfg("fedavg", rounds=3)
    cfg.train.lr = 1e6
    record = run_experiment(cfg)
    assert record["status"] == "diverged"
    assert 1 <= record["diverged"]["round"] <= 3 and record["final"] is None
    path = Path(cfg.tracking.results_dir) / "tiny" / f"{run_id_of(cfg)}.json"

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    json.loads(path.read_text(), parse_constant=refuse)  # strict JSON: no bare NaN
    (loaded,) = load_records(Path(cfg.tracking.results_dir), "tiny")
    assert loaded["status"] == "diverged"
    assert not (Path(cfg.tracking.results_dir) / "tiny" / "checkpoints" / f"{run_id_of(cfg)}.pt").exists()


def test_cli_reports_a_diverged_run_in_one_line(tmp_path, capsys):
    from fixtures import register_tiny

    from fedbench.cli import main

    register_tiny()
    code = main(
        [
            "run",
            *TINY,
            "--federation.rounds",
            "2",
            "--train.lr",
            "1e6",
            "--tracking.results_dir",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "diverged in round" in out
