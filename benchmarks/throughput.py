"""Throughput of the embedded backbone with missing-aware prompts: training and evaluation samples
per second, per precision. Prints figures; run on demand (not part of `make test`):

    .venv/bin/python benchmarks/throughput.py [--precision 32-true bf16-mixed] [--batch 32]
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
import torch

from fedbench.config import DataConfig
from fedbench.data.loader import make_loader
from fedbench.federation.setup import load_data
from fedbench.methods.base import TrainSettings
from fedbench.methods.map_prompts import MAPOptions, MissingAwarePromptModule


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", nargs="+", default=["32-true", "bf16-mixed"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    bundle, backbone = load_data(DataConfig())
    module = MissingAwarePromptModule(backbone, bundle.num_classes, TrainSettings(), MAPOptions())
    idx = bundle.splits["train"]
    codes = np.random.default_rng(0).integers(0, 3, len(idx)).astype(np.int8)
    batches = list(make_loader(bundle, idx, codes, batch_size=args.batch, shuffle=True))[: args.steps]
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-3)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch}")
    for precision in args.precision:
        ctx = (
            (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
            if precision == "bf16-mixed"
            else contextlib.nullcontext
        )
        for phase in ("train", "eval"):
            module.train(phase == "train")
            n, t0 = 0, None
            for i, batch in enumerate(batches):
                if i == 1:  # first step warms up
                    t0, n = time.perf_counter(), 0
                with ctx(), torch.set_grad_enabled(phase == "train"):
                    logits = module(batch)
                    if phase == "train":
                        loss = torch.nn.functional.cross_entropy(logits.float(), batch["label"])
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                n += len(batch["label"])
            dt = time.perf_counter() - t0
            print(
                f"{precision:10s} {phase:5s} {n / dt:7.1f} samples/s  ({dt / (len(batches) - 1) * 1000:.0f} "
                "ms/step)"
            )


if __name__ == "__main__":
    main()
