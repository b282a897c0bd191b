"""The measurements of `make gpu-check` (benchmarks/gpu_check.py renders them); each returns markdown.

On a GPU they run at the real size (a full Food-101 stand-in, a random-weight ViLT-B/32 of real
size); with ``toy`` they run on the CPU at a toy scale so that a test exercises every line.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from pathlib import Path

import numpy as np
import perf_report as rep
import torch

warnings.filterwarnings("ignore", module="torch.utils.flop_counter")

# dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets, by device name
BF16_PEAK = {
    "H200": 989.4e12,
    "H100 SXM": 989.4e12,
    "H100 80GB HBM3": 989.4e12,
    "H100 NVL": 835.0e12,
    "H100 PCIe": 756.0e12,
    "H100": 756.0e12,
    "A100": 312.0e12,
    "L40S": 362.0e12,
    "L4": 121.0e12,
}
TINY_VILT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


class Setup:
    """The stand-in data and weights (made once under ``work``) and the environment that finds them."""

    def __init__(self, work: Path, toy: bool):
        self.work, self.toy = Path(work), toy
        self.device = torch.device("cpu" if toy else "cuda")
        hf = self.work / "hf"
        # before transformers is imported: huggingface_hub reads HF_HOME once, at import
        os.environ.update(
            HF_HOME=str(hf), HF_HUB_OFFLINE="1", FEDBENCH_CACHE=str(self.work / "cache"), FEDBENCH_WANDB="0"
        )
        from standins import make_dataset, make_weights

        from fedbench.data.prepare import prepare_dataset

        if not (hf / "hub" / "models--dandelin--vilt-b32-mlm").exists():
            make_weights("vilt", hf, config_overrides=TINY_VILT if toy else None)
        root = self.work / "food101"
        if not (root / "images").exists():
            make_dataset("food101", root, scale=0.02 if toy else 1.0)
        prepare_dataset("food101", root, echo=lambda *a, **k: None)
        self.root = root

    def fedprime_config(self, rounds: int):
        from fedbench.sweep import load_config

        cfg = load_config(Path(__file__).resolve().parent.parent / "experiments" / "fedprime_food101.yaml")
        cfg.data.options["root"] = str(self.root)
        cfg.federation.rounds = rounds
        cfg.train.precision, cfg.train.accelerator = (
            ("bf16-mixed", "cpu") if self.toy else ("bf16-mixed", "gpu")
        )
        cfg.tracking.results_dir, cfg.tracking.wandb, cfg.tracking.progress = (
            str(self.work / "results"),
            False,
            False,
        )
        if self.toy:
            cfg.partition.n_clients, cfg.train.batch_size, cfg.train.eval_batch_size = 4, 8, 16
            cfg.train.max_steps, cfg.train.eval_samples = 2, 32
        return cfg


def machine() -> dict:
    import platform

    name = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu"
    return {"cpu": name, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "cpu_bf16": None}


def bf16_peak() -> float | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in BF16_PEAK.items() if k in name), None)


def fedprime_run(env: Setup) -> str:
    from fedbench.federation.loop import run_experiment

    cfg = env.fedprime_config(rounds=2)
    if env.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    record = run_experiment(cfg, force=True)
    wall = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated() / 2**30 if env.device.type == "cuda" else None
    rows = [[r["round"], r["val"]["accuracy"], r["train_loss"]] for r in record["rounds"]]
    return (
        f"`experiments/fedprime_food101.yaml` on the stand-in ({record['data_info'].get('source_rows')} "
        f"rows, the 8-dish cut), {cfg.partition.n_clients} clients, batch {cfg.train.batch_size}, "
        f"{cfg.train.precision}: {wall:.0f} s for 2 rounds and the final scoring, peak GPU memory "
        f"{rep.fmt(peak)} GiB, final accuracy (as train) {record['final']['as_train']['accuracy']:.3f} "
        "(random weights: near chance is expected).\n\n"
        + rep.table(["round", "val accuracy", "train loss"], rows)
    )


def throughput(env: Setup) -> str:
    import hf_backbones as hb
    from torch.utils.flop_counter import FlopCounterMode

    rows, peak = [], bf16_peak()
    for name, bb in (("embedded", _embedded(env)), ("vilt", _vilt(env))):
        gen = torch.Generator().manual_seed(0)
        batch = 8 if env.toy else 64
        batches = [_batch(bb, batch, gen) for _ in range(6 if env.toy else 22)]
        bb.to(env.device)
        batches = [{k: v.to(env.device) for k, v in b.items()} for b in batches]
        model = hb.PromptedHead(bb, 6, 16).to(env.device)
        with FlopCounterMode(display=False) as counter:
            loss = torch.nn.functional.cross_entropy(model(batches[0]).float(), batches[0]["label"])
            loss.backward()
        flops = counter.get_total_flops() / batch
        for precision in ("32-true", "bf16-mixed"):
            rate = hb.measure(model, batches, precision, env.device, train=True)
            rows.append([name, precision, rate, flops / 1e9, None if peak is None else rate * flops / peak])
        bb.to("cpu")
    return (
        "Prompted training (MAP-style prompts, 16 tokens before 6 layers, a head) on random inputs at batch "
        f"{8 if env.toy else 64}; FLOPs per sample (forward + backward) from `torch.utils.flop_counter`; the "
        f"fraction of the GPU's dense bf16 peak ({rep.fmt(peak)} FLOP/s) in both precisions.\n\n"
        + rep.table(["backbone", "precision", "samples/s", "GFLOP/sample", "fraction of bf16 peak"], rows)
    )


def data_wait(env: Setup) -> str:
    """One client's fit on the FedPrime stand-in through fedbench's loader and Trainer."""
    from fedbench.data.loader import make_loader
    from fedbench.federation.parts import client_module
    from fedbench.federation.resolve import resolve
    from fedbench.federation.setup import prepare
    from fedbench.federation.trainer import make_trainer

    run = resolve(env.fedprime_config(rounds=1))
    cfg = run.cfg
    exp = prepare(run)
    exp.backbone.to(env.device)
    module = client_module(run, exp.backbone, exp.bundle.num_classes, env.device)
    module.lr = cfg.train.lr
    module.on_round_start(module.trainable_state(), 0, {})
    rows = np.sort(exp.bundle.splits["train"])
    loader = make_loader(
        exp.bundle,
        rows,
        np.zeros(len(rows), dtype=np.int64),
        batch_size=cfg.train.batch_size,
        shuffle=True,
        seed=0,
        pin=env.device.type == "cuda",
    )
    t = time.perf_counter()
    make_trainer(cfg.train, 1, max_steps=cfg.train.max_steps or -1).fit(module, loader)
    if env.device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t
    return (
        f"One fit over the {len(rows):,} training rows of the stand-in, complete pairs (batch "
        f"{cfg.train.batch_size}, {cfg.train.precision}): the training thread waited "
        f"**{100 * loader.wait_s / wall:.1f}%** of {wall:.1f} s for its batches (target <= 10%)."
    )


def ray_actors(env: Setup) -> str:
    import perf_measure as pm

    rows, base = [], env.fedprime_config(rounds=1)
    for n in (1, 2) if env.toy else (1, 2, 4):
        cfg = copy.deepcopy(base)
        cfg.executor.name = "ray"
        cfg.executor.options = {
            "actors": n,
            "gpus_per_actor": 0 if env.toy else 1.0 / n,
            "cpus_per_actor": 1.0,
        }
        r = pm.timed_run(cfg)
        rows.append([n, r["totals"]["fit"], r["wall_s"]])
    return (
        "One round of the FedPrime stand-in with `executor: ray`, 1 GPU shared by 1, 2 and 4 actors "
        "(`gpus_per_actor` 1/n), each actor with its own frozen ViLT.\n\n"
        + rep.table(["actors", "fit s", "end to end s"], rows)
    )


def _vilt(env: Setup):
    from fedbench.backbones.vilt import ViltOptions, build_vilt

    return build_vilt(ViltOptions(max_text_tokens=40, max_image_len=40, image_size=64 if env.toy else 0))


def _embedded(env: Setup):
    """The embedded backbone with a random image-token bank (its real one needs the emoji cache)."""
    from fedbench.backbones.minilm_effnet import EmbeddedOptions, build_embedded

    bb = build_embedded(EmbeddedOptions())
    bb.image_bank = torch.randn(257, 9, bb.hidden_size, generator=torch.Generator().manual_seed(0))
    return bb


def _batch(bb, batch: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    import hf_backbones as hb

    if not hasattr(bb, "image_bank"):
        return hb.random_batch(bb, batch, gen)
    n = 32
    return {
        "text_ids": torch.randint(5, 1000, (batch, n), generator=gen),
        "text_keep": torch.ones(batch, n, dtype=torch.bool),
        "image": torch.randint(0, 256, (batch,), generator=gen),
        "code": torch.arange(batch) % 3,
        "label": torch.randint(0, 10, (batch,), generator=gen),
    }
