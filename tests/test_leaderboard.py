"""Leaderboard cells match mean/std computed by hand; sections, identity, bolding, divergence,
malformed records, notes, and the plot file. The statistics themselves (bootstrap CIs, paired
differences, ranks) are checked by hand in test_leaderboard_stats.py."""

from __future__ import annotations

import copy
import json
import math
import stat
import struct
import warnings
import zlib
from pathlib import Path

import pytest
from fixtures import hashed

from fedbench.errors import DataError
from fedbench.tracking.board_stats import ahead
from fedbench.tracking.leaderboard import render_leaderboard, write_leaderboard
from fedbench.tracking.records import load_records, write_record
from fedbench.tracking.seed_stats import bootstrap_ci

COMMAND = "make bench METHOD=fedprime"
REPO = Path(__file__).resolve().parents[1]


def rec(
    method,
    mtype,
    rate,
    seed,
    acc,
    *,
    created="2025-01-01T00:00:00+00:00",
    protocol="per_sample",
    sweep=None,
    set_=None,
    **extra,
):
    """A schema-1 record whose test conditions are derived from ``acc`` in known ways.

    ``set_`` overrides config fields by dotted path (``{"federation.rounds": 10}``).
    """
    config = {
        "seed": seed,
        "data": {"dataset": "emoji", "label": "category"},
        "missing": {"protocol": protocol, "rate": rate, "type": mtype, "both_ratio": 0.5},
        "partition": {"name": "dirichlet", "alpha": 0.5, "n_clients": 5},
        "federation": {"rounds": 5, "clients_per_round": None, "client_fraction": 1.0, "local_epochs": 1},
        "method": {"name": method, "options": {}},
        "tracking": {"sweep": sweep, "command": None},
    }
    for path, value in (set_ or {}).items():
        *parents, leaf = path.split(".")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    final = {
        "as_train": {"accuracy": acc, "macro_f1": acc - 0.1},
        "complete": {"accuracy": acc + 0.05},
        "image_only": {"accuracy": acc - 0.2},
        "text_only": {"accuracy": acc - 0.1},
        "both_missing": {"accuracy": acc - 0.05},
    }
    record = {
        "schema": 1,
        "run_id": None,  # set by hashed() below, from the identity
        "sweep": sweep,
        "dataset": "emoji",
        "method": method,
        "seed": seed,
        "missing": dict(config["missing"]),
        "partition": dict(config["partition"]),
        "metric": "accuracy",
        "final": final,
        "selected": {"round": 3, "metrics": {"as_train": {"accuracy": acc - 0.01}}},
        "personalized": None,
        "rounds": [{"round": 1, "bytes_up": 2_000_000}, {"round": 2, "bytes_up": 4_000_000}],
        "majority_rate": 0.2,
        "git_commit": "abc123",
        "created": created,
        "config": config,
    }
    record.update(extra)
    return hashed(record)


def hand_cell(values, diverged=0):
    """mean ± sample std (ddof=1) of fractions, ×100, written out without any library."""
    xs = [100 * v for v in values]
    mean = sum(xs) / len(xs)
    text = f"{mean:.1f}"
    if len(xs) > 1:
        text += f" ± {math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)):.1f}"
    return text + (f" ({diverged} diverged)" if diverged else "")


def glance_cell(values, diverged=0):
    """An at-a-glance cell: the mean (by hand) and the bootstrap CI over seeds (checked against
    enumerated resamples and scipy in test_leaderboard_stats.py), ×100."""
    xs = [100 * v for v in values]
    text = f"{sum(xs) / len(xs):.1f}"
    if len(xs) > 1:
        low, high = bootstrap_ci([xs])
        text += f" [{low:.1f}, {high:.1f}]"
    return text + (f" ({diverged} diverged)" if diverged else "")


REFERENCES = {"Other runs": "fedavg", "bench-x": "fedavg"}


