"""The board's statistics checked by hand: the bootstrap CI against its enumerated resamples and
scipy, the probability of improvement, the minimum detectable difference from a t table, the paired
bold rule on a constructed board, the ranks and Friedman's statistic by formula, the summary across
plans, and the critical-difference diagram's file (byte-identical under another hash seed)."""

from __future__ import annotations

import doctest
import itertools
import math
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from processes import HANG_GUARD_S
from test_leaderboard import COMMAND, glance_cell, rec, sections, table

from fedbench.tracking import seed_stats
from fedbench.tracking.leaderboard import render_leaderboard, write_leaderboard
from fedbench.tracking.records import write_record
from fedbench.tracking.seed_stats import (
    bootstrap_ci,
    minimum_detectable_difference,
    pooled_std,
    probability_of_improvement,
)

REPO = Path(__file__).resolve().parents[1]


def exact_percentile_bounds(strata, confidence=0.95):
    """The (low, high) quantiles of the mean over every resample of ``strata`` (each stratum
    resampled within itself), enumerated exactly: each value the smallest mean whose CDF reaches
    the tail probability."""
    means = {}
    per_stratum = [list(itertools.product(s, repeat=len(s))) for s in strata]
    total = sum(len(s) for s in strata)
    for combo in itertools.product(*per_stratum):
        mean = Fraction(sum(sum(Fraction(v) for v in part) for part in combo), total)
        means[mean] = means.get(mean, 0) + 1
    count = sum(means.values())
    tail = Fraction(1 - confidence).limit_denominator(1000) / 2

    def quantile(q):
        seen = 0
        for value in sorted(means):
            seen += means[value]
            if Fraction(seen, count) >= q:
                return value, Fraction(seen - means[value], count), Fraction(seen, count)
        raise AssertionError

    return quantile(tail), quantile(1 - tail)


@pytest.mark.parametrize("strata", [[[0, 1, 4, 10]], [[0, 3, 7], [1, 8]], [[1, 4, 6], [0, 5, 9]]])
def test_bootstrap_ci_is_the_percentiles_of_the_enumerated_resamples(strata):
    (low, low_below, low_upto), (high, high_below, high_upto) = exact_percentile_bounds(strata)
    # the data are chosen so that 2.5% and 97.5% fall inside an atom of the exact distribution, far
    # enough from its edges that 10,000 resamples land on the same atom
    assert low_below + Fraction(1, 200) < Fraction(1, 40) < low_upto - Fraction(1, 200)
    assert high_below + Fraction(1, 200) < Fraction(39, 40) < high_upto - Fraction(1, 200)
    ci = bootstrap_ci(strata)
    assert ci == pytest.approx((float(low), float(high)), abs=1e-12)


def test_bootstrap_ci_agrees_with_scipy_on_one_stratum():
    from scipy.stats import bootstrap

    x = np.array([61.2, 63.8, 60.1, 65.4, 62.0, 64.9, 59.7, 63.1])
    ours = bootstrap_ci([x])
    theirs = bootstrap(
        (x,),
        np.mean,
        method="percentile",
        n_resamples=20_000,
        confidence_level=0.95,
        rng=np.random.default_rng(7),
    ).confidence_interval
    assert ours[0] == pytest.approx(theirs.low, abs=0.1) and ours[1] == pytest.approx(theirs.high, abs=0.1)
    assert ours[0] < x.mean() < ours[1]


def test_bootstrap_ci_needs_two_values_per_stratum_and_ignores_order():
    assert bootstrap_ci([[1.0]]) is None and bootstrap_ci([]) is None
    assert bootstrap_ci([[1.0, 2.0], [3.0]]) is None  # one setting with a single seed: no CI at all
    assert bootstrap_ci([[2.0, 2.0, 2.0]]) == (2.0, 2.0)
    a = bootstrap_ci([[1.0, 5.0, 2.0], [7.0, 3.0]])
    assert a == bootstrap_ci([[3.0, 7.0], [2.0, 1.0, 5.0]])  # the values decide, not the order read


def test_probability_of_improvement_by_hand():
    # setting 1: x in {2, 3} vs y in {1, 3}: 2>1, 2<3, 3>1, 3=3 -> (2 + 0.5) / 4 = 0.625;
    # setting 2: 0 < 1 -> 0
    assert probability_of_improvement([([2.0, 3.0], [1.0, 3.0]), ([0.0], [1.0])]) == pytest.approx(0.3125)
    assert probability_of_improvement([([], [1.0])]) is None


def test_minimum_detectable_difference_from_a_t_table():
    # t(0.975, 4) = 2.7764, t(0.80, 4) = 0.9410; t(0.975, 1) = 12.7062, t(0.80, 1) = 1.3764
    assert minimum_detectable_difference(2.0, 5) == pytest.approx(
        (2.7764 + 0.9410) * 2.0 / math.sqrt(5), abs=1e-3
    )
    assert minimum_detectable_difference(0.5, 2) == pytest.approx(
        (12.7062 + 1.3764) * 0.5 / math.sqrt(2), abs=1e-3
    )
    assert minimum_detectable_difference(1.0, 1) is None and minimum_detectable_difference(None, 5) is None
    # pooled: group deviations 1,-1 (a: mean 2) and -2,0,2 (b: mean 5); (2 + 8) / (1 + 2) dof
    assert pooled_std([[1.0, 3.0], [3.0, 5.0, 7.0], [9.0]]) == pytest.approx(math.sqrt(10 / 3))


