"""``fedbench reproduce`` reruns one committed quick cell, copied from git into a temporary
folder, and finds every final metric identical.

Bit for bit holds only on a CPU whose kernels are those the record was made with (``versions.cpu``;
wider vector kernels and native bf16 round differently). The quick board was made in bf16-mixed on
a CPU with native bf16; ``results/cpu-32-true`` holds a quick cell made in 32-true (what
``precision: auto`` gives) on an AVX2 CPU without it. The test reruns the quickest committed FedAvg
cell this machine can repeat, and says so where there is none."""

from __future__ import annotations

import json

import pytest
from committed import committed_record, committed_record_paths

from fedbench.cli import main
from fedbench.federation.resolve import run_id_of
from fedbench.hardware import cpu_numerics, numerics_mismatch
from fedbench.reproduce import why_not_bit_for_bit

REPEATABLE_FOLDERS = ("results", "results/cpu-32-true")  # the quick board; 32-true on AVX2


def repeatable_here() -> list[tuple[str, dict]]:
    from fedbench.config import from_dict

    found = []
    for folder in REPEATABLE_FOLDERS:
        for path in committed_record_paths(folder):
            record = committed_record(path) if path.split("/")[-2] == "emoji" else {}
            if record.get("method") != "fedavg" or why_not_bit_for_bit(record) is not None:
                continue
            if run_id_of(from_dict(record["config"])) == record["run_id"]:
                found.append((path, record))
    return found


@pytest.mark.slow
def test_a_committed_quick_cell_from_git_reproduces_bit_for_bit(tmp_path, monkeypatch, capsys):
    found = repeatable_here()
    if not found:
        pytest.skip(f"no committed FedAvg quick cell was made with this CPU's kernels ({cpu_numerics()})")
    path, record = min(found, key=lambda pr: pr[1]["wall_time_s"])  # the quickest
    (tmp_path / path).parent.mkdir(parents=True)
    (tmp_path / path).write_text(json.dumps(record))
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", record["run_id"], "--results", str(tmp_path / "again")]) == 0  # found by run id
    out = capsys.readouterr().out
    assert "reproduced: every final metric" in out and "cannot repeat bit for bit" not in out


def test_which_records_can_repeat_bit_for_bit_here(monkeypatch):
    import fedbench.hardware as hardware

    monkeypatch.setattr(hardware, "cpu_numerics", lambda: "AVX2")
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)
    assert numerics_mismatch("32-true", "AVX2") is None
    assert "AVX512+bf16 kernels, this one has AVX2" in numerics_mismatch("32-true", "AVX512+bf16")
    assert "emulates bf16" in numerics_mismatch("bf16-mixed", None)  # the quick board's records
    assert numerics_mismatch("32-true", None) is None  # unstamped: nothing to tell them apart by
    gpu = {"config": {"train": {"accelerator": "gpu", "precision": "bf16-mixed"}}, "versions": {}}
    assert why_not_bit_for_bit(gpu) is None
    monkeypatch.setattr(hardware, "cpu_numerics", lambda: "AVX512+bf16")
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: True)
    assert numerics_mismatch("bf16-mixed", None) is None
    quick = {
        "config": {"train": {"accelerator": "cpu", "precision": "bf16-mixed"}},
        "versions": {"cpu": "AVX2"},
    }
    assert "AVX2 kernels, this one has AVX512+bf16" in why_not_bit_for_bit(quick)
