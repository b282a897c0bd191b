"""PPT's recipe decision (benchmarks/ppt_recipe.py), on curves whose smoothing is worked by hand."""

from __future__ import annotations

import json

import pytest

from benchmarks import ppt_recipe

RISE = [0.1, 0.2, 0.3, 0.4, 0.5] + [0.5] * 15  # 20 rounds: climbs, then flat


def test_a_flat_curve_settles_at_its_plateau():
    # trailing 5-round means: .30, .38, .44, .48, .50, ...; the best is .50 and the first mean within
    # a point of it is the 5th (.48 is not), which ends at round 4 + 5 = 9
    v = ppt_recipe.judge(RISE)
    assert v["plateau"] == 9 and abs(v["value"] - 0.5) < 1e-12 and abs(v["lowest"] - 0.5) < 1e-12
    assert v["settles"]


def test_a_curve_that_dips_after_its_plateau_does_not_settle():
    dipping = RISE[:10] + [0.40] * 5 + [0.5] * 5  # smoothed falls to .40 at round 15, 10 points below
    v = ppt_recipe.judge(dipping)
    assert v["plateau"] == 9 and abs(v["lowest"] - 0.40) < 1e-12 and not v["settles"]
    shallow = RISE[:10] + [0.49] * 5 + [0.5] * 5  # one point below: within two
    assert ppt_recipe.judge(shallow)["settles"]


def test_the_chosen_recipe_settles_for_both_methods_with_the_higher_mean_plateau():
    def v(value, settles=True):
        return {"value": value, "settles": settles}

    verdicts = {
        ("a", "fedavg-pt"): v(0.9, settles=False),  # highest, but wanders
        ("a", "ppt"): v(0.9),
        ("b", "fedavg-pt"): v(0.3),
        ("b", "ppt"): v(0.5),  # mean .40
        ("c", "fedavg-pt"): v(0.45),
        ("c", "ppt"): v(0.45),  # mean .45
    }
    assert ppt_recipe.chosen(verdicts) == "c"
    verdicts["c", "ppt"] = v(0.45, settles=False)
    assert ppt_recipe.chosen(verdicts) == "b"
    verdicts["b", "ppt"] = v(0.5, settles=False)
    assert ppt_recipe.chosen(verdicts) is None


def _record(folder, name, method, lr, schedule, rounds, partition="imbalanced", seed=0, values=None):
    rec = {
        "status": "ok",
        "sweep": "bench-ppt-quick",
        "method": method,
        "seed": seed,
        "config": {"train": {"lr": lr, "lr_schedule": schedule}, "partition": {"name": partition}},
        "rounds": [{"val": {"accuracy": v}} for v in (values or [r / 1000 for r in range(1, rounds + 1)])],
    }
    (folder / "emoji").mkdir(parents=True, exist_ok=True)
    (folder / "emoji" / f"{name}.json").write_text(json.dumps(rec))


def test_a_constant_rate_curve_is_read_to_80_rounds_and_a_decaying_one_must_be_80_long(tmp_path):
    curves, recipe = tmp_path / "curves", tmp_path / "ppt-recipe"
    _record(curves, "a1", "ppt", 5e-3, "constant", 120)  # recipe (a), read to round 80
    _record(curves, "x", "ppt", 5e-3, "constant", 120, partition="dirichlet")  # another partition
    _record(recipe, "b1", "ppt", 5e-3, "linear", 120)  # decays over 120 rounds: not the candidate
    _record(recipe, "b2", "fedavg-pt", 5e-3, "linear", 80)
    _record(recipe, "c1", "ppt", 1e-4, "constant", 40)  # too short
    found = ppt_recipe.candidate_curves([curves, recipe])
    assert sorted(found) == [("a", "ppt", 0), ("b", "fedavg-pt", 0)]
    assert len(found["a", "ppt", 0]) == 80 and found["a", "ppt", 0][-1] == 0.080
    table = ppt_recipe.recipe_table(tmp_path)
    assert table.endswith(
        "At step 1 (seeds 0) not all drawn (a fedavg-pt, b ppt, c fedavg-pt, c ppt): no recipe is chosen yet."
    )


def test_the_mean_curve_averages_round_by_round_and_needs_every_seed():
    curves = {("b", "ppt", 0): [0.1, 0.4], ("b", "ppt", 1): [0.3, 0.2], ("b", "ppt", 2): [0.2, 0.3]}
    mean = ppt_recipe.mean_curve(curves, "b", "ppt", (0, 1, 2))
    assert mean == pytest.approx([0.2, 0.3])
    assert ppt_recipe.mean_curve(curves, "b", "fedavg-pt", (0, 1, 2)) is None
    del curves["b", "ppt", 2]
    assert ppt_recipe.mean_curve(curves, "b", "ppt", (0, 1, 2)) is None


DIPS = RISE[:10] + [0.40] * 5 + [0.5] * 5  # settles at no seed alone...
LIFTS = RISE[:10] + [0.60] * 5 + [0.5] * 5  # ...but its mean with this one is RISE's shape, flat at .5


def _draw_step_one(results):
    """Seed 0 of all three recipes, where none settles for both methods: (b)'s ppt dips."""
    for label, (lr, schedule) in ppt_recipe.RECIPES.items():
        for method in ppt_recipe.METHODS:
            values = DIPS if (label, method) != ("b", "fedavg-pt") else RISE
            values = values + [0.5] * (ppt_recipe.ROUNDS - len(values))
            _record(results / "ppt-recipe", f"{label}-{method}-0", method, lr, schedule, 0, values=values)


def _draw_b(results, seed, ppt_values):
    lr, schedule = ppt_recipe.RECIPES["b"]
    pad = [0.5] * (ppt_recipe.ROUNDS - len(RISE))
    _record(results / "ppt-recipe", f"b-f-{seed}", "fedavg-pt", lr, schedule, 0, seed=seed, values=RISE + pad)
    _record(results / "ppt-recipe", f"b-p-{seed}", "ppt", lr, schedule, 0, seed=seed, values=ppt_values + pad)


def test_step_two_chooses_b_only_when_both_3_seed_mean_curves_settle(tmp_path):
    _draw_step_one(tmp_path)
    label, lines = ppt_recipe.decision(tmp_path)
    assert label is None and lines[-1].startswith("At step 2 (seeds 0-2) not all drawn (b fedavg-pt, b ppt)")
    # ppt at seeds 0, 1, 2: DIPS, LIFTS, RISE; mean at rounds 11-15: (.40 + .60 + .50) / 3 = .50
    _draw_b(tmp_path, 1, LIFTS)
    _draw_b(tmp_path, 2, RISE)
    label, lines = ppt_recipe.decision(tmp_path)
    assert label == "b" and lines[-1] == "Chosen by the rule at step 2 (seeds 0-2): recipe (b)."
    assert "| b | 0.005 | linear | 0-2 (mean) | ppt | 9 | 50.0 | 50.0 | 50.0 | yes |" in lines


def test_step_two_keeps_the_rounds_unchosen_when_the_mean_still_dips(tmp_path):
    _draw_step_one(tmp_path)
    _draw_b(tmp_path, 1, DIPS)  # mean at rounds 11-15: (.40 + .40 + .50) / 3 = .433, 6.7 points down
    _draw_b(tmp_path, 2, RISE)
    label, lines = ppt_recipe.decision(tmp_path)
    assert label is None
    assert lines[-3:] == [
        "At step 1 (seeds 0) no recipe settles for both methods.",
        "At step 2 (seeds 0-2) no recipe settles for both methods.",
        "PPT's record rounds stay unchosen.",
    ]
