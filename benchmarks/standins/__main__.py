"""CLI of the stand-ins (run from the repository root):

    python -m benchmarks.standins data NAME [NAME ...|all] --root DIR [--scale F] [--seed S] [--overwrite]
    python -m benchmarks.standins weights NAME [NAME ...|all] --hf-home DIR [--overwrite] [--check]
    python -m benchmarks.standins tv-vit FILE [--seed S]

``data`` writes each dataset into DIR/NAME (then ``fedbench data prepare NAME --root DIR/NAME``
reads it); ``weights`` writes each backbone into DIR/hub (use it with ``HF_HOME=DIR
HF_HUB_OFFLINE=1``); ``tv-vit`` writes torchvision's ``vit_b_32`` checkpoint layout to FILE
(PPT's tables read it as ``backbone.options.weights``); ``--check`` then loads them through
fedbench's builders in a fresh process. One line per item: rows or parameters, bytes, seconds.
Full-size runs take minutes on two cores; run them under ``nice`` on a shared machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _names(given: list[str], known: tuple[str, ...], what: str) -> list[str]:
    names = list(known) if given == ["all"] else given
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown {what} {', '.join(unknown)}; known: {', '.join(known)} (or all)")
    return names


def data(args) -> int:
    from benchmarks.standins.datasets import DATASET_NAMES, make_dataset

    failed = 0
    for name in _names(args.names, DATASET_NAMES, "dataset"):
        try:
            report = make_dataset(
                name, Path(args.root) / name, scale=args.scale, seed=args.seed, overwrite=args.overwrite
            )
        except FileExistsError as err:
            print(f"{name}: {err}", file=sys.stderr)
            failed += 1
            continue
        print(report.line(), flush=True)
    return 1 if failed else 0


def weights(args) -> int:
    from benchmarks.standins.backbones import BACKBONE_NAMES, check_weights, make_weights

    names, written, failed = _names(args.names, BACKBONE_NAMES, "backbone"), [], 0
    for name in names:
        try:
            report = make_weights(name, args.hf_home, seed=args.seed, overwrite=args.overwrite)
        except FileExistsError as err:
            print(f"{name}: {err}", file=sys.stderr)
            failed += 1
            continue
        written.append(name)
        print(report.line(), flush=True)
    if args.check and written:
        started = time.perf_counter()
        for line in check_weights(written, args.hf_home):
            print(f"  loaded by fedbench: {line}")
        print(f"  ({time.perf_counter() - started:.1f} s with HF_HOME={args.hf_home}, offline)")
    return 1 if failed else 0


def tv_vit(args) -> int:
    from benchmarks.standins.tv_vit import write_tv_vit

    started = time.perf_counter()
    path = write_tv_vit(args.file, seed=args.seed)
    print(f"tv-vit: {path} {path.stat().st_size / 2**20:.0f} MiB {time.perf_counter() - started:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.standins", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("data", help="write dataset stand-ins in their original download layouts")
    p.add_argument("names", nargs="+", help="dataset names, or all")
    p.add_argument("--root", required=True, help="each dataset goes into ROOT/NAME")
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the real row counts (default 1.0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--overwrite", action="store_true", help="replace an earlier stand-in (never anything else)"
    )
    p.set_defaults(run=data)
    p = sub.add_parser("weights", help="write random-weight backbones at real size into an HF cache")
    p.add_argument("names", nargs="+", help="vilt clip-b32 clip-b16 vit-b32 vit-b16, or all")
    p.add_argument("--hf-home", required=True, help="the HF_HOME to write into (files go to HF_HOME/hub)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--overwrite", action="store_true", help="replace an earlier stand-in (never a real download)"
    )
    p.add_argument("--check", action="store_true", help="then load each through fedbench's builder, offline")
    p.set_defaults(run=weights)
    p = sub.add_parser("tv-vit", help="write a random-weight vit_b_32 checkpoint in torchvision's layout")
    p.add_argument("file")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=tv_vit)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
