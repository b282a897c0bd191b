"""Checks before work that cannot fit: one line saying what it needs and what is free.

A cache build that runs out of disk after an hour, or a run killed by the OOM killer, costs more
than a refusal up front. Sizes come from row counts and shapes, so the check is exact for caches
and an estimate (stated as such) for a run's memory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fedbench.errors import ConfigError

GB = 1024**3
DISK_MARGIN = 1.05  # the .npy headers, meta files and a little room for the rest of the system


def human(n: float) -> str:
    for unit, size in (("GiB", GB), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def free_disk(folder: Path) -> int:
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def available_ram() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else None (the check is skipped)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_disk(folder: Path, need: int, what: str, fix: str) -> None:
    """Refuse (one line) when ``need`` bytes do not fit in ``folder``'s filesystem."""
    free = free_disk(folder)
    if need * DISK_MARGIN > free:
        raise ConfigError(f"{what} needs {human(need)} on {folder}, {human(free)} is free; {fix}")


def check_ram(need: int, what: str, fix: str) -> None:
    """Refuse (one line) when ``need`` bytes exceed the memory the system says is available."""
    free = available_ram()
    if free is not None and need > free:
        raise ConfigError(f"{what} needs about {human(need)} of RAM, {human(free)} is available; {fix}")


def row_bytes(bundle) -> int:
    """Bytes of one gathered row of every column of a bundle (what a batch costs per sample)."""
    import numpy as np

    total = 0
    for col in bundle.columns.values():
        dtype = getattr(col, "dtype", None)
        size = torch_itemsize(dtype)
        total += size * int(np.prod(col.shape[1:]))
    return total


def torch_itemsize(dtype) -> int:
    import torch

    return torch.empty((), dtype=dtype).element_size() if isinstance(dtype, torch.dtype) else 8


def check_run_memory(bundle, batch_size: int, eval_batch_size: int, in_flight: int) -> None:
    """Refuse a run whose batches in flight exceed the available memory (the frozen backbone is
    loaded by then; this counts the buffers the training and scoring loaders will hold)."""
    per_row = row_bytes(bundle)
    need = in_flight * per_row * (batch_size + eval_batch_size)
    check_ram(
        need,
        f"batches of {per_row / 2**20:.2f} MiB per sample ({batch_size} to train, {eval_batch_size} to "
        f"score, {in_flight} in flight)",
        "lower train.batch_size / train.eval_batch_size, or free memory",
    )
