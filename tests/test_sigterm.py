"""SIGTERM stops a parallel sweep like Ctrl-C: the parent stops its workers, waits for them, says
so in one line, and no process it started is left after 10 s. The processes are found by walking
/proc from the sweep's pid, not by name, so other work on the machine does not count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import HANG_GUARD_S, HAVE_PROC, descendants, running

pytestmark = pytest.mark.skipif(not HAVE_PROC, reason="walks /proc (Linux)")


def _sweep(results: Path) -> list[str]:
    """The console script's path (``entry``) on the test plugin's dataset and backbone, which the
    worker processes find through entry points as a user's plugin would."""
    args = [
        "sweep",
        "--data.dataset",
        "demo",
        "--backbone.name",
        "demo-bert",
        "--partition.n_clients",
        "3",
        "--partition.min_size",
        "4",
        "--federation.rounds",
        "500",
        "--train.batch_size",
        "16",
        "--method.options",
        '{"prompt_length": 2, "prompt_layers": 1}',
        "--methods",
        "fedavg fedprox",
        "--workers",
        "2",
        "--tracking.progress",
        "false",
        "--tracking.results_dir",
        str(results),
        "--leaderboards",
        str(results / "boards"),
    ]
    return [
        sys.executable,
        "-c",
        f"import sys; from fedbench.cli import entry; sys.argv = ['fedbench', *{args!r}]; entry()",
    ]


def test_sigterm_stops_a_two_worker_sweep_and_leaves_no_process(tmp_path):
    from test_plugins import _install_metadata

    results = tmp_path / "results"
    env = {
        **_install_metadata(tmp_path / "site"),
        "FEDBENCH_WANDB": "0",
        "FEDBENCH_CACHE": str(tmp_path / "cache"),
    }
    proc = subprocess.Popen(_sweep(results), env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    started: set[int] = set()
    try:
        checkpoints = results / "demo" / "checkpoints"
        deadline = time.monotonic() + HANG_GUARD_S
        while time.monotonic() < deadline and proc.poll() is None:  # both cells training (a checkpoint each)
            started |= descendants(proc.pid)
            if checkpoints.is_dir() and len(list(checkpoints.glob("*.pt"))) >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read()
        started |= descendants(proc.pid)
        assert len(started) >= 2, "the sweep should run two worker processes"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=HANG_GUARD_S)
        assert proc.returncode == 143, err
        assert "fedbench: interrupted (SIGTERM)" in err and "run the same command to resume" in err
        assert "Traceback" not in err
        end = time.monotonic() + 10
        while time.monotonic() < end and any(running(p) for p in started):
            time.sleep(0.2)
        assert not [p for p in started if running(p)], "processes the sweep started outlived it by 10 s"
    finally:
        for pid in [proc.pid, *started]:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
    assert not (results / "demo" / "personal-store").exists()
    assert len(list(checkpoints.glob("*.pt"))) == 2  # what the stopped cells finished is kept to resume from