def records_fixture():
    return [
        # missing both, rate 0.7: fedavg 3 seeds (+ a stale duplicate of seed 0), fedprime 2 seeds
        rec("fedavg", "both", 0.7, 0, 0.30, created="2024-06-01T00:00:00+00:00"),  # stale, must be dropped
        rec("fedavg", "both", 0.7, 0, 0.69, created="2025-02-01T00:00:00+00:00"),
        rec("fedavg", "both", 0.7, 1, 0.71),
        rec("fedavg", "both", 0.7, 2, 0.73),
        rec("fedprime", "both", 0.7, 0, 0.74, personalized={"accuracy": 0.80}),
        rec("fedprime", "both", 0.7, 1, 0.78, personalized={"accuracy": 0.84}),
        # rate 0.3: only fedavg, one seed
        rec("fedavg", "both", 0.3, 0, 0.80),
        # another sweep (bench plan): its own section
        rec("fedavg", "text", 0.7, 0, 0.60, sweep="bench-x"),
        rec("fedprime", "text", 0.7, 0, 0.60, sweep="bench-x"),
        # another dataset: ignored
        {**rec("fedavg", "both", 0.7, 5, 0.99), "dataset": "food"},
    ]


def sections(md):
    """{'heading': text} for each level-2 section."""
    parts = md.split("\n## ")[1:]
    return {p.split("\n", 1)[0]: p for p in parts}


def table(text, title=None):
    """The table under '### title' (or the text's first table) as (header, {first cell: other cells})."""
    header, rows = table_rows(text, title)
    return header, {row[0]: row[1:] for row in rows}


def table_rows(text, title=None):
    """(header, body rows) of the first table in ``text``, or in its '### title' block."""
    if title is not None:
        text = text.split(f"\n### {title}\n", 1)[1]
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    split = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[start:end]]
    return split[0], split[2:]


@pytest.fixture
def md():
    return render_leaderboard(
        records_fixture(),
        dataset="emoji",
        command=COMMAND,
        method_notes={"fedprime": "prompts matched by CKA"},
        references=REFERENCES,
    )


def test_header_provenance_and_legend(md):
    assert md.startswith("# fedbench leaderboard: emoji\n")
    assert "never edit by hand" in md
    assert f"```bash\n{COMMAND}\n```" in md
    assert "`abc123`" in md
    assert "seeds: 0, 1, 2" in md
    assert "majority-class rate: 20.0" in md
    assert "paired difference to the reference" in md and "never a cell with fewer than 2 paired seeds" in md
    assert "A cell from one seed has no CI and is never bold" in md
    for condition in ("as_train", "both_missing", "complete", "text_only", "image_only"):
        assert f"`{condition}`:" in md
    assert "food" not in md and "99.0" not in md


def test_one_section_per_sweep_stating_shared_and_varying_settings(md):
    assert list(sections(md)) == ["At a glance", "bench-x", "Other runs", "Notes"]
    other = sections(md)["Other runs"]
    intro = other.split("\n\n")[1]
    shared = (
        "per_sample missingness, missing both (both_ratio 0.5), dirichlet(alpha=0.5), "
        "5 clients, all per round"
    )
    assert f"Shared: {shared}, 5 rounds, 1 local epoch, category labels." in intro
    assert "Varies: `missing.rate`, `method.name`." in intro
    assert "Varies: `method.name`." in sections(md)["bench-x"]


def test_at_a_glance_cells_are_the_mean_and_its_bootstrap_ci(md):
    header, rows = table(sections(md)["Other runs"])
    assert header == ["accuracy, final as_train", "both@0.3", "both@0.7"]
    assert glance_cell([0.69, 0.71, 0.73]).startswith("71.0 [")  # the stale 0.30 run is not averaged in
    # fedprime - fedavg on seeds 0 and 1: +5.0 and +7.0, both above zero: bold; 80.0 has one seed: no CI
    assert rows == {
        "fedavg": ["80.0", glance_cell([0.69, 0.71, 0.73])],
        "fedprime": ["–", f"**{glance_cell([0.74, 0.78])}**"],
    }


def test_detail_table_has_every_condition_and_the_extra_measures(md):
    header, rows = table(sections(md)["Other runs"], "Missing both")
    assert header == [
        "rate",
        "method",
        "as_train",
        "both_missing",
        "complete",
        "text_only",
        "image_only",
        "val-selected",
        "personalized",
        "MB up/round",
        "seeds",
    ]
    # text_only = acc - 0.1, selected = acc - 0.01; bytes up 2 MB and 4 MB: 3.0 MB per round
    assert rows["0.3"] == ["fedavg", "80.0", "75.0", "85.0", "70.0", "60.0", "79.0", "–", "3.0", "1"]
    at_07 = [
        cells for rate, *cells in table_rows(sections(md)["Other runs"], "Missing both")[1] if rate == "0.7"
    ]
    assert at_07[0][:2] == ["fedavg", hand_cell([0.69, 0.71, 0.73])]
    assert at_07[0][4] == hand_cell([0.59, 0.61, 0.63])
    assert at_07[0][-2:] == ["3.0", "3"]
    assert at_07[1][4] == f"**{hand_cell([0.64, 0.68])}**"
    assert at_07[1][7] == hand_cell([0.80, 0.84])  # only fedprime reports a personalized score: no peer
    assert at_07[1][-1] == "2"


