"""README's cpu-kinds table (benchmarks/doc_numbers.cpu_kinds): each 32-true cell beside the same
quick cell of the reference, checked by hand on two made-up folders."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.doc_numbers import cpu_kinds


def _write(
    folder: Path, name: str, seed: int, rate: float, precision: str, wall: float, acc: float, cpu=None
):
    versions = {"cpu": cpu} if cpu else {}
    record = {
        "status": "ok",
        "sweep": "bench-fedavg-quick",
        "method": "fedavg",
        "seed": seed,
        "config": {"missing": {"type": "text", "rate": rate}, "train": {"precision": precision}},
        "versions": versions,
        "wall_time_s": wall,
        "final": {"as_train": {"accuracy": acc}},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(record))


def test_each_32_true_cell_is_set_beside_the_reference_cell_of_seed_0(tmp_path):
    ref, here = tmp_path / "emoji", tmp_path / "cpu-32-true" / "emoji"
    _write(ref, "a", 0, 0.5, "bf16-mixed", 20.0, 0.60)
    _write(ref, "b", 1, 0.5, "bf16-mixed", 99.0, 0.10)  # another seed: not the pair
    _write(ref, "c", 0, 0.9, "bf16-mixed", 10.0, 0.50)  # no 32-true cell: no row
    _write(here, "d", 0, 0.5, "32-true", 150.0, 0.625, cpu="AVX2")
    _write(here, "e", 0, 0.1, "32-true", 150.0, 0.625, cpu="AVX2")  # no reference cell: no row
    rows = [line for line in cpu_kinds(tmp_path).splitlines() if line.startswith("| fedavg")]
    assert rows == [
        "| fedavg | text@0.5 | bf16-mixed, native bf16 | 32-true, AVX2 "
        "| 20 s vs 150 s (7.5x) | 60.00 vs 62.50 |"
    ]
