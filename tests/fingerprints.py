"""Behaviour fingerprints of fedbench's built-in methods, kept in ``tests/fingerprints.json``.

A fingerprint is what 2 rounds of a method compute on the tiny fixture (3 clients, 32-true, one
torch thread): the training loss of each round, a checksum of the final global state (sum, sum of
absolute values and sum of squares over every shared tensor, in float64) and the final test metrics,
stored with the method's ``MethodSpec.version``. ``tests/test_fingerprints.py`` recomputes them: a
change of behaviour without a version bump fails there with one line saying to bump the version
and rerun the boards the method feeds; after a bump, rewrite the file with

    python tests/fingerprints.py --write [METHOD ...]

TOLERANCE is relative, measured: repeated runs on one machine are bit-identical (0 difference over
5 runs of every method, idle and under two CPU-heavy jobs); 1e-6 leaves room for another x86 CPU's
float32 kernels while any change a sabotage makes (tests/sabotage/) moves a fingerprint by > 1e-3.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from fixtures import tiny_config  # noqa: E402

PATH = Path(__file__).with_name("fingerprints.json")
TOLERANCE = 1e-6
ROUNDS = 2


def builtin_methods() -> list[str]:
    from fedbench.methods.registry import METHODS

    return [name for name in METHODS.names() if METHODS.origin(name) == "fedbench"]


def fingerprint(method: str, folder: Path) -> dict[str, Any]:
    """The fingerprint of ``method`` (a fresh run in ``folder``)."""
    from fedbench.federation.callbacks import Callback
    from fedbench.federation.loop import run_experiment
    from fedbench.methods.registry import METHODS

    class FinalState(Callback):
        state: dict[str, torch.Tensor] = {}

        def on_run_end(self, fed, record) -> None:
            self.state = {k: v.detach().double() for k, v in fed.global_state.items()}

    cfg = tiny_config(folder, method, ROUNDS)
    cfg.train.precision, cfg.train.threads, cfg.tracking.wandb = "32-true", 1, False
    final = FinalState()
    before = torch.get_num_threads()
    try:
        record = run_experiment(cfg, callbacks=[final])
    finally:
        torch.set_num_threads(before)
    flat = [final.state[k].flatten() for k in sorted(final.state)]
    values = torch.cat(flat) if flat else torch.zeros(0, dtype=torch.float64)
    metrics = {
        f"{cond}.{name}": float(v)
        for cond, ms in sorted((record.get("final") or {}).items())
        for name, v in sorted(ms.items())
        if isinstance(v, (int, float))
    }
    return {
        "version": METHODS.get(method).version,
        "loss": [r.get("train_loss") for r in record["rounds"]],
        "state": [float(values.sum()), float(values.abs().sum()), float(values.pow(2).sum())],
        "metrics": metrics,
    }


def differences(stored: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What moved by more than TOLERANCE (relative), as short phrases; [] when nothing did."""

    def far(a, b) -> bool:
        if a is None or b is None:
            return a is not b
        return not math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)

    out = []
    for key in ("loss", "state"):
        a, b = stored[key], now[key]
        if len(a) != len(b) or any(far(x, y) for x, y in zip(a, b, strict=True)):
            out.append(f"{key} {a} -> {b}")
    moved = sorted(
        k
        for k in stored["metrics"].keys() | now["metrics"].keys()
        if far(stored["metrics"].get(k), now["metrics"].get(k))
    )
    if moved:
        out.append(
            "metrics "
            + ", ".join(f"{k} {stored['metrics'].get(k)} -> {now['metrics'].get(k)}" for k in moved)
        )
    return out


def load() -> dict[str, Any]:
    return json.loads(PATH.read_text()) if PATH.exists() else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("methods", nargs="*", help="methods to rewrite (default: every built-in)")
    parser.add_argument("--write", action="store_true", help="write tests/fingerprints.json")
    args = parser.parse_args(argv)
    stored = load()
    names = args.methods or builtin_methods()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            now = fingerprint(name, Path(tmp) / name)
            moved = differences(stored[name], now) if name in stored else ["new"]
            print(f"{name}: v{now['version']} " + ("; ".join(moved) if moved else "unchanged"), flush=True)
            stored[name] = now
    if args.write:
        PATH.write_text(json.dumps(dict(sorted(stored.items())), indent=1) + "\n")
        print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
