"""Ctrl-C at random moments of a run: how many tries end as they should (exit 130, the one-line
resume message, within 10 s)?

Starts the tiny run of tests/test_interrupt_and_divergence.py as the console script does, waits
for its first round checkpoint, sleeps a random 0-1.5 s (inside a later round's fits, loader starts,
finalisers, checkpoint writes) and sends SIGINT. Prints each try that ends otherwise with its stderr,
then the counts by outcome. Not part of `make test` (a try takes ~10 s).

    .venv/bin/python benchmarks/interrupt_stress.py [--tries 60] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_interrupt_and_divergence import TINY, _start, _wait_for  # noqa: E402


def one_try(work: Path, delay: float) -> tuple[str, str]:
    results = work / "results"
    proc = _start(["run", *TINY, "--federation.rounds", "200", "--tracking.results_dir", str(results)], work)
    if not _wait_for(lambda: (results / "tiny" / "checkpoints").glob("*.pt"), proc):
        proc.kill()
        return "no round finished", proc.communicate()[1]
    time.sleep(delay)
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=40)
    except Exception:  # subprocess.TimeoutExpired: the interrupt was lost
        proc.kill()
        return "still running after 40 s", proc.communicate()[1]
    if proc.returncode != 130:
        return f"exit {proc.returncode}", err
    if "run the same command to resume" not in err:
        return "exit 130 without the message", err
    return ("ok" if time.time() - sent < 10 else "ok but slower than 10 s"), err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tries", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    outcomes: Counter = Counter()
    for i in range(args.tries):
        delay = rng.uniform(0, 1.5)
        with tempfile.TemporaryDirectory(prefix="fedbench-interrupt-") as work:
            outcome, err = one_try(Path(work), delay)
        outcomes[outcome] += 1
        if outcome != "ok":
            print(f"try {i} (SIGINT {delay:.2f} s after the first checkpoint): {outcome}\n{err[-3000:]}")
        print(f"try {i}: {outcome}", flush=True)
    print("outcomes:", ", ".join(f"{k} {v}" for k, v in outcomes.most_common()))


if __name__ == "__main__":
    main()