def test_bold_rule_is_a_paired_ci_above_zero():
    assert ahead((0.1, 3.0))
    assert (
        not ahead((-0.1, 3.0)) and not ahead((0.0, 3.0)) and not ahead((-3.0, -0.1))
    )  # below zero: not "ahead"
    assert not ahead(None)  # fewer than two paired seeds: no CI


def test_nothing_is_bold_without_a_reference_or_with_one_seed():
    runs = [rec("a", "text", 0.5, s, v) for s, v in enumerate([0.80, 0.84])]
    runs += [rec("b", "text", 0.5, s, v) for s, v in enumerate([0.69, 0.71, 0.73])]
    runs += [rec("c", "text", 0.5, 0, 0.95)]  # far ahead, one seed
    for references in (None, {"Other runs": "missing-method"}):
        md = render_leaderboard(runs, dataset="emoji", command=COMMAND, references=references)
        _, rows = table(sections(md)["Other runs"])
        assert rows == {
            "a": [glance_cell([0.80, 0.84])],
            "b": [glance_cell([0.69, 0.71, 0.73])],
            "c": ["95.0"],
        }
        assert "**" not in md.split("## Other runs", 1)[1].split("## Notes")[0]
    md = render_leaderboard(runs, dataset="emoji", command=COMMAND, references={"Other runs": "b"})
    _, rows = table(sections(md)["Other runs"])
    assert rows["a"] == [f"**{glance_cell([0.80, 0.84])}**"] and rows["c"] == ["95.0"]


@pytest.mark.parametrize(
    ("path", "values", "labels"),
    [
        ("federation.rounds", (5, 10), ("text@0.7, rounds=5", "text@0.7, rounds=10")),
        ("missing.both_ratio", (0.3, 0.5), ("text@0.7, both_ratio=0.3", "text@0.7, both_ratio=0.5")),
        (
            "federation.clients_per_round",
            (None, 3),
            ("text@0.7, clients_per_round=none", "text@0.7, clients_per_round=3"),
        ),
    ],
)
def test_runs_differing_in_any_identity_field_are_separate_settings(path, values, labels):
    records = [
        rec("fedavg", "text", 0.7, 0, acc, set_={path: v}) for v, acc in zip(values, (0.5, 0.6), strict=True)
    ]
    md = render_leaderboard(records, dataset="emoji", command=COMMAND)
    header, rows = table(sections(md)["Other runs"])
    assert header == ["accuracy, final as_train", *labels]
    assert rows == {"fedavg": ["50.0", "60.0"]}
    assert "Runs: 2 " in md


def test_runs_differing_in_a_method_option_are_separate_rows():
    records = [
        rec("fedprox", "text", 0.7, 0, acc, set_={"method.options.mu": mu})
        for mu, acc in ((0.01, 0.5), (0.1, 0.6))
    ]
    records.append(rec("fedavg", "text", 0.7, 0, 0.55))
    _, rows = table(sections(render_leaderboard(records, dataset="emoji", command=COMMAND))["Other runs"])
    assert rows == {"fedavg": ["55.0"], "fedprox (mu=0.01)": ["50.0"], "fedprox (mu=0.1)": ["60.0"]}


def test_options_spelled_out_with_defaults_do_not_clutter_the_board():
    """Identities carry every method option with its defaults; only options that differ within a
    method make rows (and appear under "Varies")."""
    fedprime = {"method.options.selection": "sample", "method.options.kappa": 5}  # fedprime's defaults
    records = [rec("fedprime", "text", 0.7, 0, 0.5, set_=fedprime)]
    records += [
        rec("fedprox", "text", 0.7, 0, acc, set_={"method.options.mu": mu, "method.options.prompt_length": 4})
        for mu, acc in ((0.01, 0.5), (0.1, 0.6))
    ]
    md = render_leaderboard(records, dataset="emoji", command=COMMAND)
    _, rows = table(sections(md)["Other runs"])
    assert rows == {"fedprime": ["50.0"], "fedprox (mu=0.01)": ["50.0"], "fedprox (mu=0.1)": ["60.0"]}
    assert "Varies: `method.name`, `method.options.mu`." in md
    assert "kappa" not in md and "selection" not in md and "prompt_length" not in md
    assert "Method options set away" not in md


