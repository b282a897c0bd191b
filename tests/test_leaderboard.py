"""Leaderboard cells match mean/std computed by hand; layout, bolding, dedupe and the plot file."""

from __future__ import annotations

import math
import struct
import zlib

import pytest

from fedbench.errors import DataError
from fedbench.tracking.leaderboard import render_leaderboard, write_leaderboard
from fedbench.tracking.records import write_record

COMMAND = "make bench METHOD=fedprime"


def rec(method, mtype, rate, seed, acc, *, created="2025-01-01T00:00:00+00:00", protocol="per_sample", **extra):
    """A minimal schema-1 record whose conditions are derived from ``acc`` in known ways."""
    final = {
        "as_train": {"accuracy": acc, "macro_f1": acc - 0.1},
        "complete": {"accuracy": acc + 0.05},
        "image_only": {"accuracy": acc - 0.2},
        "text_only": {"accuracy": acc - 0.1},
        "both_missing": {"accuracy": acc - 0.05},
    }
    record = {
        "schema": 1,
        "run_id": f"{method}-{mtype}-{rate}-{seed}-{created[:10]}",
        "sweep": None,
        "dataset": "emoji",
        "method": method,
        "seed": seed,
        "missing": {"protocol": protocol, "rate": rate, "type": mtype, "both_ratio": 0.5},
        "partition": {"name": "dirichlet", "alpha": 0.5, "n_clients": 5},
        "metric": "accuracy",
        "final": final,
        "selected": {"round": 3, "metrics": {"as_train": {"accuracy": acc - 0.01}}},
        "personalized": None,
        "majority_rate": 0.2,
        "git_commit": "abc123",
        "created": created,
    }
    record.update(extra)
    return record


def hand_cell(values):
    """mean ± sample std (ddof=1) of fractions, ×100, written out without any library."""
    xs = [100 * v for v in values]
    mean = sum(xs) / len(xs)
    if len(xs) == 1:
        return f"{mean:.1f}"
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
    return f"{mean:.1f} ± {std:.1f}"


def records_fixture():
    return [
        # missing both, rate 0.7: fedavg 3 seeds (+ a stale duplicate of seed 0), fedprime 2 seeds
        rec("fedavg", "both", 0.7, 0, 0.10, created="2024-06-01T00:00:00+00:00"),  # stale, must be dropped
        rec("fedavg", "both", 0.7, 0, 0.69, created="2025-02-01T00:00:00+00:00"),
        rec("fedavg", "both", 0.7, 1, 0.71),
        rec("fedavg", "both", 0.7, 2, 0.73),
        rec("fedprime", "both", 0.7, 0, 0.74, personalized={"accuracy": 0.80}),
        rec("fedprime", "both", 0.7, 1, 0.78, personalized={"accuracy": 0.84}),
        # rate 0.3: only fedavg, one seed
        rec("fedavg", "both", 0.3, 0, 0.80),
        # missing text: a tie
        rec("fedavg", "text", 0.7, 0, 0.60),
        rec("fedprime", "text", 0.7, 0, 0.60),
        # another protocol, a newer duplicate listed *before* the older one
        rec("local", "image", 0.5, 0, 0.55, protocol="per_client", created="2025-03-01T00:00:00+00:00"),
        rec("local", "image", 0.5, 0, 0.33, protocol="per_client", created="2025-01-01T00:00:00+00:00"),
        # another dataset: ignored
        {**rec("fedavg", "both", 0.7, 5, 0.99), "dataset": "food"},
    ]


def sections(md):
    """{'## heading': text} for each level-2 section."""
    parts = md.split("\n## ")[1:]
    return {p.split("\n", 1)[0]: p for p in parts}


def table(section_text, title):
    """Rows of the table under '### title' as {row label: [cells...]}, plus the header."""
    block = section_text.split(f"\n### {title}\n", 1)[1].split("\n### ", 1)[0]
    lines = [ln for ln in block.splitlines() if ln.startswith("|")]
    split = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    return split[0], {row[0]: row[1:] for row in split[2:]}


@pytest.fixture
def md():
    return render_leaderboard(
        records_fixture(), dataset="emoji", command=COMMAND, method_notes={"fedprime": "prompts matched by CKA"}
    )


