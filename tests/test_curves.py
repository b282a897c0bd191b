"""The rule that chooses the board of record's rounds from validation curves (tracking/curves.py),
on curves worked out by hand, and through board sections built from records."""

from __future__ import annotations

import pytest
from fixtures import hashed
from test_leaderboard import rec

from fedbench.tracking.board_extras import round_series
from fedbench.tracking.board_model import board_runs, build_sections
from fedbench.tracking.curves import plan_rounds, plateau_round

RISE_THEN_FLAT = [0.1, 0.2, 0.3, 0.4, 0.5] + [0.6] * 10  # 15 rounds


def test_a_curve_that_flattens_plateaus_where_its_trailing_mean_reaches_the_top():
    # window 3: trailing means end at rounds 3..15: 0.2, 0.3, 0.4, 0.5, (0.5 + 0.6 + 0.6) / 3, 0.6, ...
    # the best is 0.6; the first mean within 0.01 of it ends at round 8
    assert plateau_round(RISE_THEN_FLAT, window=3, tolerance=0.01) == 8
    # within 0.05 of the best: (0.5 + 0.6 + 0.6) / 3 = 0.567 >= 0.55 already, ending at round 7
    assert plateau_round(RISE_THEN_FLAT, window=3, tolerance=0.05) == 7


def test_a_curve_still_climbing_in_its_last_window_has_no_plateau_yet():
    climbing = [0.05 * r for r in range(1, 16)]
    assert plateau_round(climbing, window=3, tolerance=0.01) is None
    # round 8 of RISE_THEN_FLAT needs 3 more rounds after it to be confirmed: 11 rounds are enough, 10 not
    assert plateau_round(RISE_THEN_FLAT[:11], window=3) == 8
    assert plateau_round(RISE_THEN_FLAT[:10], window=3) is None


def test_rounds_without_a_value_are_skipped_in_the_mean():
    values = [0.1, None, 0.3, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    # window 2: means end at rounds 2..9: 0.1, 0.3, 0.4, 0.5, ... -> first 0.5 ends at round 5
    assert plateau_round(values, window=2, tolerance=0.0) == 5
    assert plateau_round([None] * 6, window=2) is None


def test_bad_rule_settings_are_refused():
    with pytest.raises(ValueError, match="window must be >= 1"):
        plateau_round(RISE_THEN_FLAT, window=0)


def _curve_record(method, seed, curve):
    rounds = [{"round": i + 1, "val": {"accuracy": v}} for i, v in enumerate(curve)]
    return rec(method, "text", 0.5, seed, curve[-1], sweep="bench-x-full", rounds=rounds)


def test_a_plan_takes_the_latest_plateau_of_its_methods_seed_means():
    late = [0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.3, 0.4] + [0.5] * 7  # 15 rounds
    records = [
        _curve_record("fedavg", 0, RISE_THEN_FLAT),
        _curve_record("fedavg", 1, RISE_THEN_FLAT),
        _curve_record("fedprox", 0, late),
    ]
    (section,) = build_sections(board_runs(records, "emoji"))
    seed_means = {method: means for (_, method), (_, means) in round_series(section, "val.accuracy").items()}
    assert seed_means["fedavg"] == pytest.approx(RISE_THEN_FLAT)
    # window 5: fedavg's trailing means reach 0.6 at the window ending round 10; fedprox's reach 0.5
    # at the window ending round 13, which leaves only 2 rounds after it: still climbing
    got = plan_rounds(records, "emoji", window=5, tolerance=0.01)
    assert set(got) == {section.name}
    assert sorted(got[section.name]["curves"].values(), key=str) == [10, None]
    assert got[section.name]["rounds"] is None
    # window 3: fedavg at 8 (above), fedprox's means reach 0.5 at the window ending round 11
    got = plan_rounds(records, "emoji", window=3, tolerance=0.01)[section.name]
    assert sorted(got["curves"].values()) == [8, 11] and got["rounds"] == 11


def test_the_plan_follows_the_boards_primary_metric_not_accuracy():
    # accuracy flattens at once; macro_f1, the primary metric here, is RISE_THEN_FLAT (plateau at 8)
    rounds = [{"round": i + 1, "val": {"accuracy": 0.5, "macro_f1": v}} for i, v in enumerate(RISE_THEN_FLAT)]
    record = rec("fedavg", "text", 0.5, 0, 0.6, sweep="bench-x-full", rounds=rounds, metric="macro_f1")
    record["final"] = {k: {"macro_f1": 0.6} for k in record["final"]}
    (found,) = plan_rounds([hashed(record)], "emoji", window=3, tolerance=0.01).values()
    assert found["rounds"] == 8