def test_equal_identity_dedupes_to_the_newest_whatever_tracking_and_executor_say():
    old = rec("fedavg", "text", 0.7, 0, 0.40, created="2025-01-01T00:00:00+00:00")
    new = rec("fedavg", "text", 0.7, 0, 0.60, created="2025-03-01T00:00:00+00:00")
    new["config"]["tracking"] = {"command": "fedbench run", "wandb": False}
    new["config"]["executor"] = {"name": "ray", "workers": 4}
    mid = {
        **copy.deepcopy(new),
        "created": "2025-02-01T00:00:00+00:00",
        "final": {"as_train": {"accuracy": 0.5}},
    }
    md = render_leaderboard([new, old, mid], dataset="emoji", command=COMMAND)
    _, rows = table(sections(md)["Other runs"])
    assert rows == {"fedavg": ["60.0"]}
    assert "Runs: 1 " in md
    # an explicit identity wins over the config: equal identities dedupe even if configs differ
    a = hashed({**rec("fedavg", "text", 0.7, 0, 0.4), "identity": {"k": 1}})
    b = hashed(
        {**rec("fedavg", "text", 0.9, 1, 0.6, created="2025-05-01T00:00:00+00:00"), "identity": {"k": 1}}
    )
    assert "Runs: 1 " in render_leaderboard([a, b], dataset="emoji", command=COMMAND)


def diverged_record(method, seed):
    r = rec(
        method, "text", 0.7, seed, 0.0, status="diverged", diverged={"round": 3, "client": 1, "what": "loss"}
    )
    r["final"] = {"as_train": {"accuracy": None}, "complete": {"accuracy": float("nan")}}
    r["selected"] = None
    return r


def test_diverged_runs_are_shown_and_never_averaged_in():
    records = [
        rec("fedavg", "text", 0.7, 0, 0.60),
        rec("fedavg", "text", 0.7, 1, 0.64),
        diverged_record("fedavg", 2),
    ]
    records += [diverged_record("fedprox", 0), diverged_record("fedprox", 1)]
    md = render_leaderboard(records, dataset="emoji", command=COMMAND, references={"Other runs": "fedavg"})
    assert glance_cell([0.60, 0.64], diverged=1).endswith("] (1 diverged)")
    _, rows = table(sections(md)["Other runs"])
    assert rows == {"fedavg": [glance_cell([0.60, 0.64], diverged=1)], "fedprox": ["diverged"]}
    _, paired = table(sections(md)["Other runs"], "Compared with fedavg")
    assert paired["fedprox"][:4] == ["–", "–", "–", "0"]  # a diverged run pairs with nothing
    header, detail = table(sections(md)["Other runs"], "Missing text at rate 0.7")
    # the detail table says how many diverged once per row, in the seeds column
    assert detail["fedavg"][header.index("complete") - 1] == hand_cell([0.65, 0.69])
    assert detail["fedavg"][header.index("seeds") - 1] == "2 + 1 diverged"
    assert detail["fedprox"] == ["diverged"] * (len(header) - 2) + ["0 + 2 diverged"]
    assert "Runs: 5 (after keeping the newest of duplicate runs), 3 diverged" in md


