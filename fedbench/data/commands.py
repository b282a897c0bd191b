"""``fedbench data prepare NAME --root DIR [--deep] [--force] [--skip-damaged]`` and ``fedbench data list``.

``fedbench/cli.py`` dispatches ``data`` to :func:`data_command`. Prepared copies are remembered in
``$FEDBENCH_CACHE/datasets/prepared.json`` so ``data list`` can say where each dataset is ready
without being told its folder; ``./data/<name>`` (where the experiment files point) is checked too.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fedbench.errors import ConfigError

USAGE = (
    "usage: fedbench data prepare NAME --root DIR [--deep] [--force] [--skip-damaged] | fedbench data list"
)


def data_command(argv: list[str]) -> int:
    """Run ``fedbench data ...``; user errors raise :class:`~fedbench.errors.FedbenchError` (one
    line, exit status 2 in the CLI). Problems with a download are printed one per line first."""
    if not argv or argv[0] in ("-h", "--help"):
        print(
            USAGE + "\n\n  prepare  check a download (file counts, checksums, images) and convert it once "
            "for fast runs\n"
            "           --deep decodes every image (slow); --force prepares again even if unchanged;\n"
            "           --skip-damaged keeps damaged images as missing ones instead of refusing\n"
            "  list     registered datasets and where each is prepared"
        )
        return 0
    if argv[0] == "list":
        if len(argv) > 1:
            raise ConfigError(f"fedbench data list takes no arguments, got {' '.join(argv[1:])}; {USAGE}")
        for name, state, description in dataset_status():
            print(f"{name:13s} {state:60s} {description}")
        return 0
    if argv[0] != "prepare":
        raise ConfigError(f"fedbench data: unknown command {argv[0]!r}; {USAGE}")
    name, root, flags = _parse_prepare(argv[1:])
    from fedbench.data.prepare import prepare_dataset

    def echo(line: str, file=None) -> None:
        print(line, file=file or sys.stdout, flush=True)

    prepare_dataset(
        name,
        root,
        deep="--deep" in flags,
        force="--force" in flags,
        skip_damaged="--skip-damaged" in flags,
        echo=echo,
    )
    return 0


def _parse_prepare(args: list[str]) -> tuple[str, str, set[str]]:
    name, root, flags, i = None, None, set(), 0
    while i < len(args):
        arg = args[i]
        if arg == "--root" and i + 1 < len(args):
            root, i = args[i + 1], i + 2
            continue
        if arg.startswith("--root="):
            root = arg.split("=", 1)[1]
        elif arg in ("--deep", "--force", "--skip-damaged"):
            flags.add(arg)
        elif arg.startswith("-") or name is not None:
            raise ConfigError(f"fedbench data prepare: unexpected argument {arg!r}; {USAGE}")
        else:
            name = arg
        i += 1
    if name is None or not root:
        raise ConfigError(
            "fedbench data prepare: give a dataset name and --root DIR (the folder of your download); "
            f"{USAGE}"
        )
    return name, root, flags


def dataset_status(data_dir: str | Path = "data") -> list[tuple[str, str, str]]:
    """(name, state, description) per registered dataset; state is ``built in``, ``prepared:
    ROOT (N rows, layout)`` for each prepared copy still in place, or ``not prepared`` with the
    command to run."""
    from fedbench.data.prepare import _read_meta, locations, prepared_index
    from fedbench.data.registry import DATASETS
    from fedbench.data.sources import LAYOUTS

    known = prepared_index()
    rows = []
    for name in DATASETS.names():
        description = DATASETS.get(name).description
        if name not in LAYOUTS:
            rows.append((name, "built in", description))
            continue
        found = [
            e for e in known.values() if e.get("dataset") == name and _read_meta(Path(e.get("dir", "")), name)
        ]
        local = Path(data_dir) / name
        if local.is_dir() and not any(Path(e["root"]) == local.resolve() for e in found):
            meta = next((m for m in (_read_meta(f, name) for f in locations(name, local)) if m), None)
            if meta:
                found.append({"root": str(local), "rows": meta["rows"], "layout": meta["layout"]})
        if found:
            state = "; ".join(f"prepared: {e['root']} ({e['rows']:,} rows, {e['layout']})" for e in found)
        else:
            state = f"not prepared: fedbench data prepare {name} --root DIR"
        rows.append((name, state, description))
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m fedbench.data.commands ...``: the same as ``fedbench data ...``, with the CLI's
    one-line errors (exit status 2)."""
    from fedbench.errors import FedbenchError

    try:
        return data_command(list(sys.argv[1:] if argv is None else argv))
    except FedbenchError as err:
        print(f"fedbench: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
