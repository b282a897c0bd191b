"""Checks that need a GPU (``pytest -m gpu``; `make gpu-check` runs them on a GPU machine): pinned,
non-blocking batches equal the CPU loader's, and a federated round trains on the GPU in bf16."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")]


def test_pinned_batches_equal_the_cpu_loaders(tmp_path, monkeypatch):
    from fixtures import tiny_data
    from hf_fixtures import tiny_vilt

    from fedbench.data.loader import make_loader

    monkeypatch.setenv("FEDBENCH_CACHE", str(tmp_path / "cache"))
    bundle = tiny_vilt().featurize(tiny_data(60))
    rows = np.sort(bundle.splits["train"])
    codes = np.arange(len(rows)) % 3
    cpu = list(make_loader(bundle, rows, codes, batch_size=7, shuffle=True, seed=1))
    gpu = list(make_loader(bundle, rows, codes, batch_size=7, shuffle=True, seed=1, pin=True))
    for a, b in zip(cpu, gpu, strict=True):
        assert all(v.is_pinned() for v in b.values())
        moved = {k: v.to("cuda", non_blocking=True) for k, v in b.items()}
        torch.cuda.synchronize()
        assert all(torch.equal(a[k], moved[k].cpu()) for k in a)


def test_a_round_trains_on_the_gpu_in_bf16(tiny_cfg):
    from fedbench.federation.loop import run_experiment

    cfg = tiny_cfg("fedavg", rounds=2)
    cfg.train.accelerator, cfg.train.precision = "gpu", "bf16-mixed"
    record = run_experiment(cfg)
    assert record["status"] == "ok" and record["final"]["as_train"]["accuracy"] > 0
    assert record["rounds"][-1]["train_loss"] < record["rounds"][0]["train_loss"] + 1.0