def test_header_provenance_and_notes(md):
    assert md.startswith("# fedbench leaderboard: emoji\n")
    assert "never edit by hand" in md
    assert f"```bash\n{COMMAND}\n```" in md
    assert "`abc123`" in md
    assert "Seeds: 0, 1, 2" in md
    assert "Majority-class rate: 20.0" in md
    assert "- **fedprime**: prompts matched by CKA" in md
    for condition in ("as_train", "both_missing", "complete", "text_only", "image_only"):
        assert f"- `{condition}`:" in md
    assert "food" not in md and "99.0" not in md


def test_one_section_per_missing_type_with_protocol(md):
    names = [name for name in sections(md) if name.startswith("Missing type")]
    assert names == ["Missing type: both", "Missing type: image (protocol: per_client)", "Missing type: text"]


def test_cells_match_hand_computed_mean_std_and_bold_best(md):
    both = sections(md)["Missing type: both"]
    header, rows = table(both, "final, as_train")
    assert header == ["method", "rate 0.3", "rate 0.7", "seeds"]
    assert hand_cell([0.69, 0.71, 0.73]) == "71.0 ± 2.0"  # the stale 0.10 run is not averaged in
    assert rows["fedavg"] == ["**80.0**", "71.0 ± 2.0", "1–3"]
    assert rows["fedprime"] == ["–", f"**{hand_cell([0.74, 0.78])}**", "2"]
    assert hand_cell([0.74, 0.78]) == "76.0 ± 2.8"

    _, rows = table(both, "final, text_only")  # text_only accuracy = acc - 0.1
    assert rows["fedavg"][1] == hand_cell([0.59, 0.61, 0.63])
    assert rows["fedprime"][1] == f"**{hand_cell([0.64, 0.68])}**"

    _, rows = table(both, "validation-selected round, as_train")  # selected = acc - 0.01
    assert rows["fedavg"] == ["**79.0**", hand_cell([0.68, 0.70, 0.72]), "1–3"]

    _, rows = table(both, "personalized (mean over clients of per-client evaluation)")
    assert rows["fedprime"] == ["–", f"**{hand_cell([0.80, 0.84])}**", "2"]
    assert "fedavg" not in rows  # no personalized metrics at all: no empty row


def test_condition_tables_in_fixed_order(md):
    both = sections(md)["Missing type: both"]
    titles = [ln[4:] for ln in both.splitlines() if ln.startswith("### ")]
    assert titles == [
        "final, as_train",
        "final, both_missing",
        "final, complete",
        "final, text_only",
        "final, image_only",
        "validation-selected round, as_train",
        "personalized (mean over clients of per-client evaluation)",
    ]
    # no record in the text section has personalized metrics: no such table there
    assert "personalized" not in sections(md)["Missing type: text"]


def test_ties_are_all_bold_and_newest_duplicate_wins(md):
    _, rows = table(sections(md)["Missing type: text"], "final, as_train")
    assert rows == {"fedavg": ["**60.0**", "1"], "fedprime": ["**60.0**", "1"]}
    _, rows = table(sections(md)["Missing type: image (protocol: per_client)"], "final, as_train")
    assert rows == {"local": ["**55.0**", "1"]}


def test_mixed_partitions_get_labelled_rows():
    records = [
        rec("fedavg", "both", 0.7, 0, 0.5),
        rec("fedavg", "both", 0.7, 0, 0.6, partition={"name": "iid", "n_clients": 5}),
    ]
    md = render_leaderboard(records, dataset="emoji", command=COMMAND)
    _, rows = table(sections(md)["Missing type: both"], "final, as_train")
    assert rows == {
        "fedavg [dirichlet(alpha=0.5), 5 clients]": ["50.0", "1"],
        "fedavg [iid, 5 clients]": ["**60.0**", "1"],
    }


def test_mixed_primary_metrics_are_rejected():
    records = [rec("fedavg", "both", 0.7, 0, 0.5), {**rec("fedprime", "both", 0.7, 0, 0.5), "metric": "macro_f1"}]
    with pytest.raises(DataError, match="primary metrics"):
        render_leaderboard(records, dataset="emoji", command=COMMAND)


def test_write_leaderboard_writes_markdown_and_valid_png(tmp_path):
    results, out = tmp_path / "results", tmp_path / "leaderboards"
    for record in records_fixture():
        write_record(results, record)
    md_path = write_leaderboard(results, out, "emoji", COMMAND)
    assert md_path == out / "emoji.md"
    assert sorted(p.name for p in out.iterdir()) == ["emoji.md", "emoji.png"]
    text = md_path.read_text()
    assert "![accuracy vs missing rate](emoji.png)" in text
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