def test_write_leaderboard_with_diverged_records_written_as_strict_json(tmp_path):
    results, out = tmp_path / "results", tmp_path / "out"
    for r in [
        rec("fedavg", "text", 0.7, 0, 0.60),
        rec("fedavg", "text", 0.7, 1, 0.64),
        diverged_record("fedavg", 2),
    ]:
        write_record(results, r)
    text = write_leaderboard(results, out, "emoji", COMMAND).read_text()
    assert glance_cell([0.60, 0.64], diverged=1) in text
    assert (out / "emoji.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("breakage", "problem"),
    [(lambda r: r.update(final=[0.5]), "final is a list"), (lambda r: r.pop("missing"), "missing is absent")],
)  # more shapes in test_records.py
def test_malformed_record_is_skipped_with_a_warning_naming_its_file(tmp_path, breakage, problem):
    results, out = tmp_path / "results", tmp_path / "out"
    write_record(results, rec("fedavg", "text", 0.7, 0, 0.60))
    bad = rec("fedavg", "text", 0.7, 1, 0.10)
    breakage(bad)
    bad_path = results / "emoji" / "broken-run.json"
    bad_path.write_text(json.dumps(bad))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        md_path = write_leaderboard(results, out, "emoji", COMMAND)
    messages = [str(w.message) for w in caught if "broken-run.json" in str(w.message)]
    assert len(messages) == 1 and problem in messages[0] and "\n" not in messages[0], messages
    _, rows = table(sections(md_path.read_text())["Other runs"])
    assert rows == {"fedavg": ["60.0"]}


def test_every_method_on_the_board_has_its_own_full_note():
    """A note is never replaced by a pointer to another: methods sharing a text (FedMVP and
    fedmvp-fedavg share one) or extending one (an ablation) each show theirs in full."""
    base = "Retrieval is per sample; the inter pool is matched with the PFPT matcher before averaging."
    shared = "A network trained on completed modalities, aggregated by CKA (fedmvp-fedavg: by sample counts)."
    notes = {
        "fedavg": "plain FedAvg",
        "fedprime": base,
        "fed-inter": "One pool. " + base,
        "local": "alone",
        "fedmvp": shared,
        "fedmvp-fedavg": shared,
    }
    methods = ["fedavg", "fedprime", "fed-inter", "fedmvp", "fedmvp-fedavg"]
    md = render_leaderboard(
        [rec(m, "text", 0.7, 0, 0.5) for m in methods], dataset="emoji", command=COMMAND, method_notes=notes
    )
    lines = [ln for ln in sections(md)["Notes"].splitlines() if ln.startswith("- **")]
    assert lines == [f"- **{m}**: {notes[m]}" for m in sorted(methods)]
    assert "Otherwise as" not in md and "local" not in sections(md)["Notes"]


def test_other_primary_metric_is_used_and_mixing_is_rejected():
    records = [{**rec(m, "text", 0.7, 0, 0.5), "metric": "macro_f1"} for m in ("fedavg", "fedprime")]
    md = render_leaderboard(records, dataset="emoji", command=COMMAND)
    header, rows = table(sections(md)["Other runs"])
    assert header[0] == "macro_f1, final as_train" and rows == {"fedavg": ["40.0"], "fedprime": ["40.0"]}
    with pytest.raises(DataError, match="primary metrics"):
        render_leaderboard([records[0], rec("fedavg", "text", 0.7, 1, 0.5)], dataset="emoji", command=COMMAND)


def test_committed_records_from_git_make_a_short_board(tmp_path):
    from committed import copy_committed_records

    records = load_records(copy_committed_records(tmp_path / "results", "emoji"), "emoji")
    if len(records) < 30:
        pytest.skip("the committed emoji records are not in this checkout")
    from fedbench.methods.registry import available, get_method

    notes = {m: get_method(m).notes or get_method(m).description for m in available()}
    commands = "\n".join(sorted({r["config"]["tracking"]["command"] for r in records}))
    from fedbench.methods.registry import plan_headlines, plan_references

    md = render_leaderboard(
        records,
        dataset="emoji",
        command=commands,
        method_notes=notes,
        headlines=plan_headlines(),
        references=plan_references(),
    )

    # the board grows with what it shows, not with the number of runs (seeds and duplicates fold
    # into cells): a fixed head and notes, and per (plan, method, setting) cell its at-a-glance
    # entry, its detail row and a share of the tables' heads: under about 4 lines per cell
    def setting(r):
        return json.dumps([r["config"]["missing"], r["config"]["partition"]], sort_keys=True)

    cells = len({(r["sweep"], r["method"], setting(r)) for r in records})
    assert len(md.splitlines()) < 40 + 4 * cells
    shown = {r["method"] for r in records}
    for method in notes:
        assert md.count(f"- **{method}**:") == (method in shown)
    assert md.count(notes["fedprime"]) == 1
    assert list(sections(md))[1:-1] == sorted({r["sweep"] for r in records})
    # one cell checked against the raw numbers: fedavg, first sweep's lowest rate, final as_train
    sweep = sorted({r["sweep"] for r in records})[0]
    mine = [r for r in records if r["sweep"] == sweep and r["method"] == "fedavg"]
    low = min(r["missing"]["rate"] for r in mine)
    values = [r["final"]["as_train"][r["metric"]] for r in mine if r["missing"]["rate"] == low]
    _, rows = table(sections(md)[sweep])
    assert rows["fedavg"][0].strip("*") == glance_cell(values)


