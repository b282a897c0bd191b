"""`make perf` section h: the host data path against a GPU's appetite, measured on this CPU.

An H100 computes a FedPrime Food-101 training sample (ViLT-B/32, 384 px, 40 patches + 40 word
pieces, bf16) in about 0.12 ms, so a batch of 512 is a 61 ms step. The step is simulated here by
sleeping that long per batch (the GPU's work does not use the host's cores), and the loop over a
loader measures how much of the wall time the training thread waits for its next batch.

Before: the gather the loop used to do, in the training thread, from one in-RAM tensor (what the
old cache loaded whole). After: fedbench's loader, gathering from the memory-mapped cache in a
background thread one batch ahead (:mod:`fedbench.data.loader`). Both read the same rows (a
pixel column of ``rows`` images at 384 px, plus 40 token ids), the cache warm in the page cache
as it is after the first epoch on a machine whose RAM holds it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

H100_MS_PER_SAMPLE = 0.12  # the figure for FedPrime's Food-101 sample on an H100 (bf16)
# the embedded backbone's step, scaled by the transformer FLOPs of a sample: MiniLM-L6 (10.6M
# non-embedding weights, ~41 tokens) against ViLT-B/32 (85M, 91 tokens): 0.056x
EMBEDDED_SCALE = (10.6e6 * 41) / (85.0e6 * 91)


def _bundle(columns: dict, n: int):
    from fedbench.data.bundle import DataBundle

    return DataBundle(
        name="perf",
        num_classes=101,
        label_names=[str(i) for i in range(101)],
        labels=torch.arange(n) % 101,
        columns=columns,
        splits={"train": np.arange(n)},
    )


def vilt_bundles(folder: Path, rows: int, size: int = 384, text: int = 40):
    """(memory-mapped bundle, in-RAM bundle) of a ViLT-384 shaped stand-in of ``rows`` rows."""
    from fedbench.backbones.tokens import PrefixMask
    from fedbench.cache.arrays import MappedRows, open_rows, write_rows

    gen = np.random.default_rng(0)
    chunk = 256
    write_rows(
        folder / "pixels.npy",
        (rows, 3, size, size),
        np.uint8,
        (
            gen.integers(0, 255, (min(chunk, rows - s), 3, size, size), dtype=np.uint8)
            for s in range(0, rows, chunk)
        ),
    )
    write_rows(
        folder / "ids.npy", (rows, text), np.int32, [gen.integers(0, 30522, (rows, text), dtype=np.int32)]
    )
    write_rows(folder / "lengths.npy", (rows,), np.int32, [gen.integers(3, text + 1, rows, dtype=np.int32)])
    mapped = {
        "pixels": MappedRows(open_rows(folder / "pixels.npy")),
        "text_ids": MappedRows(open_rows(folder / "ids.npy"), dtype=torch.long),
        "text_keep": PrefixMask(MappedRows(open_rows(folder / "lengths.npy"), dtype=torch.long), text),
    }
    in_ram = {name: col[torch.arange(rows)] for name, col in mapped.items()}  # what the old cache held whole
    return _bundle(mapped, rows), _bundle(in_ram, rows)


def bytes_per_sample(bundle) -> int:
    """What a row of the bundle's columns takes where it is stored (a keep mask made from token
    lengths stores one int per row)."""
    total = 0
    for col in bundle.columns.values():
        if hasattr(col, "lengths"):  # PrefixMask
            total += col.lengths.array.dtype.itemsize
        elif hasattr(col, "array"):  # MappedRows
            total += col.array.dtype.itemsize * int(np.prod(col.shape[1:]))
        else:
            total += col.element_size() * int(np.prod(col.shape[1:]))
    return total


def gather_ms_per_sample(bundle, batch: int, reps: int = 5) -> float:
    """The training thread's cost of assembling a batch, inline, per sample."""
    n = len(bundle.labels)
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(reps):
        idx = torch.randperm(n, generator=gen)[:batch]
        t = time.perf_counter()
        bundle.batch(idx, torch.zeros(batch, dtype=torch.long))
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times)) / batch


def wait_share(bundle, batch: int, ms_per_sample: float, old: bool, batches: int = 12) -> float:
    """The share of a loop's wall time spent waiting for batches, each step simulated as a sleep:
    the old loop (``old``: gathered in the training thread into fresh tensors) or fedbench's loader."""
    from fedbench.data.loader import make_loader

    rows = np.arange(min(len(bundle.labels), batch * batches))
    codes = np.zeros(len(rows), dtype=np.int64)
    loader = make_loader(bundle, rows, codes, batch_size=batch, shuffle=True, prefetch=0 if old else 3)
    t, waited = time.perf_counter(), 0.0
    positions = DataLoader.__iter__(loader) if old else iter(loader)  # old: the row positions alone
    while True:
        w = time.perf_counter()
        item = next(positions, None)
        if item is None:
            break
        if old:
            bundle.batch(loader.rows.index[item], loader.rows.codes[item])
        waited += time.perf_counter() - w
        time.sleep(ms_per_sample * batch / 1000)
    return waited / (time.perf_counter() - t)


def host_data_path(rows: int = 3072, batch: int = 512) -> dict:
    """Figures of section h (see the module docstring)."""
    out = {"rows": rows, "batch": batch, "h100_ms": H100_MS_PER_SAMPLE}
    with tempfile.TemporaryDirectory(prefix="fedbench-perf-h-") as tmp:
        mapped, in_ram = vilt_bundles(Path(tmp), rows)
        mapped.batch(torch.arange(rows), torch.zeros(rows, dtype=torch.long))  # warm the page cache
        step = H100_MS_PER_SAMPLE
        out["vilt"] = {
            "bytes": bytes_per_sample(mapped),
            "gather_before": gather_ms_per_sample(in_ram, batch),
            "gather_after": gather_ms_per_sample(mapped, batch),
            "wait_before": wait_share(in_ram, batch, step, old=True),
            "wait_after": wait_share(mapped, batch, step, old=False),
        }
        del in_ram
    from fedbench.config import ExperimentConfig
    from fedbench.federation.parts import featurized
    from fedbench.federation.resolve import resolve

    cfg = ExperimentConfig()
    bundle, _ = featurized(resolve(cfg))
    step = H100_MS_PER_SAMPLE * EMBEDDED_SCALE
    out["embedded"] = {
        "bytes": bytes_per_sample(bundle),
        "rows": len(bundle.labels),
        "step_ms": step,
        "gather_before": gather_ms_per_sample(bundle, 32),
        "gather_after": gather_ms_per_sample(bundle, 32),
        "wait_before": wait_share(bundle, 32, step, old=True, batches=40),
        "wait_after": wait_share(bundle, 32, step, old=False, batches=40),
    }
    return out
