"""`make perf`: measures fedbench's speed and memory on this machine and writes leaderboards/perf.md
(generated; run it again rather than editing the page). One torch thread per process.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/perf.py [--out leaderboards/perf.md]
        [--config experiments/emoji_quick.yaml] [--flower-rounds N]
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

    from fedbench.hardware import cpu_has_bf16

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_bf16": cpu_has_bf16(),
    }


def load_config(path: Path, rounds: int | None):
    import yaml

    from fedbench.config import from_dict

    if not path.is_file():
        sys.exit(f"perf: no config file at {path}")
    cfg = from_dict(yaml.safe_load(path.read_text()))
    if rounds is not None:
        cfg.federation.rounds = rounds
    cfg.train.threads, cfg.train.precision = 1, "32-true"  # section d sets bf16-mixed itself
    cfg.tracking.progress, cfg.tracking.wandb = False, False
    return cfg


def throughput_section(f: dict) -> str:
    lo, med, hi = rep.min_med_max(f["ratio"])
    n = f["samples"]
    rows = [["client fit / bare loop (throughput ratio)", lo, med, hi]]
    rows += [["client fit, samples/s", *(n / t for t in reversed(rep.min_med_max(f["fit_s"])))]]
    rows += [["bare loop, samples/s", *(n / t for t in reversed(rep.min_med_max(f["bare_s"])))]]
    return (
        "One client fit (fedbench's lean Lightning Trainer, built per fit as the loop does) against a bare "
        f"PyTorch loop (the same module's `training_step` and optimizer) over the same {f['batches']} "
        f"batches ({n} samples), interleaved, {len(f['ratio'])} repetitions after one warm-up of each. "
        f"Target >= 0.95: median {med:.3f}, {rep.verdict(med, 0.95, True)}.\n\n"
        + rep.table(["figure", "min", "median", "max"], rows)
    )


def phases_section(f: dict, rounds: int, config: str) -> str:
    t, phases = f["totals"], ["fit", "validation", "aggregation", "checkpoint", "other"]
    rows = [[f"round {i + 1}", *(r[p] for p in phases), r["wall"]] for i, r in enumerate(f["rounds"])]
    rows.append(["all rounds", *(t[p] for p in phases), t["wall"]])
    rows.append(["share", *(f"{100 * t[p] / t['wall']:.2f}%" for p in phases), "100%"])
    over = 100 * f["overhead"]
    return (
        f"`{config}` (fedavg, 5 clients, all sampled) for {rounds} rounds, 32-true, timed by "
        "`fedbench.federation.timing.PhaseTimer` (a callback wrapping the checkpoint callback). Seconds per "
        "phase: fit = the executor running the round's client fits; validation = the global model scored on "
        "the validation split; other = client sampling and anything not in a named phase. Per-round "
        f"overhead outside client compute and validation (aggregation + checkpoint + other): **{over:.2f}%** "
        f"of the rounds' wall time (target <= 5%: {rep.verdict(over, 5.0, False)}); counting validation as "
        f"overhead too: {100 * (t['wall'] - t['fit']) / t['wall']:.1f}%. The run took {f['wall_s']:.1f} s "
        f"end to end, of which {t['wall']:.1f} s in rounds (the rest: setup and "
        f"the final test scoring on every missing condition).\n\n" + rep.table(["", *phases, "wall"], rows)
    )


def memory_section(runs: list[dict]) -> str:
    mb, ref = 2**20, runs[0]
    head = [
        "store",
        "freed memory released",
        "kept per client MB",
        "kept / trainable",
        "per round",
        "RSS MB after each round",
        "s",
    ]
    rows = [
        [
            r["store"],
            r["release"],
            r["kept_per_client"] / mb,
            r["ratio"],
            ", ".join(f"{s / r['trainable_per_client']:.2f}" for s in r["step_per_client"]),
            ", ".join(f"{x:.0f}" for x in r["rss_mb"]),
            r["wall_s"],
        ]
        for r in runs
    ]
    disk = next((r["disk_per_state"] for r in runs if r["disk_per_state"]), None)
    return (
        f"{ref['method']} on the synthetic dataset and backbone, {ref['clients']} clients, "
        f"{ref['per_round']} per round, {ref['rounds']} rounds, with the default callbacks (checkpoints "
        "written). Personal state is created only for sampled clients. Kept per client: after each round "
        "(after `gc.collect()`), the growth of the resident memory (RSS) over the clients newly stored; the "
        f"median over rounds 2..{ref['rounds']}, against {ref['trainable_per_client'] / mb:.2f} MB of "
        f"trainable personal tensors per client. fedbench's default (first row): **{ref['ratio']:.2f}** "
        f"(target <= 1.1: {rep.verdict(ref['ratio'], 1.1, False)}).\n\n"
        "Why the loop releases freed memory (second row: the release turned off): a round allocates and "
        "frees hundreds of MB (client modules, batches, scoring, checkpoint buffers); glibc keeps freed "
        "memory in its heap for reuse, and after the first large free it raises its mmap threshold, so "
        "later states land in that heap too. Without the release the resident size after round 1 is "
        f"{runs[1]['rss_mb'][0]:.0f} MB against {ref['rss_mb'][0]:.0f} MB, and its growth per stored client "
        "follows where the new states land in the slack (the per-round column), not what they hold. The "
        "loop calls `malloc_trim(0)` after every round's callbacks (fedbench/federation/heap.py; glibc "
        "only, microseconds). The disk store (third row) keeps each state in a safetensors file"
        + (
            f" of {disk / mb:.2f} MB ({disk / ref['trainable_per_client']:.3f} of the trainable bytes)"
            if disk
            else ""
        )
        + " and reads it back when the client is sampled or scored.\n\n"
        + rep.table(head, rows)
    )


def many_clients_section(runs: list[dict]) -> str:
    ref = runs[0]
    head = [
        "method",
        "peak RSS MB",
        "setup s",
        "round s",
        "checkpoint s",
        "checkpoint folder MB",
        "final scoring s",
        "states stored",
        "accuracy (as train)",
    ]
    rows = [
        [
            r["method"],
            r["peak_rss_mb"],
            r["setup_s"] + r["featurise_s"],
            ", ".join(f"{s:.1f}" for s in r["round_s"]),
            ", ".join(f"{s:.2f}" for s in r["checkpoint_s"]),
            r["checkpoint_dir_bytes"][-1] / 1e6,
            r["final_scoring_s"],
            r["stored_states"],
            r["accuracy"],
        ]
        for r in runs
    ]
    return (
        f"`benchmarks/many_clients.py`: {ref['clients']:,} clients, {ref['per_round']} per round, "
        f"{len(ref['round_s'])} rounds, on the synthetic dataset ({ref['clients'] * 2:,} training samples, 2 "
        "per client) and backbone (the embedded MiniLM transformer with cheap image tokens), each method in "
        f"its own process, {ref['store']} store; the personalized score on a seeded sample of "
        f"{ref['personalized'].get('scored_clients')} clients (written in the record). Setup includes "
        "featurising the data; a checkpoint writes only the clients whose state changed.\n\n"
        + rep.table(head, rows)
    )


def precision_section(fp32: dict, bf16: dict, has_bf16: bool, rounds: int) -> str:
    rows = [
        [name, r["wall_s"], r["totals"]["fit"], r["totals"]["validation"], r["final"]["accuracy"]]
        for name, r in (("32-true", fp32), ("bf16-mixed", bf16))
    ]
    return (
        f"The same config and {rounds} rounds in each precision, one run each (the 32-true run is the one "
        "above); under bf16-mixed the attention itself runs in float32 on a CPU "
        f"(fedbench/backbones/attention.py). This CPU {'has' if has_bf16 else 'lacks'} native bf16 "
        "instructions (AVX512-BF16/AMX). bf16-mixed / 32-true speed-up end to end: "
        f"**{fp32['wall_s'] / bf16['wall_s']:.2f}x**, in the client fits: "
        f"{fp32['totals']['fit'] / bf16['totals']['fit']:.2f}x.\n\n"
        + rep.table(["precision", "end to end s", "fit s", "validation s", "final accuracy (as train)"], rows)
    )


def actors_section(runs: list[tuple[int, dict]], rounds: int, config: str) -> str:
    fit1 = runs[0][1]["totals"]["fit"]
    rows = [
        [n, r["totals"]["fit"], fit1 / r["totals"]["fit"], r["wall_s"], r["final"]["accuracy"]]
        for n, r in runs
    ]
    n_max, best = runs[-1][0], fit1 / runs[-1][1]["totals"]["fit"]
    return (
        f"`{config}` (fedavg, 5 clients, all sampled) for {rounds} rounds, 32-true, with `executor: ray` and "
        f"1 to {n_max} actors of one CPU and one torch thread each (Ray started by the run; the actors build "
        f"their backbone once, before round 1). Speed-up of the rounds' client fits from 1 to {n_max} "
        f"actors: **{best:.2f}x** (ideal {n_max}x; with 5 clients on {n_max} actors a round waits for the "
        "actor that gets the most). The same final accuracy in every row is the executor's equivalence "
        "(tests/test_ray_executor.py checks it bit for bit).\n\n"
        + rep.table(["actors", "fit s", "fit speed-up", "end to end s", "final accuracy (as train)"], rows)
        + "\n\nOn a GPU: not measured here, no GPU is visible to torch on this machine. The GPU figures "
        "(samples/s of the embedded and ViLT backbones in 32-true and bf16-mixed, 1 to N GPU actors, the "
        "fraction of the GPU's bf16 peak) need one; `benchmarks/throughput.py` and "
        "`benchmarks/hf_backbones.py` measure the first by hand."
    )


def _failed(what: str, err: Exception) -> str:
    """Report a measurement that failed (whole, on stderr) and give its first line for the page."""
    print(f"perf: {what} failed: {type(err).__name__}: {err}", file=sys.stderr)
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def actors_figures(args, config_name: str, cores: int) -> tuple[str | None, str]:
    """Section g's body, or None and why (Ray missing, or a run failed: the page says so)."""
    import perf_measure as pm

    actors = []
    try:
        for n in range(1, min(cores, 4) + 1):
            c = load_config(args.config, args.rounds)
            c.executor.name, c.executor.options = "ray", {"actors": n, "cpus_per_actor": 1.0}
            actors.append((n, pm.timed_run(c)))
    except Exception as err:  # fedbench raises ConfigError with the install hint where Ray is missing
        return None, f"the ray executor could not run here ({_failed('the ray executor runs', err)})"
    return actors_section(actors, args.rounds, config_name), ""


