"""`make perf`: measures fedbench's speed and memory on this machine and writes leaderboards/perf.md
(generated; run it again rather than editing the page). One torch thread per process.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/perf.py [--out leaderboards/perf.md] [--config experiments/emoji_quick.yaml] [--flower-rounds 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import perf_report as rep  # noqa: E402


def machine() -> dict:
    import torch
    from perf_measure import cpu_bf16

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "cpu_bf16": cpu_bf16()}


def load_config(path: Path, rounds: int):
    import yaml

    from fedbench.config import from_dict

    if not path.is_file():
        sys.exit(f"perf: no config file at {path}")
    cfg = from_dict(yaml.safe_load(path.read_text()))
    cfg.federation.rounds = rounds
    cfg.train.threads = 1
    cfg.tracking.progress, cfg.tracking.wandb = False, False
    return cfg


def throughput_section(f: dict) -> str:
    lo, med, hi = rep.min_med_max(f["ratio"])
    n = f["samples"]
    rows = [["client fit / bare loop (throughput ratio)", lo, med, hi]]
    rows += [["client fit, samples/s", *(n / t for t in reversed(rep.min_med_max(f["fit_s"])))]]
    rows += [["bare loop, samples/s", *(n / t for t in reversed(rep.min_med_max(f["bare_s"])))]]
    return (f"One client fit (fedbench's lean Lightning Trainer, built per fit as the loop does) against a bare PyTorch loop "
            f"(the same module's `training_step` and optimizer) over the same {f['batches']} batches ({n} samples), "
            f"interleaved, {len(f['ratio'])} repetitions after one warm-up of each. Target >= 0.95: "
            f"median {med:.3f}, {rep.verdict(med, 0.95, True)}.\n\n" + rep.table(["figure", "min", "median", "max"], rows))


def phases_section(f: dict, rounds: int, config: str) -> str:
    t, phases = f["totals"], ["fit", "validation", "aggregation", "checkpoint", "other"]
    rows = [[f"round {i + 1}", *(r[p] for p in phases), r["wall"]] for i, r in enumerate(f["rounds"])]
    rows.append(["all rounds", *(t[p] for p in phases), t["wall"]])
    rows.append(["share", *(f"{100 * t[p] / t['wall']:.2f}%" for p in phases), "100%"])
    over = 100 * f["overhead"]
    return (f"`{config}` (fedavg, 5 clients, all sampled) for {rounds} rounds, 32-true, timed by "
            "`fedbench.federation.timing.PhaseTimer` (a callback wrapping the checkpoint callback). Seconds per phase: "
            "fit = the executor running the round's client fits; validation = the global model scored on the validation "
            "split; other = client sampling and anything not in a named phase. "
            f"Per-round overhead outside client compute and validation (aggregation + checkpoint + other): "
            f"**{over:.2f}%** of the rounds' wall time (target <= 5%: {rep.verdict(over, 5.0, False)}); "
            f"counting validation as overhead too: {100 * (t['wall'] - t['fit']) / t['wall']:.1f}%. "
            f"The run took {f['wall_s']:.1f} s end to end, of which {t['wall']:.1f} s in rounds (the rest: setup and "
            f"the final test scoring on every missing condition).\n\n"
            + rep.table(["", *phases, "wall"], rows))


def memory_section(f: dict) -> str:
    mb = 2**20
    rows = [[f"round {i + 1}", n, r] for i, (n, r) in enumerate(zip(f["stored"], f["rss_mb"], strict=True))]
    return (f"{f['method']} on the synthetic dataset and backbone, {f['clients']} clients, {f['per_round']} per round, "
            f"{f['rounds']} rounds ({f['wall_s']:.0f} s). Personal state is created only for sampled clients; after each "
            f"round the resident memory (RSS, after `gc.collect()`) grows by what the newly stored clients keep. Median over "
            f"rounds 2..{f['rounds']}: **{f['kept_per_client'] / mb:.2f} MB kept per client** against "
            f"{f['trainable_per_client'] / mb:.2f} MB of trainable personal tensors: ratio **{f['ratio']:.2f}** "
            f"(target <= 1.1: {rep.verdict(f['ratio'], 1.1, False)}); per round: "
            + ", ".join(f"{s / f['trainable_per_client']:.2f}" for s in f["step_per_client"])
            + ". RSS also moves with the allocator (freed arenas are not always returned), so single rounds are noisy."
            "\n\n" + rep.table(["after", "stored states", "RSS MB"], rows, digits=4))


def precision_section(fp32: dict, bf16: dict, has_bf16: bool, rounds: int) -> str:
    rows = [[name, r["wall_s"], r["totals"]["fit"], r["totals"]["validation"], r["final"]["accuracy"]]
            for name, r in (("32-true", fp32), ("bf16-mixed", bf16))]
    return (f"The same config and {rounds} rounds in each precision, one run each (the 32-true run is the one above); "
            f"under bf16-mixed the attention itself runs in float32 on a CPU (fedbench/backbones/attention.py). "
            f"This CPU {'has' if has_bf16 else 'lacks'} native bf16 instructions "
            f"(AVX512-BF16/AMX). bf16-mixed / 32-true speed-up end to end: **{fp32['wall_s'] / bf16['wall_s']:.2f}x**, "
            f"in the client fits: {fp32['totals']['fit'] / bf16['totals']['fit']:.2f}x.\n\n"
            + rep.table(["precision", "end to end s", "fit s", "validation s", "final accuracy (as train)"], rows))


def flower_figures(args, config_name: str, cores: int) -> tuple[str | None, str]:
    """Section e's body, or None and why (Flower missing or its run failed: the page says so)."""
    import perf_measure as pm

    try:
        import fedbench.flower  # noqa: F401
    except Exception as err:  # fedbench.flower raises ConfigError with the install hint
        return None, f"the Flower adapter cannot be imported here ({err})"
    try:
        f = pm.loop_vs_flower(load_config(args.config, args.flower_rounds))
    except Exception as err:
        print(f"perf: the Flower comparison failed: {type(err).__name__}: {err}", file=sys.stderr)
        return None, f"the Flower comparison failed on this machine ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
    return rep.flower_section(f, config_name, cores), ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "leaderboards" / "perf.md")
    ap.add_argument("--config", type=Path, default=ROOT / "experiments" / "emoji_quick.yaml")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--flower-rounds", type=int, default=2, help="rounds of the fedbench-against-Flower runs (section e)")
    ap.add_argument("--command", default=None, help="the command to print on the page (default: this one)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    import perf_measure as pm

    from fedbench.tracking.provenance import git_commit, package_versions
    from fedbench.tracking.records import atomic_write_text

    t0 = time.perf_counter()
    cfg = load_config(args.config, args.rounds)
    config_name = str(args.config.resolve().relative_to(ROOT)) if args.config.resolve().is_relative_to(ROOT) else str(args.config)
    mach, sections = machine(), []
    print("perf: a. client fit against the bare loop", flush=True)
    sections.append(rep.section("a. Client-fit throughput against a bare PyTorch loop", throughput_section(pm.client_fit_vs_bare(cfg))))
    print("perf: b. where a round's time goes", flush=True)
    fp32 = pm.timed_run(cfg)
    sections.append(rep.section("b. Where a round's time goes", phases_section(fp32, args.rounds, config_name)))
    print("perf: c. memory per client", flush=True)
    sections.append(rep.section("c. Memory per client", memory_section(pm.memory_per_client())))
    print("perf: d. 32-true against bf16-mixed", flush=True)
    cfg_bf16 = load_config(args.config, args.rounds)
    cfg_bf16.train.precision = "bf16-mixed"
    bf16 = pm.timed_run(cfg_bf16)
    sections.append(rep.section("d. 32-true against bf16-mixed on this CPU", precision_section(fp32, bf16, mach["cpu_bf16"], args.rounds)))
    print("perf: e. fedbench against Flower's simulation engine", flush=True)
    sections.append(rep.section("e. fedbench against Flower's simulation engine", *flower_figures(args, config_name, mach["cores"])))
    sections.append(rep.section("Not measured yet", "The 10,000-client run (benchmarks/many_clients.py, minutes per method), "
                                "bf16-mixed as the quick profile's default (it would change every quick run's identity), and the GPU figures "
                                "(samples/s per backbone and precision, 1 to N Ray actors, fraction of bf16 peak)."))
    command = args.command or shlex.join([Path(sys.executable).name, *sys.argv])
    versions = {k: v for k, v in package_versions().items() if k != "platform"}
    versions["flwr"] = _version("flwr")
    head = rep.header(mach, versions, git_commit(ROOT), command, time.perf_counter() - t0)
    atomic_write_text(args.out, rep.page(head, sections))
    print(f"perf: wrote {args.out} in {time.perf_counter() - t0:.0f} s")


def _version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
