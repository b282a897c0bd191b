"""The board's validation learning curves (one plot per section) and each section's role line."""

from __future__ import annotations

from test_leaderboard import COMMAND, rec, sections

import fedbench.tracking.plots as plots
from fedbench.tracking.leaderboard import render_leaderboard, write_leaderboard
from fedbench.tracking.records import write_record


def curve_records():
    """Two seeds of two methods at two rates, with validation accuracy per round known by hand."""
    val = {
        ("a", 0.1): ([0.2, 0.4, 0.5], [0.4, 0.6, 0.7]),
        ("b", 0.1): ([0.1, 0.2, 0.3], [0.3, 0.2, 0.5]),
        ("a", 0.5): ([0.5, 0.5, 0.5], [0.7, 0.9, 0.5]),
        ("b", 0.5): ([0.0, 0.1, 0.2], [0.2, 0.1, 0.0]),
    }
    out = []
    for (method, rate), per_seed in val.items():
        for seed, values in enumerate(per_seed):
            rounds = [{"round": i + 1, "val": {"accuracy": v}} for i, v in enumerate(values)]
            out.append(rec(method, "text", rate, seed, 0.5, sweep="bench-c", rounds=rounds))
    return out


def test_each_sections_curves_are_the_seed_means_per_round(tmp_path, monkeypatch):
    drawn = {}

    def keep(fig, path):
        drawn[path.name] = fig
        return path

    monkeypatch.setattr(plots, "_save", keep)
    written = plots.plot_learning_curves(curve_records(), tmp_path, "emoji")
    assert written == {"bench-c": tmp_path / "emoji_curves_bench-c.png"}
    axes = [ax for ax in drawn["emoji_curves_bench-c.png"].axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["text@0.1", "text@0.5"]
    lines = {(ax.get_title(), line.get_label()): list(line.get_ydata()) for ax in axes for line in ax.lines}
    expected = {  # seed means by hand
        ("text@0.1", "a (2)"): [0.3, 0.5, 0.6],
        ("text@0.1", "b (2)"): [0.2, 0.2, 0.4],
        ("text@0.5", "a (2)"): [0.6, 0.7, 0.5],
        ("text@0.5", "b (2)"): [0.1, 0.1, 0.1],
    }
    assert lines.keys() == expected.keys()
    for key, ys in expected.items():
        assert all(abs(a - b) < 1e-12 for a, b in zip(lines[key], ys, strict=True)), key
    assert list(axes[0].lines[0].get_xdata()) == [1, 2, 3]


def test_the_board_links_each_sections_curves_and_removes_stale_ones(tmp_path):
    results, out = tmp_path / "results", tmp_path / "boards"
    for record in curve_records():
        write_record(results, record)
    out.mkdir()
    (out / "emoji_curves_gone-plan.png").write_bytes(b"stale")
    text = write_leaderboard(results, out, "emoji", COMMAND).read_text()
    png = out / "emoji_curves_bench-c.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![validation accuracy per round, mean over seeds](emoji_curves_bench-c.png)" in text
    assert not (out / "emoji_curves_gone-plan.png").exists()


def test_a_sections_role_stands_under_its_heading_and_only_there():
    records = [*curve_records(), rec("a", "text", 0.1, 0, 0.5, sweep="bench-other")]
    md = render_leaderboard(
        records, dataset="emoji", command=COMMAND, roles={"bench-c": "A smoke benchmark."}
    )
    parts = sections(md)
    assert parts["bench-c"].split("\n")[2] == "**A smoke benchmark.**"
    assert "A smoke benchmark." not in parts["bench-other"]


def test_an_unfinished_section_is_marked_in_the_at_a_glance_table_only():
    records = [*curve_records(), rec("a", "text", 0.1, 0, 0.5, sweep="bench-other")]
    md = render_leaderboard(records, dataset="emoji", command=COMMAND, in_progress={"bench-c"})
    glance = md.split("## At a glance", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in glance.splitlines() if ln.startswith("| bench-")]
    assert [ln.split("|")[1].strip() for ln in rows] == ["bench-c (in progress)", "bench-other"]
    assert "## bench-c\n" in md  # the section's own heading keeps its name


def test_every_bench_section_has_its_profiles_role():
    from fedbench.methods.registry import PROFILE_ROLES, plan_roles

    roles = plan_roles()
    assert (
        roles["bench-fedavg-quick"] == PROFILE_ROLES["quick"]
        and "smoke benchmark" in roles["bench-ppt-quick"]
    )
    assert roles["bench-fedprime-record"] == PROFILE_ROLES["record"]
    assert "board of record" in roles["bench-fedmvp-record"]


def test_the_five_seed_projection_is_left_out_when_the_section_has_five_seeds():
    def board(seeds):
        records = [
            rec(m, "text", rate, s, acc + 0.01 * s * (m == "a"), sweep="bench-m")
            for rate in (0.1, 0.5)
            for m, acc in (("a", 0.6), ("b", 0.5))
            for s in range(seeds)
        ]
        md = render_leaderboard(records, dataset="emoji", command=COMMAND, references={"bench-m": "b"})
        return next(ln for ln in sections(md)["bench-m"].splitlines() if ln.startswith("Minimum detectable"))

    assert "at 5 seeds it would be" in board(3)
    five = board(5)
    assert five.startswith("Minimum detectable difference at one setting with this section's 5 seeds:")
    assert "it would be" not in five
