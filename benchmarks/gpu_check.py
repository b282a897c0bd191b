"""`make gpu-check`: fedbench on one GPU in at most 8 minutes, written to leaderboards/gpu.md.

1. the GPU-marked tests (``pytest -m gpu``);
2. a 2-round FedPrime Food-101 run in bf16-mixed on a full-size stand-in (benchmarks/standins:
   90,704 images in the Kaggle layout, random-weight ViLT-B/32 of real size) with its wall time and
   peak GPU memory;
3. training samples/s and the fraction of the GPU's bf16 peak of the embedded and ViLT backbones in
   32-true and bf16-mixed (FLOPs of a step counted by ``torch.utils.flop_counter``);
4. the data wait share of that FedPrime training on the real GPU (fedbench's loader: worker
   threads, pinned buffers, ``non_blocking`` copies);
5. the ray executor with 1 GPU and 1, 2 and 4 fractional actors (client fits' wall time).

Each part that fails is reported on the page with its first line, and the others still run.
``--cpu`` runs every part on the CPU at a toy scale (what tests/test_gpu_check.py does).

    .venv/bin/python benchmarks/gpu_check.py [--out leaderboards/gpu.md] [--work /tmp/fedbench-gpu] [--cpu]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_parts as parts  # noqa: E402
import perf_report as rep  # noqa: E402


def gpu_tests(args) -> str:
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "-q", str(ROOT / "tests")]
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=240)
    tail = [ln for ln in out.stdout.splitlines() if ln.strip()][-1:] or ["(no output)"]
    return (
        f"`{shlex.join(cmd[1:])}`: exit status {out.returncode} in {time.perf_counter() - t:.0f} s; "
        f"pytest says: {tail[0]}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "leaderboards" / "gpu.md")
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "fedbench-gpu")
    ap.add_argument(
        "--cpu", action="store_true", help="every part on the CPU at a toy scale (tests the script)"
    )
    args = ap.parse_args()
    import torch

    from fedbench.safe_io import atomic_write_text
    from fedbench.tracking.provenance import git_commit, package_versions

    if not args.cpu and not torch.cuda.is_available():
        sys.exit(
            "gpu-check: no GPU is visible to torch here; run it on a GPU machine (or --cpu to test the "
            "script)"
        )
    t0 = time.perf_counter()
    env = parts.Setup(args.work, toy=args.cpu)
    sections = []
    steps = [
        ("1. GPU-marked tests", lambda: gpu_tests(args) if not args.cpu else "skipped with --cpu"),
        ("2. FedPrime Food-101 stand-in, 2 rounds, bf16-mixed", lambda: parts.fedprime_run(env)),
        ("3. Training throughput and the fraction of bf16 peak", lambda: parts.throughput(env)),
        ("4. Data wait share on the GPU", lambda: parts.data_wait(env)),
        ("5. The ray executor with fractional GPU actors", lambda: parts.ray_actors(env)),
    ]
    for title, step in steps:
        print(f"gpu-check: {title}", flush=True)
        try:
            sections.append(rep.section(title, step()))
        except Exception as err:  # the page says what failed; the other parts still run
            print(f"gpu-check: {title} failed: {type(err).__name__}: {err}", file=sys.stderr)
            sections.append(
                rep.section(
                    title,
                    None,
                    f"failed here ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})",
                )
            )
    machine = parts.machine()
    versions = {k: v for k, v in package_versions().items() if k != "platform"}
    head = rep.header(
        machine,
        versions,
        git_commit(ROOT),
        shlex.join(["make", "gpu-check"] if not args.cpu else sys.argv),
        time.perf_counter() - t0,
        title="# fedbench on a GPU",
        target="make gpu-check",
        script="benchmarks/gpu_check.py",
    )
    atomic_write_text(args.out, rep.page(head, sections))
    print(f"gpu-check: wrote {args.out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