FLOWER_INTRO = (
    "The same client (fedbench's `ClientRunner`: one lean Lightning fit) run by fedbench's loop and by "
    "Flower's simulation engine through the adapter (`fedbench.flower.simulate`), at the same client "
    "parallelism on each side. Timed from the call to its return; the fedbench run is stopped after its last "
    "round (before the final test scoring; the Flower run scores nothing). Start-up: before the first round "
    "begins (fedbench: `prepare`, the frozen backbone built and the featurised data read from the feature "
    "cache, warm here, plus Ray and its actors with the ray executor; Flower: Ray started and the server "
    "strategy's own `prepare`). Flower's round 1 also holds asking every node which client it is and each "
    "actor's start-up (a Ray worker process importing torch, Lightning and fedbench, then its own "
    "`prepare`); after the last round: saving the result and shutting Ray down. Where the difference comes "
    "from: the client compute is the same code on both sides, so what separates them is what each harness "
    "pays once per run and per round; each table splits the two. Any gap, the 1.5x target included, can only "
    "come from those costs; the more rounds, the less the once-per-run part weighs."
)


def flower_figures(args, config_name: str, cores: int) -> tuple[str | None, str]:
    """Section e's body, or None and why (Flower missing or its run failed: the page says so)."""
    import perf_measure as pm

    try:
        import fedbench.flower  # noqa: F401
    except Exception as err:  # fedbench.flower raises ConfigError with the install hint
        return None, f"the Flower adapter cannot be imported here ({err})"
    parts = [FLOWER_INTRO]
    for n in sorted({1, cores}):
        try:
            parts.append(
                rep.flower_section(
                    pm.loop_vs_flower(load_config(args.config, args.flower_rounds), n), config_name
                )
            )
        except Exception as err:
            parts.append(
                f"At {n} client fit(s) at once: not measured, the comparison failed on this machine "
                f"({_failed(f'the Flower comparison at {n} fit(s) at once', err)})."
            )
    return "\n\n".join(parts), ""