def test_seed_stats_doctests():
    assert doctest.testmod(seed_stats).failed == 0


SEEDS = range(5)
SETTINGS = (0.3, 0.7)
REF = [[0.600, 0.620, 0.610, 0.630, 0.590], [0.500, 0.520, 0.490, 0.510, 0.530]]  # fedavg per rate, per seed
# differences to fedavg in points: "big" wins by ~3 on every seed, "small" by 0.5 on average, inside its noise
BIG = [[3.1, 2.5, 3.5, 3.0, 2.8], [2.9, 3.2, 3.1, 2.6, 3.3]]
SMALL = [[-1.0, 2.0, -0.5, 1.5, 0.5], [1.0, -1.5, 2.0, 0.0, 0.5]]


def constructed_board():
    runs = []
    for j, rate in enumerate(SETTINGS):
        for s in SEEDS:
            runs.append(rec("fedavg", "text", rate, s, REF[j][s], sweep="bench-c"))
            runs.append(rec("big", "text", rate, s, REF[j][s] + BIG[j][s] / 100, sweep="bench-c"))
            runs.append(rec("small", "text", rate, s, REF[j][s] + SMALL[j][s] / 100, sweep="bench-c"))
    return runs


def test_paired_significance_bolds_the_method_whose_lead_exceeds_its_ci_only():
    md = render_leaderboard(
        constructed_board(), dataset="emoji", command=COMMAND, references={"bench-c": "fedavg"}
    )
    section = sections(md)["bench-c"]
    _, glance = table(section)
    for j in range(len(SETTINGS)):
        big = bootstrap_ci([BIG[j]])
        small = bootstrap_ci([SMALL[j]])
        assert big[0] > 0 and small[0] < 0 < small[1]  # what the board is built to show
        assert glance["big"][j] == f"**{glance_cell([REF[j][s] + BIG[j][s] / 100 for s in SEEDS])}**"
        assert glance["small"][j] == glance_cell([REF[j][s] + SMALL[j][s] / 100 for s in SEEDS])
        assert glance["fedavg"][j] == glance_cell(REF[j])  # the reference is never bold
    header, paired = table(section, "Compared with fedavg")
    assert header == ["method", "Δ vs fedavg", "95% CI", "P(improvement)", "pairs", "mean rank"]
    big_mean = sum(map(sum, BIG)) / 10
    small_mean = sum(map(sum, SMALL)) / 10
    big_ci, small_ci = bootstrap_ci(BIG), bootstrap_ci(SMALL)
    assert paired["big"][:2] == [f"**{big_mean:+.1f}**", f"[{big_ci[0]:+.1f}, {big_ci[1]:+.1f}]"]
    assert paired["small"][:2] == [f"{small_mean:+.1f}", f"[{small_ci[0]:+.1f}, {small_ci[1]:+.1f}]"]
    assert paired["big"][3] == paired["small"][3] == "10"
    assert paired["fedavg (reference)"][:4] == ["–"] * 4
    # P(big run > fedavg run) at a setting: every big run beats every fedavg run here
    # but the pairs across seeds
    p_big = np.mean(
        [
            np.mean([[x + d / 100 > y for y in REF[j]] for x, d in zip(REF[j], BIG[j], strict=True)])
            for j in range(2)
        ]
    )
    assert paired["big"][2] == f"{p_big:.2f}"
    # the summary at the top names big, with its CI, as significant
    _, summary = table(sections(md)["At a glance"])
    assert summary["bench-c"] == [
        "final as_train",
        "fedavg",
        "big",
        f"{big_mean:+.1f}",
        f"[{big_ci[0]:+.1f}, {big_ci[1]:+.1f}]",
        f"{p_big:.2f}",
        "yes (CI above 0)",
        "5",
    ]
    assert md.index("## At a glance") < md.index("## bench-c")


def test_minimum_detectable_difference_is_stated_under_the_plan():
    md = render_leaderboard(
        constructed_board(), dataset="emoji", command=COMMAND, references={"bench-c": "fedavg"}
    )
    groups = [*BIG, *SMALL]
    std = math.sqrt(sum(sum((d - sum(g) / 5) ** 2 for d in g) for g in groups) / (4 * len(groups)))
    mdd = (2.7764 + 0.9410) * std / math.sqrt(5)  # t table, 4 degrees of freedom
    line = next(
        ln for ln in sections(md)["bench-c"].splitlines() if ln.startswith("Minimum detectable difference")
    )
    assert f"this section's 5 seeds: {mdd:.1f} points (paired-difference std {std:.2f}" in line


