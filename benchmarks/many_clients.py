"""Many clients: peak RSS and time per round of a federation with 10,000 clients, 100 sampled per
round, on the ``synthetic`` dataset and backbone (the embedded MiniLM transformer with cheap image
tokens). Each method runs in its own process, so each peak RSS (the kernel's VmHWM, which starts
afresh at exec, unlike ``getrusage``'s ru_maxrss, which a child inherits from the process that
started it) is its own. Prints figures; run on demand (not part of ``make test``):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/many_clients.py [--clients 10000] [--per-round 100]
        [--rounds 3] [--methods fedavg fedprime] [--store memory|disk] [--personalized-clients 100]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time


def peak_rss_mb() -> float:
    """This process's peak resident size since its exec (VmHWM)."""
    from fedbench.hardware import peak_rss_bytes

    return peak_rss_bytes() / 2**20


def run_one(args: argparse.Namespace) -> dict:
    import torch
    from perf_memory import synthetic_config

    from fedbench.federation.callbacks import Callback
    from fedbench.federation.loop import run_experiment
    from fedbench.federation.resolve import resolve
    from fedbench.federation.setup import prepare

    torch.set_num_threads(args.threads)
    cfg = synthetic_config(
        args.one,
        args.clients,
        args.per_round,
        args.rounds,
        store=args.store,
        personalized_clients=args.personalized_clients,
        samples_per_client=args.samples_per_client,
        threads=args.threads,
    )

    t0 = time.perf_counter()
    prepare(
        resolve(cfg)
    )  # featurises once (cached per process), so run_experiment's own prepare is the setup proper
    featurise_s = time.perf_counter() - t0

    class Timing(Callback):
        def __init__(self):
            self.rounds, self.checkpoint_s, self.checkpoint_bytes = [], [], []

        def on_run_start(self, fed):
            self.setup_end = time.perf_counter()

        def on_round_start(self, fed, r, clients):
            self.start = time.perf_counter()

        def on_round_end(self, fed, entry):
            self.rounds.append(time.perf_counter() - self.start)
            t = time.perf_counter()
            fed.checkpoint(entry["round"])
            self.checkpoint_s.append(time.perf_counter() - t)
            folder = fed.checkpoint_path.parent
            self.checkpoint_bytes.append(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()))
            self.stored, self.store_bytes = len(fed.personal.sampled()), fed.personal.nbytes()

        def on_run_end(self, fed, record):
            self.end = time.perf_counter()

    timing = Timing()
    with tempfile.TemporaryDirectory() as tmp:
        cfg.tracking.results_dir = tmp
        t1 = time.perf_counter()
        record = run_experiment(cfg, force=True, callbacks=[timing])
    last = timing.rounds[-1] + timing.checkpoint_s[-1]
    return {
        "method": args.one,
        "clients": args.clients,
        "per_round": args.per_round,
        "store": args.store,
        "featurise_s": featurise_s,
        "setup_s": timing.setup_end - t1,
        "round_s": timing.rounds,
        "checkpoint_s": timing.checkpoint_s,
        "checkpoint_dir_bytes": timing.checkpoint_bytes,
        "final_scoring_s": timing.end - timing.setup_end - sum(timing.rounds) - sum(timing.checkpoint_s),
        "stored_states": timing.stored,
        "personal_bytes": timing.store_bytes,
        "last_round_with_checkpoint_s": last,
        "peak_rss_mb": peak_rss_mb(),
        "accuracy": record["final"]["as_train"]["accuracy"],
        "personalized": {
            k: v for k, v in (record["personalized"] or {}).items() if k not in ("per_client", "clients")
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, nargs="+", default=[10_000])
    ap.add_argument("--per-round", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--methods", nargs="+", default=["fedavg", "fedprime"])
    ap.add_argument("--store", choices=["memory", "disk"], default="memory")
    ap.add_argument("--personalized-clients", type=int, default=100)
    ap.add_argument("--samples-per-client", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one method in this process
    args = ap.parse_args()
    if args.one:
        args.clients = args.clients[0]
        print(json.dumps(run_one(args)))
        return
    import torch

    print(
        f"torch {torch.__version__}, {args.threads} thread(s), {args.per_round} clients per round, "
        f"{args.rounds} rounds, {args.store} store, personalized score on <= {args.personalized_clients} "
        "clients"
    )
    from perf_memory import many_clients

    for n in args.clients:
        for method in args.methods:
            try:
                r = many_clients(
                    method,
                    n,
                    args.per_round,
                    args.rounds,
                    args.store,
                    args.personalized_clients,
                    args.samples_per_client,
                    args.threads,
                )
            except RuntimeError as err:
                print(err)
                continue
            rounds = ", ".join(f"{s:.1f}" for s in r["round_s"])
            ckpt = ", ".join(f"{s:.2f}" for s in r["checkpoint_s"])
            print(
                f"{method:>9} {n:>6} clients: peak RSS {r['peak_rss_mb']:.0f} MB; setup {r['setup_s']:.1f} s "
                f"(+ featurise {r['featurise_s']:.1f} s); round {rounds} s; checkpoint {ckpt} s (folder "
                f"{r['checkpoint_dir_bytes'][-1] / 1e6:.1f} MB); final scoring {r['final_scoring_s']:.1f} s; "
                f"{r['stored_states']} personal states stored ({r['personal_bytes'] / 1e6:.1f} MB "
                f"{'on disk' if r['store'] == 'disk' else 'in memory'}); personalized {r['personalized']}; "
                f"accuracy {r['accuracy']:.3f}"
            )


if __name__ == "__main__":
    main()