def datapath_figures() -> tuple[str | None, str]:
    """Section h's body, or None and why."""
    import perf_datapath as pdp

    try:
        return rep.host_data_section(pdp.host_data_path()), ""
    except Exception as err:
        return None, f"the measurement failed here ({_failed('the host data path', err)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "leaderboards" / "perf.md")
    ap.add_argument("--config", type=Path, default=ROOT / "experiments" / "emoji_quick.yaml")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--flower-rounds",
        type=int,
        default=None,
        help="rounds of the fedbench-against-Flower runs (section e; default: the config's)",
    )
    ap.add_argument("--command", default=None, help="the command to print on the page (default: this one)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    import perf_measure as pm
    import perf_memory as pmem

    from fedbench.safe_io import atomic_write_text
    from fedbench.tracking.provenance import git_commit, package_versions

    t0 = time.perf_counter()
    cfg = load_config(args.config, args.rounds)
    config_name = (
        str(args.config.resolve().relative_to(ROOT))
        if args.config.resolve().is_relative_to(ROOT)
        else str(args.config)
    )
    mach, sections = machine(), []
    print("perf: a. client fit against the bare loop", flush=True)
    sections.append(
        rep.section(
            "a. Client-fit throughput against a bare PyTorch loop",
            throughput_section(pm.client_fit_vs_bare(cfg)),
        )
    )
    print("perf: b. where a round's time goes", flush=True)
    fp32 = pm.timed_run(cfg)
    sections.append(
        rep.section("b. Where a round's time goes", phases_section(fp32, args.rounds, config_name))
    )
    print("perf: c. memory per client", flush=True)
    mem = [
        pmem.memory_per_client("memory"),
        pmem.memory_per_client("memory", release=False),
        pmem.memory_per_client("disk"),
    ]
    sections.append(rep.section("c. Memory per client", memory_section(mem)))
    print("perf: d. 32-true against bf16-mixed", flush=True)
    cfg_bf16 = load_config(args.config, args.rounds)
    cfg_bf16.train.precision = "bf16-mixed"
    bf16 = pm.timed_run(cfg_bf16)
    sections.append(
        rep.section(
            "d. 32-true against bf16-mixed on this CPU",
            precision_section(fp32, bf16, mach["cpu_bf16"], args.rounds),
        )
    )
    print("perf: e. fedbench against Flower's simulation engine", flush=True)
    sections.append(
        rep.section(
            "e. fedbench against Flower's simulation engine",
            *flower_figures(args, config_name, mach["cores"]),
        )
    )
    print("perf: f. 10,000 clients", flush=True)
    sections.append(
        rep.section(
            "f. 10,000 clients", many_clients_section([pmem.many_clients(m) for m in ("fedavg", "fedprime")])
        )
    )
    print("perf: g. 1 to N Ray actors", flush=True)
    sections.append(
        rep.section(
            "g. The ray executor from 1 to N actors", *actors_figures(args, config_name, mach["cores"])
        )
    )
    print("perf: h. the host data path", flush=True)
    sections.append(rep.section("h. Host data path", *datapath_figures()))
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
