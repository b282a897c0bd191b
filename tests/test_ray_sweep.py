"""Sweep cells as Ray tasks: SIGKILL the driver of `fedbench sweep --cells ray` (and the
local Ray it started) while one cell is done and the next is in flight, run the same command
again: the finished cell is skipped (its record untouched) and the other resumes from its round
checkpoint to the numbers of an uninterrupted run.

(Left alone, Ray ends a killed driver's cells itself within about 3 s; a tiny cell can finish its
run in that time, which would leave nothing to resume, so the test ends them at once.)"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("ray")

from fixtures import TINY_RUN, tiny_config  # noqa: E402
from processes import HANG_GUARD_S

from fedbench.federation.loop import run_experiment  # noqa: E402
from fedbench.federation.resolve import run_id_of  # noqa: E402
from fedbench.safe_io import load_sealed  # noqa: E402

TESTS = Path(__file__).parent
ROUNDS = 50


def cli(results: Path) -> list[str]:
    args = [
        "sweep",
        *TINY_RUN,
        "--federation.rounds",
        str(ROUNDS),
        "--train.batch_size",
        "16",
        "--train.lr",
        "0.01",
        "--train.threads",
        "1",
        "--tracking.wandb",
        "false",
        "--tracking.results_dir",
        str(results),
        "--seeds",
        "0 1",
        "--leaderboards",
        str(results / "boards"),
        "--cells",
        "ray",
        "--cells_options",
        '{"actors": 1}',
    ]  # one cell at a time: seed 0, then seed 1
    code = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r}); from fixtures import register_tiny; "
        f"register_tiny(); from fedbench.cli import main; sys.exit(main({args!r}))"
    )
    return [sys.executable, "-c", code]


def _session(ray_tmp: str) -> dict[int, str]:
    """Live processes of a Ray session started with RAY_TMPDIR=ray_tmp (pid -> name). Ray renames
    its processes and its agents drop RAY_TMPDIR, so they are found by their environment or by
    their open files under ray_tmp (the session's logs)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            mine = f"RAY_TMPDIR={ray_tmp}".encode() in (proc / "environ").read_bytes().split(b"\0")
            if not mine:
                mine = any(os.readlink(fd).startswith(ray_tmp) for fd in (proc / "fd").iterdir())
            if mine:
                found[int(proc.name)] = (proc / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError):
            pass
    return found


def _end_session(ray_tmp: str) -> None:
    for pid in _session(ray_tmp):  # only processes this test started (its own RAY_TMPDIR)
        try:
            os.kill(pid, 9)
        except OSError:
            pass


def test_killed_ray_sweep_skips_finished_cells_and_resumes(tmp_path):
    cfg = tiny_config(tmp_path / "ref", "fedavg", ROUNDS)
    cfg.train.threads, cfg.tracking.wandb, cfg.seed = 1, False, 1
    threads = torch.get_num_threads()
    try:
        reference = run_experiment(cfg)
    finally:
        torch.set_num_threads(threads)
    cfg.seed = 0
    first_id, second_id = run_id_of(cfg), reference["run_id"]

    results = tmp_path / "sweep"
    first, ckpt = results / "tiny" / f"{first_id}.json", results / "tiny" / "checkpoints" / f"{second_id}.pt"
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths live under it
    env = {**os.environ, "FEDBENCH_WANDB": "0", "RAY_TMPDIR": ray_tmp}
    try:
        proc = subprocess.Popen(cli(results), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + HANG_GUARD_S
        while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        proc.kill()
        _end_session(ray_tmp)  # the whole local cluster goes down with its driver, as on a crashed machine
        err = proc.communicate()[1].decode(errors="replace")
        assert ckpt.exists(), f"the sweep ended before it could be killed:\n{err[-2000:]}"
        assert first.exists() and not (results / "tiny" / f"{second_id}.json").exists()
        stamp = first.stat().st_mtime_ns
        assert 1 <= load_sealed(ckpt)["next_round"] < ROUNDS

        again = subprocess.run(cli(results), env=env, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr[-2000:]
    finally:
        _end_session(ray_tmp)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert first.stat().st_mtime_ns == stamp  # skipped, not rerun
    record = json.loads((results / "tiny" / f"{second_id}.json").read_text())
    assert record["final"] == reference["final"]
    assert [r["val"] for r in record["rounds"]] == [r["val"] for r in reference["rounds"]]
    assert "[2/2]" in again.stderr