def test_write_leaderboard_writes_markdown_and_valid_png(tmp_path):
    results, out = tmp_path / "results", tmp_path / "leaderboards"
    for record in records_fixture():
        write_record(results, record)
    md_path = write_leaderboard(results, out, "emoji", COMMAND)
    assert md_path == out / "emoji.md"
    assert sorted(p.name for p in out.iterdir()) == ["emoji.md", "emoji.png"]
    for name in ("emoji.md", "emoji.png"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644
    text = md_path.read_text()
    assert "![accuracy per setting](emoji.png)" in text
    assert "71.0 ± 2.0" in text

    data = (out / "emoji.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    assert width > 300 and height > 200
    assert struct.unpack(">I", data[29:33])[0] == zlib.crc32(data[12:29])  # IHDR checksum
    assert data[-8:-4] == b"IEND"


def test_write_leaderboard_without_records_is_a_user_error(tmp_path):
    with pytest.raises(DataError, match="no run records"):
        write_leaderboard(tmp_path / "results", tmp_path / "out", "emoji", COMMAND)


def test_shared_settings_name_the_precision_the_runs_had():
    """`precision: auto` resolves per machine, so a section says which precision its runs had, and
    runs in two precisions are two settings, never one cell."""
    bf16 = {"train.precision": "bf16-mixed"}
    runs = [
        rec(m, "text", 0.5, s, 0.6, sweep="bench-p", set_=bf16)
        for m in ("fedavg", "fedprime")
        for s in (0, 1)
    ]
    intro = sections(render_leaderboard(runs, dataset="emoji", command=COMMAND))["bench-p"].split("\n\n")[1]
    assert "category labels, bf16-mixed." in intro
    runs.append(rec("fedavg", "text", 0.5, 0, 0.9, sweep="bench-p", set_={"train.precision": "32-true"}))
    md = sections(render_leaderboard(runs, dataset="emoji", command=COMMAND))["bench-p"]
    assert "`train.precision`" in md.split("\n\n")[1]  # now it varies
    header, rows = table(md)
    assert header[1:] == ["text@0.5, precision=32-true", "text@0.5, precision=bf16-mixed"]
    assert rows["fedavg"] == [glance_cell([0.9]), glance_cell([0.6, 0.6])]


def test_shared_line_names_every_field_set_away_from_the_defaults():
    """A run with half its clients dropped must not read like a clean one: failures, lr, batch size
    and method options away from their defaults are named (the defaults, written out here: lr
    5e-3, batch 32, weight decay 0.02, no failures, fedprox mu 0.01, prompt_length 4)."""
    away = {"failures.drop_rate": 0.5, "train.lr": 0.01, "train.batch_size": 16, "train.weight_decay": 0.02}
    runs = [
        rec(
            m,
            "text",
            0.5,
            s,
            0.6,
            sweep="bench-p",
            set_={
                **away,
                "method.options.prompt_length": 4,
                **({"method.options.mu": 0.5} if m == "fedprox" else {}),
            },
        )
        for m in ("fedavg", "fedprox")
        for s in (0, 1)
    ]
    intro = sections(render_leaderboard(runs, dataset="emoji", command=COMMAND))["bench-p"].split("\n\n")[1]
    for said in (
        "`failures.drop_rate=0.5`",
        "`train.batch_size=16`",
        "`train.lr=0.01`",
        "Method options set away from their defaults: fedprox mu=0.5.",
    ):
        assert said in intro, intro
    assert "weight_decay" not in intro and "prompt_length" not in intro  # at their defaults
    runs.append(rec("fedavg", "text", 0.5, 2, 0.6, sweep="bench-p", set_={**away, "failures.drop_rate": 0.0}))
    intro = sections(render_leaderboard(runs, dataset="emoji", command=COMMAND))["bench-p"].split("\n\n")[1]
    assert "`failures.drop_rate`" in intro.split("Varies: ")[1] and "drop_rate=0.5" not in intro
