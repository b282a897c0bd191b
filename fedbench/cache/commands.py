"""``fedbench cache list`` and ``fedbench cache clean``: what the cache holds on disk, and freeing it.

The cache (``$FEDBENCH_CACHE``, default ``~/.cache/fedbench``) holds row tables (decoded pixels,
token ids: :mod:`fedbench.cache.entries`), frozen per-row outputs (:mod:`fedbench.cache.frozen`),
and single files (the embedded image bank, FedMVP's completions, prepared datasets of read-only
folders). Nothing is evicted on its own; ``clean`` frees what is not used any more.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from fedbench.cache import entries
from fedbench.cache.folder import cache_dir
from fedbench.cache.preflight import human
from fedbench.errors import ConfigError

USAGE = (
    "usage: fedbench cache list | fedbench cache clean [--all | --unused-days N] [--kind KIND] [--dry-run]\n"
    "  list   every cached table with its size and when it was last used\n"
    "  clean  remove unfinished builds, and with --all everything, or with --unused-days N what no run\n"
    "         used in N days; --kind pixels|tokens|frozen|files limits it to one kind; --dry-run only lists"
)
KINDS = ("pixels", "tokens", "frozen", "files")


@dataclass
class Item:
    kind: str
    path: Path
    what: str
    bytes: int
    last_used: float


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _last_used(path: Path) -> float:
    if path.is_file():
        return path.stat().st_mtime
    times = [p.stat().st_mtime for p in path.iterdir()] if path.is_dir() else []
    return max(times, default=path.stat().st_mtime)


def items() -> list[Item]:
    """Everything in the cache folder, largest first."""
    root = cache_dir()
    found = []
    for entry in entries.entries():
        d = entry.meta.get("describe", {})
        what = (
            f"{d.get('dataset', '?')} "
            + ", ".join(f"{k} {v}" for k, v in d.items() if k != "dataset")
            + f", {entry.meta['rows']:,} rows"
        )
        found.append(Item(entry.meta["kind"], entry.folder, what, entry.bytes, entry.last_used))
    frozen = root / "frozen"
    for table in sorted(frozen.iterdir()) if frozen.is_dir() else []:
        blocks = sum(1 for p in table.iterdir() if p.suffix == ".done")
        found.append(
            Item(
                "frozen",
                table,
                f"{table.name.rsplit('-', 1)[0]}, {blocks} blocks",
                _size(table),
                _last_used(table),
            )
        )
    for path in sorted(root.iterdir()):
        if path.name in ("rows", "frozen") or path.name.startswith("."):
            continue
        found.append(Item("files", path, path.name, _size(path), _last_used(path)))
    return sorted(found, key=lambda i: -i.bytes)


def _running(folder: Path) -> bool:
    """Whether the process that started an unfinished build is still alive (its pid is in the name)."""
    try:
        pid = int(folder.name.split("-")[-2])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def cache_command(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if argv[0] == "list":
        if len(argv) > 1:
            raise ConfigError(
                f"fedbench cache list takes no arguments, got {' '.join(argv[1:])}; {USAGE.splitlines()[0]}"
            )
        return _list()
    if argv[0] == "clean":
        return _clean(argv[1:])
    raise ConfigError(f"fedbench cache: unknown command {argv[0]!r}; {USAGE.splitlines()[0]}")


def _list() -> int:
    found = items()
    now = time.time()
    print(f"cache folder: {cache_dir()} ({human(sum(i.bytes for i in found))} in {len(found)} items)")
    for i in found:
        print(
            f"{i.kind:7s} {human(i.bytes):>10s}  used {(now - i.last_used) / 86400:5.1f} days ago  {i.what}  "
            f"[{i.path.name}]"
        )
    stale = [p for p in entries.unfinished() if not _running(p)]
    if stale:
        print(
            f"{len(stale)} unfinished builds ({human(sum(_size(p) for p in stale))}); `fedbench cache clean` "
            "removes them"
        )
    return 0


def _clean(args: list[str]) -> int:
    everything, days, kind, dry = False, None, None, False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--all":
            everything = True
        elif arg == "--dry-run":
            dry = True
        elif arg in ("--unused-days", "--kind") and i + 1 < len(args):
            value, i = args[i + 1], i + 1
            if arg == "--kind":
                if value not in KINDS:
                    raise ConfigError(
                        f"fedbench cache clean --kind: {value!r} is not one of {', '.join(KINDS)}"
                    )
                kind = value
            else:
                try:
                    days = float(value)
                except ValueError:
                    raise ConfigError(
                        f"fedbench cache clean --unused-days: {value!r} is not a number of days"
                    ) from None
        else:
            raise ConfigError(f"fedbench cache clean: unexpected argument {arg!r}; {USAGE.splitlines()[0]}")
        i += 1
    if everything and days is not None:
        raise ConfigError("fedbench cache clean: give --all or --unused-days N, not both")
    doomed = [
        Item("unfinished", p, "unfinished build", _size(p), 0.0)
        for p in entries.unfinished()
        if not _running(p)
    ]
    if everything or days is not None:
        cutoff = time.time() - (days or 0) * 86400
        doomed += [
            i for i in items() if (kind is None or i.kind == kind) and (everything or i.last_used < cutoff)
        ]
    freed = 0
    for item in doomed:
        print(
            f"{'would remove' if dry else 'removing'} {item.kind} {human(item.bytes)} {item.what} "
            f"[{item.path}]"
        )
        if not dry:
            freed += item.bytes
            if item.path.is_dir():
                shutil.rmtree(item.path, ignore_errors=True)
            else:
                item.path.unlink(missing_ok=True)
    print(f"{'would free' if dry else 'freed'} {human(sum(i.bytes for i in doomed) if dry else freed)}")
    return 0
