"""A real kill: SIGKILL a CLI run mid-way, run the same command again, and get the numbers of an
uninterrupted run."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from fixtures import TINY_RUN, tiny_config
from processes import HANG_GUARD_S

from fedbench.federation.loop import run_experiment
from fedbench.federation.resolve import run_id_of
from fedbench.safe_io import load_sealed

TESTS = Path(__file__).parent
ROUNDS = 25


def cli(results: Path) -> list[str]:
    args = [
        "run",
        *TINY_RUN,
        "--federation.rounds",
        str(ROUNDS),
        "--train.batch_size",
        "16",
        "--train.lr",
        "0.01",
        "--tracking.results_dir",
        str(results),
    ]
    code = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r}); from fixtures import register_tiny; "
        f"register_tiny(); from fedbench.cli import main; sys.exit(main({args!r}))"
    )
    return [sys.executable, "-c", code]


def test_sigkill_then_rerun_matches_uninterrupted(tmp_path):
    cfg = tiny_config(tmp_path / "ref", "fedavg", ROUNDS)
    cfg.tracking.wandb = False
    reference = run_experiment(cfg)

    results = tmp_path / "killed"
    ckpt = results / "tiny" / "checkpoints" / f"{run_id_of(cfg)}.pt"
    proc = subprocess.Popen(cli(results), env={**os.environ, "FEDBENCH_WANDB": "0"})
    deadline = time.time() + HANG_GUARD_S
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert ckpt.exists(), "the run ended before it could be killed"
    done_rounds = load_sealed(ckpt)["next_round"]
    assert 1 <= done_rounds < ROUNDS

    assert (
        subprocess.run(
            cli(results), env={**os.environ, "FEDBENCH_WANDB": "0"}, capture_output=True
        ).returncode
        == 0
    )
    record = json.loads((results / "tiny" / f"{reference['run_id']}.json").read_text())
    assert record["final"] == reference["final"]
    assert [r["val"] for r in record["rounds"]] == [r["val"] for r in reference["rounds"]]