def test_one_seed_plans_say_there_is_no_ci():
    runs = [
        rec(m, "text", r, 0, acc, sweep="bench-1")
        for m, acc in (("fedavg", 0.5), ("mine", 0.6))
        for r in (0.3, 0.7)
    ]
    md = render_leaderboard(runs, dataset="emoji", command=COMMAND, references={"bench-1": "fedavg"})
    _, summary = table(sections(md)["At a glance"])
    assert summary["bench-1"][2:] == [
        "mine",
        "+10.0",
        "–",
        "1.00",
        "no CI (fewer than 2 paired seeds in a setting)",
        "1",
    ]
    assert "Minimum detectable difference: not estimable here" in sections(md)["bench-1"]
    assert "**" not in sections(md)["bench-1"]


def ranked_records():
    """3 methods x 3 settings x 2 seeds; seed means give the ranks a > b > c, a > c > b, b > a > c."""
    means = {
        0.1: {"a": 0.9, "b": 0.8, "c": 0.7},
        0.5: {"a": 0.9, "b": 0.6, "c": 0.7},
        0.9: {"a": 0.8, "b": 0.9, "c": 0.5},
    }
    return [
        rec(m, "text", rate, s, acc + (0.01 if s else -0.01), sweep="bench-r")
        for rate, row in means.items()
        for m, acc in row.items()
        for s in (0, 1)
    ]


def test_mean_ranks_and_friedman_statistic_by_hand():
    md = render_leaderboard(ranked_records(), dataset="emoji", command=COMMAND, references={"bench-r": "a"})
    _, paired = table(sections(md)["bench-r"], "Compared with a")
    ranks = {"a": (1 + 1 + 2) / 3, "b": (2 + 3 + 1) / 3, "c": (3 + 2 + 3) / 3}
    assert {m: row[-1] for m, row in paired.items()} == {
        "a (reference)": f"{ranks['a']:.2f}",
        "b": f"{ranks['b']:.2f}",
        "c": f"{ranks['c']:.2f}",
    }
    n, k = 3, 3
    chi2 = 12 * n / (k * (k + 1)) * sum(r * r for r in ranks.values()) - 3 * n * (k + 1)  # no ties
    cd = 3.314 / math.sqrt(2) * math.sqrt(k * (k + 1) / (6 * n))  # studentized range q(0.95; 3, inf) = 3.314
    text = sections(md)["bench-r"]
    assert f"Friedman's test over 3 methods: chi² = {chi2:.2f}" in text
    assert f"Nemenyi's critical difference at alpha 0.05: {cd:.2f} ranks" in text


def test_write_leaderboard_draws_a_cd_diagram_beside_the_board_and_removes_stale_ones(tmp_path):
    results, out = tmp_path / "results", tmp_path / "boards"
    for record in ranked_records():
        write_record(results, record)
    out.mkdir()
    (out / "emoji_cd_gone-plan.png").write_bytes(b"stale")
    text = write_leaderboard(results, out, "emoji", COMMAND, references={"bench-r": "a"}).read_text()
    png = out / "emoji_cd_bench-r.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert "![critical-difference diagram](emoji_cd_bench-r.png)" in text
    assert not (out / "emoji_cd_gone-plan.png").exists()


def test_cd_diagram_bytes_do_not_depend_on_the_hash_seed(tmp_path):
    """The committed board regenerates byte for byte: the diagram's crossbars (sets inside
    scikit-posthocs) must not follow Python's per-process string hashing."""
    script = (
        "import sys; from pathlib import Path\n"
        "from fedbench.tracking.board_ranks import Ranking\n"
        "from fedbench.tracking.plots import plot_cd_diagram\n"
        "p = ((1, .9, .9, .9), (.9, 1, .9, .01), (.9, .9, 1, .01), (.9, .01, .01, 1))\n"
        "r = Ranking(('alpha', 'beta', 'gamma', 'delta'), (1.5, 1.8, 2.6, 4.0), 6, cd=1.9, nemenyi_p=p)\n"
        "plot_cd_diagram(r, Path(sys.argv[1]), 'x')\n"
    )
    outputs = []
    for seed in ("1", "2"):
        path = tmp_path / f"cd{seed}.png"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [sys.executable, "-c", script, str(path)], cwd=REPO, env=env, check=True, timeout=HANG_GUARD_S
        )
        outputs.append(path.read_bytes())
    assert outputs[0] == outputs[1]


def test_each_plan_names_its_reference_among_its_methods():
    from fedbench.methods.registry import available, get_method, plan_references

    for method in available():
        plan = get_method(method).plan
        assert plan.reference == method or plan.reference in plan.baselines, method
    references = plan_references()
    assert references["bench-ppt-quick"] == references["table-ppt-cifar10"] == "fedavg-pt"
    assert (
        references["bench-fedprime-quick"]
        == references["bench-fedmvp-quick"]
        == references["bench-fedavg-quick"]
        == "fedavg"
    )
