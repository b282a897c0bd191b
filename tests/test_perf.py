"""`make perf`'s parts that can be checked fast: the round-phase timer on the tiny fixtures and the
perf.md writer on hand-built figures. No timed assertions: speed goals live in benchmarks/perf.py."""

import sys
import time
from pathlib import Path

import pytest

from fedbench.federation.callbacks import CheckpointCallback
from fedbench.federation.loop import run_experiment
from fedbench.federation.timing import PhaseTimer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import perf_report  # noqa: E402


def test_phase_timer_phases_are_non_negative_and_fit_in_the_run(tiny_cfg):
    cfg = tiny_cfg("fedavg", rounds=3)
    cfg.tracking.wandb = False
    timer = PhaseTimer({"checkpoint": CheckpointCallback()})
    t0 = time.perf_counter()
    record = run_experiment(cfg, force=True, callbacks=[timer])
    wall = time.perf_counter() - t0
    assert record is not None and len(timer.rounds) == 3
    for r in timer.rounds:
        assert set(r) == {"fit", "aggregation", "validation", "checkpoint", "other", "wall"}
        assert all(v >= 0 for v in r.values())
        assert sum(v for k, v in r.items() if k != "wall") <= r["wall"] + 1e-9
        assert r["fit"] > 0 and r["validation"] > 0
    totals = timer.totals()
    assert totals["wall"] <= wall
    assert 0 <= timer.overhead_share() <= 1


def test_phase_timer_forwards_hooks_to_the_wrapped_callback(tiny_cfg):
    cfg = tiny_cfg("fedavg", rounds=2)
    cfg.tracking.wandb = False
    seen = []

    class Spy(CheckpointCallback):
        def on_round_end(self, fed, entry):
            seen.append(entry["round"])
            super().on_round_end(fed, entry)

    run_experiment(cfg, force=True, callbacks=[PhaseTimer({"checkpoint": Spy()})])
    assert seen == [1, 2]


def test_phase_timer_refuses_a_wrapped_name_that_is_a_phase():
    with pytest.raises(ValueError, match="clash"):
        PhaseTimer({"fit": CheckpointCallback()})


def test_table_renders_hand_built_figures():
    lo, med, hi = perf_report.min_med_max([0.99, 0.951, 1.0123])
    md = perf_report.table(
        ["figure", "min", "median", "max", "ok"],
        [["fit / bare", lo, med, hi, True], ["flower", None, 1234.5, 2, False]],
    )
    assert md.splitlines() == [
        "| figure | min | median | max | ok |",
        "|---|---|---|---|---|",
        "| fit / bare | 0.951 | 0.99 | 1.01 | yes |",
        "| flower | — | 1234 | 2 | no |",
    ]


def test_table_refuses_a_ragged_row_and_median_of_even_count():
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        perf_report.table(["a", "b", "c"], [[1, 2]])
    assert perf_report.min_med_max([4.0, 1.0, 3.0, 2.0]) == (1.0, 2.5, 4.0)


def test_page_has_header_and_says_what_is_not_measured():
    head = perf_report.header(
        {"cpu": "Test CPU", "cores": 2, "torch_threads": 1, "cpu_bf16": True},
        {"torch": "2.0", "flwr": None},
        "abc123",
        "make perf",
        12.4,
    )
    text = perf_report.page(head, [perf_report.section("Flower", None, "ran out of time")])
    assert "- command: `make perf`" in text and "Test CPU, 2 cores, 1 torch thread(s)" in text
    assert "torch 2.0" in text and "flwr" not in text and "`abc123`" in text
    assert "## Flower\n\nNot measured yet: ran out of time." in text
    assert perf_report.verdict(0.97, 0.95, True) == "meets the target"
    assert perf_report.verdict(0.07, 0.05, False) == "**misses the target**"


def test_flower_section_renders_hand_built_figures():
    def run(startup, rounds, after, validation=0.0):
        return {
            "startup": startup,
            "rounds": rounds,
            "after": after,
            "validation": validation,
            "timed": startup + sum(rounds) + after,
            "losses": [2.0, 1.5],
        }

    fig = {
        "rounds": 2,
        "clients": 5,
        "cores": 2,
        "same": True,
        "runs": {
            "fedbench": [run(4.0, [7.0, 7.0], 0.0, 1.0), run(4.0, [7.5, 7.5], 0.0, 1.0)],
            "flower": [run(6.0, [26.0, 10.0], 2.0), run(6.0, [27.0, 10.0], 2.0)],
        },
    }
    fig["ratio"] = [
        f["timed"] / b["timed"] for b, f in zip(fig["runs"]["fedbench"], fig["runs"]["flower"], strict=True)
    ]
    md = perf_report.flower_section(fig, "experiments/emoji_quick.yaml")
    assert md.startswith("**2 client fits at once** (fedbench's ray executor with 2 actors")
    assert "`experiments/emoji_quick.yaml` (fedavg, 5 clients, all sampled) for 2 rounds" in md
    assert "2 runs each, interleaved" in md
    assert "bit for bit: **yes**" in md and "median 1.0 s" in md
    assert "median **2.41x** (per repetition: 2.44, 2.37; target >= 1.5: meets the target)" in md
    # medians: fedbench 4 + 7.25 + 7.25 + 0, flower 6 + 26.5 + 10 + 2; once per run: 2 + (19.25 - 2.75) + 2
    assert (
        "Of the median difference of 26.0 s, 20.5 s is paid once per run" in md
        and "and 2.75 s per later round" in md
    )
    lines = md.splitlines()
    i = lines.index("| run | start-up | round 1 | round 2 | after last round | timed total |")
    assert lines[i + 2 :] == [
        "| fedbench 1 | 4 | 7 | 7 | 0 | 18 |",
        "| flower 1 | 6 | 26 | 10 | 2 | 44 |",
        "| fedbench 2 | 4 | 7.5 | 7.5 | 0 | 19 |",
        "| flower 2 | 6 | 27 | 10 | 2 | 45 |",
        "| median difference (flower − fedbench) | 2 | 19.2 | 2.75 | 2 | 26 |",
    ]
    fig["same"], fig["rounds"], fig["cores"] = False, 3, 1
    for r in fig["runs"]["flower"]:
        r["rounds"].append(10.0)
    md = perf_report.flower_section(fig, "x.yaml")
    assert "bit for bit: **no**" in md and "| rounds 2..3 |" in md
    assert md.startswith("**One client fit at a time** (fedbench's sequential executor")


def test_host_data_section_renders_hand_built_figures():
    figures = {
        "rows": 3072,
        "batch": 512,
        "h100_ms": 0.12,
        "vilt": {
            "bytes": 442532,
            "gather_before": 0.45,
            "gather_after": 0.04,
            "wait_before": 0.8,
            "wait_after": 0.05,
        },
        "embedded": {
            "bytes": 304,
            "step_ms": 0.0067,
            "gather_before": 0.002,
            "gather_after": 0.002,
            "wait_before": 0.3,
            "wait_after": 0.12,
        },
    }
    text = perf_report.host_data_section(figures)
    assert "| data wait share at a simulated H100 step | 80.0% | 5.0% | 30.0% | 12.0% |" in text
    assert "ViLT after: meets the target" in text and "embedded after: **misses the target**" in text
    assert "| bytes per sample (where the cache keeps them) | 442532 | 442532 | 304 | 304 |" in text
