"""The board of record's rounds and size (benchmarks/record_plan.py) against the committed
validation curves in results/curves, recomputed here by hand."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from benchmarks import record_plan


@pytest.fixture
def curves(committed_results) -> Path:
    """The committed validation curves (results/curves in git's HEAD)."""
    return committed_results / "curves"


def curve_files(curves: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((curves / "emoji").glob("*.json"))]


def plateau_by_hand(values: list[float], window: int = 5, tolerance: float = 0.01) -> int | None:
    """docs/board-of-record.md's rule, written out: the first round whose trailing 5-round mean is
    within a point of the best such mean; None when that round is in the curve's last 5."""
    means = [sum(values[end - window : end]) / window for end in range(window, len(values) + 1)]
    best = max(means)
    first = next(i for i, m in enumerate(means) if m >= best - tolerance) + window
    return None if first > len(values) - window else first


def setting_of(rec: dict) -> str:
    cfg = rec["config"]
    return json.dumps([cfg["missing"], cfg["partition"]], sort_keys=True)


def test_each_plans_record_rounds_is_the_latest_plateau_of_its_committed_curves(curves):
    """Chosen only once every method of the plan has a curve and none still climbs."""
    from fedbench.methods.registry import get_method, plan_methods

    drawn = defaultdict(lambda: defaultdict(list))  # plan -> (setting, method) -> [val per round]
    for rec in curve_files(curves):
        assert rec["seed"] == 0 and rec["status"] == "ok"
        drawn[record_plan.plan_of(rec["sweep"])][setting_of(rec), rec["method"]].append(
            [r["val"]["accuracy"] for r in rec["rounds"]]
        )
    assert drawn, "no committed validation curves under results/curves/emoji"
    for plan in record_plan.PLANS:
        chosen = get_method(plan).plan.record_rounds
        if plan not in drawn:
            assert chosen is None, f"{plan}: record_rounds set without committed curves"
            continue
        plateaus = [plateau_by_hand(series[0]) for series in drawn[plan].values()]
        all_drawn = set(plan_methods(plan, ablations=True)) <= {m for _, m in drawn[plan]}
        expected = None if None in plateaus or not all_drawn else max(plateaus)
        assert chosen == expected, f"{plan}: record_rounds {chosen}, curves say {expected}"


def test_every_method_of_a_chosen_plan_has_a_curve(curves):
    from fedbench.methods.registry import get_method, plan_methods

    drawn = defaultdict(set)
    for rec in curve_files(curves):
        drawn[record_plan.plan_of(rec["sweep"])].add(rec["method"])
    for plan in record_plan.PLANS:
        if get_method(plan).plan.record_rounds is not None:
            assert set(plan_methods(plan, ablations=True)) <= drawn[plan], plan


def test_the_sizing_table_is_cells_times_rounds_times_measured_seconds(curves):
    from fedbench.methods.registry import get_method

    table = record_plan.sizing_table(curves)
    rows = {
        ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[2:-1]] for ln in table.splitlines()[2:]
    }
    chosen = [p for p in record_plan.PLANS if get_method(p).plan.record_rounds is not None]
    if not chosen:
        pytest.skip("no plan has its record rounds yet")
    per_round = defaultdict(list)
    for rec in curve_files(curves):
        per_round[record_plan.plan_of(rec["sweep"]), rec["method"]].append(
            rec["wall_time_s"] / len(rec["rounds"])
        )
    for plan in chosen:
        plan_spec = get_method(plan).plan
        methods = {plan, *plan_spec.baselines, *plan_spec.ablations}
        cells = len(methods) * SETTINGS[plan] * 5
        assert rows[plan][0] == str(cells)
        rounds = plan_spec.record_rounds
        seconds = sum(
            SETTINGS[plan] * 5 * rounds * sum(per_round[plan, m]) / len(per_round[plan, m]) for m in methods
        )
        assert rows[plan][3] == f"{seconds / 3600:.1f}"
        precisions = {
            r["config"]["train"]["precision"] for r in curve_files(curves) if r["sweep"].split("-")[1] == plan
        }
        assert rows[plan][4] == ", ".join(sorted(precisions))


# each plan's settings, counted by hand from its BenchPlan's quick profile: FedAvg's three missing
# rates, FedPrime's three missing types, PPT's three partitions, FedMVP's three rates x two partitions
SETTINGS = {"fedavg": 3, "fedprime": 3, "ppt": 3, "fedmvp": 6}


def test_the_check_table_sets_each_record_cell_beside_its_curve(committed_results, curves):
    table = record_plan.check_table(committed_results, curves)
    rows = [[c.strip() for c in ln.split("|")[1:-1]] for ln in table.splitlines()[2:]]
    records = [json.loads(p.read_text()) for p in sorted((committed_results / "emoji").glob("*.json"))]
    for plan, method, setting, seed, rounds, record_val, curve_val in rows:
        curve = next(
            r
            for r in curve_files(curves)
            if r["method"] == method
            and record_plan.plan_of(r["sweep"]) == plan
            and str(r["seed"]) == seed
            and f"{r['config']['missing']['type']}@{r['config']['missing']['rate']:g}" == setting
        )
        mine = [
            r
            for r in records
            if r.get("sweep") == f"bench-{plan}-record"
            and r["method"] == method
            and r["seed"] == curve["seed"]
            and r["config"]["missing"] == curve["config"]["missing"]
            and r["config"]["partition"] == curve["config"]["partition"]
        ]
        assert len(mine) == 1
        assert rounds == f"{len(mine[0]['rounds'])} / {len(curve['rounds'])}"
        assert record_val == f"{100 * mine[0]['rounds'][-1]['val']['accuracy']:.1f}"
        assert curve_val == f"{100 * curve['rounds'][-1]['val']['accuracy']:.1f}"


def test_the_trend_table_is_each_curve_smoothed_by_hand(curves):
    for plan in record_plan.PLANS:
        table = record_plan.trend_table(curves, plan)
        if table.startswith("No "):
            continue
        rows = [[c.strip() for c in ln.split("|")[1:-1]] for ln in table.splitlines()[2:]]
        mine = [r for r in curve_files(curves) if record_plan.plan_of(r["sweep"]) == plan]
        assert len(rows) == len(mine)
        for method, setting, rounds, *smoothed, plateau in rows:
            (rec,) = [
                r
                for r in mine
                if r["method"] == method
                and str(len(r["rounds"])) == rounds
                and setting.endswith(r["config"]["partition"]["name"])
                and setting.startswith(f"{r['config']['missing']['type']}@")
            ]
            values = [r["val"]["accuracy"] for r in rec["rounds"]]
            for i, text in enumerate(smoothed):
                end = 10 * (i + 1)
                expected = f"{100 * sum(values[end - 5 : end]) / 5:.1f}" if end <= len(values) else "–"
                assert text == expected, (plan, method, end)
            hand = plateau_by_hand(values)
            assert plateau == ("still climbing" if hand is None else str(hand)), (plan, method)
